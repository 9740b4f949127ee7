// The Compute resource provider's own throttling, behind ARM's: named policies that count requests per
// resource in fixed windows (`PutVM3Min`, `PutVM30Min`, ...). Every Compute answer reports what is left in
// `x-ms-ratelimit-remaining-resource`; a request over a policy's count gets 429 `OperationNotAllowed` with a
// long Retry-After, and requests sent before that time has passed are refused again.
// Pure: the clock is injected so unit tests do not sleep.

import type { ArmError } from "./arm_errors.ts";
import type { ComputeKind } from "./ids.ts";

type ComputeOperation = "read" | "write";

export interface ComputePolicy {
  /** Policy name without the `Microsoft.Compute/` prefix, e.g. `PutVM3Min`. */
  name: string;
  kind: ComputeKind;
  operation: ComputeOperation;
  windowSeconds: number;
  allowedRequestCount: number;
}

export interface ComputeThrottleConfig {
  policies: ComputePolicy[];
  /**
   * Retry-After (seconds) of a 429. Default: until the exceeded policy's window ends, as Compute answers
   * (up to 1200 s and more for 30-minute policies).
   */
  retryAfterSeconds?: number;
}

/**
 * Realistic policies. `PutVM*`, `LowCostGet*` and `GetVMScaleSet*` carry the names and counts real
 * responses show; the scale-set write policy follows the `DeleteVMScaleSet3Min` / `GetVMScaleSet3Min` naming.
 */
export const COMPUTE_DEFAULT_POLICIES: ComputePolicy[] = [
  {
    name: "PutVM3Min",
    kind: "virtualMachines",
    operation: "write",
    windowSeconds: 180,
    allowedRequestCount: 240,
  },
  {
    name: "PutVM30Min",
    kind: "virtualMachines",
    operation: "write",
    windowSeconds: 1800,
    allowedRequestCount: 1200,
  },
  {
    name: "LowCostGet3Min",
    kind: "virtualMachines",
    operation: "read",
    windowSeconds: 180,
    allowedRequestCount: 4000,
  },
  {
    name: "LowCostGet30Min",
    kind: "virtualMachines",
    operation: "read",
    windowSeconds: 1800,
    allowedRequestCount: 32000,
  },
  {
    name: "PutVMScaleSet3Min",
    kind: "virtualMachineScaleSets",
    operation: "write",
    windowSeconds: 180,
    allowedRequestCount: 120,
  },
  {
    name: "PutVMScaleSet30Min",
    kind: "virtualMachineScaleSets",
    operation: "write",
    windowSeconds: 1800,
    allowedRequestCount: 600,
  },
  {
    name: "GetVMScaleSet3Min",
    kind: "virtualMachineScaleSets",
    operation: "read",
    windowSeconds: 180,
    allowedRequestCount: 200,
  },
  {
    name: "GetVMScaleSet30Min",
    kind: "virtualMachineScaleSets",
    operation: "read",
    windowSeconds: 1800,
    allowedRequestCount: 1300,
  },
];

const COMPUTE_POLICY_PREFIX = "Microsoft.Compute/";

interface Window {
  start: number;
  count: number;
  /** Set once a request was refused: every request before this time is refused too. */
  blockedUntil?: number;
}

type ComputeTakeResult =
  | { ok: true; remainingHeader: string }
  | { ok: false; remainingHeader: string; retryAfterSeconds: number; error: ArmError };

export class ComputeThrottle {
  #windows = new Map<string, Window>();

  constructor(
    readonly config: ComputeThrottleConfig,
    private readonly now: () => number = Date.now,
  ) {
    for (const p of config.policies) {
      if (!p.name || !(p.windowSeconds > 0) || !(p.allowedRequestCount >= 0)) {
        throw new RangeError(`invalid Compute throttling policy ${JSON.stringify(p)}`);
      }
    }
    if (config.retryAfterSeconds !== undefined && !(config.retryAfterSeconds >= 0)) {
      throw new RangeError("retryAfterSeconds must be >= 0");
    }
  }

  #window(policy: ComputePolicy, resourceKey: string, t: number): Window {
    const key = `${policy.name}\u0000${resourceKey}`;
    let w = this.#windows.get(key);
    if (!w || t >= w.start + policy.windowSeconds * 1000) {
      w = { start: t, count: 0, blockedUntil: w?.blockedUntil };
      this.#windows.set(key, w);
    }
    return w;
  }

  /** Counts one request against every policy covering it. */
  take(kind: ComputeKind, operation: ComputeOperation, resourceKey: string): ComputeTakeResult {
    const t = this.now();
    const policies = this.config.policies.filter((p) => p.kind === kind && p.operation === operation);
    const windows = policies.map((p) => this.#window(p, resourceKey, t));
    for (const w of windows) w.count += 1;
    const remainingHeader = policies
      .map((p, i) =>
        `${COMPUTE_POLICY_PREFIX}${p.name};${Math.max(0, p.allowedRequestCount - windows[i].count)}`
      )
      .join(",");

    let exceeded = -1;
    let retryAt = 0;
    policies.forEach((p, i) => {
      const w = windows[i];
      const blocked = w.blockedUntil !== undefined && t < w.blockedUntil;
      if (!blocked && w.count <= p.allowedRequestCount) return;
      const until = blocked
        ? w.blockedUntil!
        : t + 1000 * (this.config.retryAfterSeconds ?? (w.start + p.windowSeconds * 1000 - t) / 1000);
      w.blockedUntil = until;
      if (until > retryAt) {
        retryAt = until;
        exceeded = i;
      }
    });
    if (exceeded < 0) return { ok: true, remainingHeader };

    const policy = policies[exceeded];
    const w = windows[exceeded];
    const detail = JSON.stringify({
      operationGroup: policy.name,
      startTime: new Date(w.start).toISOString(),
      endTime: new Date(w.start + policy.windowSeconds * 1000).toISOString(),
      allowedRequestCount: policy.allowedRequestCount,
      measuredRequestCount: w.count,
    });
    return {
      ok: false,
      remainingHeader,
      retryAfterSeconds: Math.max(1, Math.ceil((retryAt - t) / 1000)),
      error: {
        status: 429,
        code: "OperationNotAllowed",
        message: "The server rejected the request because too many requests have been received for this " +
          "subscription.",
        details: [{ code: "TooManyRequests", target: policy.name, message: detail }],
      },
    };
  }
}
