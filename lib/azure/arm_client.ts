// VM / scale-set identity reads and PATCHes through @azure/arm-compute, with ARM's throttling honoured the
// way the original did it right (docs/upstream.md, "## MIC assignment algorithm"; docs/protocols.md,
// "## Throttling"): a Retry-After from any answer (ARM's
// subscription limits, Compute's per-resource OperationNotAllowed, up to 20 minutes) sets a read or a
// write deadline, and until it passes calls fail here without reaching ARM. The SDK's own retries are off:
// the executor decides when to try again, so one identity cannot turn into a retry storm.

import { ComputeManagementClient } from "@azure/arm-compute";
import type { TokenCredential } from "@azure/identity";
import type { CurrentIdentity, IdentityPatchBody } from "./identity_delta.ts";
import type { ComputeTarget } from "./provider_id.ts";
import { parseRetryAfter } from "../retry_after.ts";
import { sleep } from "../sleep.ts";

type ArmOperation = "vm_get" | "vm_update" | "vmss_get" | "vmss_update";

function operationOf(t: ComputeTarget, write: boolean): ArmOperation {
  return `${t.kind}_${write ? "update" : "get"}` as ArmOperation;
}

/** An ARM answer that was not success (or a failed long-running operation). */
export class ArmError extends Error {
  override name = "ArmError";
  constructor(
    readonly operation: ArmOperation,
    /** HTTP status; 0 when no answer came or the LRO ended Failed/Canceled without one. */
    readonly status: number,
    /** ARM error code, e.g. LinkedAuthorizationFailed, OperationNotAllowed, AuthorizationFailed. */
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** Refused here: a Retry-After deadline has not passed yet. */
export class ThrottledLocally extends Error {
  override name = "ThrottledLocally";
  constructor(readonly operation: ArmOperation, readonly until: number) {
    super(`${operation}: ARM asked us to wait until ${new Date(until).toISOString()}`);
  }
}

export interface IdentityArm {
  /** The identity block ARM reports; undefined when the VM / scale set does not exist. */
  getIdentity(t: ComputeTarget, signal?: AbortSignal): Promise<CurrentIdentity | undefined>;
  /**
   * Sends one PATCH and follows its long-running operation to the end; returns the identity block of the
   * final resource (undefined when the operation's result carried none).
   */
  patchIdentity(
    t: ComputeTarget,
    body: IdentityPatchBody,
    signal?: AbortSignal,
  ): Promise<CurrentIdentity | undefined>;
  /** When reads / writes may go out again (0 = now). */
  deadlines(): { readUntil: number; writeUntil: number };
}

interface ArmClientOptions {
  credential: TokenCredential;
  /** ARM endpoint, e.g. https://management.azure.com/ */
  endpoint: string;
  /** Token audience (the cloud's ARM audience). */
  audience: string;
  userAgent?: string;
  /** First poll of a long-running operation after this long; each next one waits twice as long... */
  pollIntervalMs?: number;
  /** ...up to this (default 5 s). */
  maxPollIntervalMs?: number;
  /** Reports every call with its outcome, for metrics. */
  onCall?: (op: ArmOperation, code: string, seconds: number) => void;
  now?: () => number;
}

/** The `identity` block of a VM or scale set as ARM answers it. */
interface ArmIdentityBlock {
  type?: string;
  userAssignedIdentities?: Record<string, { clientId?: string | null; principalId?: string | null } | null>;
}

function currentIdentity(identity: ArmIdentityBlock | undefined): CurrentIdentity {
  return {
    type: identity?.type,
    userAssigned: Object.entries(identity?.userAssignedIdentities ?? {}).map(([id, v]) => ({
      id,
      resolved: !!(v?.clientId || v?.principalId),
      ...(v?.clientId ? { clientId: v.clientId } : {}),
    })),
  };
}

interface RestErrorLike {
  statusCode?: number;
  code?: string;
  message: string;
  response?: { headers?: { get(name: string): string | undefined } };
  details?: unknown;
}

function errorOf(op: ArmOperation, e: unknown, now: number): ArmError {
  if (e instanceof ArmError) return e;
  const r = (e ?? {}) as RestErrorLike;
  const retryAfterMs = parseRetryAfter(r.response?.headers?.get("retry-after"), now);
  const msg = e instanceof Error ? e.message : String(e);
  return new ArmError(
    op,
    r.statusCode ?? 0,
    r.code ?? (r.statusCode ? `HTTP${r.statusCode}` : "Failed"),
    msg,
    retryAfterMs,
  );
}

export function createArmClient(opts: ArmClientOptions): IdentityArm {
  return new ArmClient(opts);
}

/** What is read of a finished long-running operation's poller. */
interface FinishedOperation {
  operationState?: { status?: string; error?: unknown };
  result?: unknown;
}

/** The outcome of a finished long-running operation: its identity block, or an ArmError when it failed. */
function operationOutcome(
  op: ArmOperation,
  t: ComputeTarget,
  poller: FinishedOperation,
): CurrentIdentity | undefined {
  const state = poller.operationState;
  if (state?.status === "failed" || state?.status === "canceled") {
    const err = state.error as { code?: string; message?: string } | undefined;
    throw new ArmError(
      op,
      0,
      err?.code ?? `Operation${state.status}`,
      err?.message ?? `operation ${state.status}`,
    );
  }
  const result = poller.result as { provisioningState?: string; identity?: ArmIdentityBlock } | undefined;
  const provisioning = result?.provisioningState;
  if (provisioning && /^(failed|canceled)$/i.test(provisioning)) {
    throw new ArmError(
      op,
      0,
      `Provisioning${provisioning}`,
      `${t.resourceId}: provisioning state ${provisioning}`,
    );
  }
  return result?.identity ? currentIdentity(result.identity) : undefined;
}

class ArmClient implements IdentityArm {
  readonly #opts: ArmClientOptions;
  readonly #now: () => number;
  readonly #clients = new Map<string, ComputeManagementClient>();
  #readUntil = 0;
  #writeUntil = 0;

  constructor(opts: ArmClientOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  deadlines(): { readUntil: number; writeUntil: number } {
    return { readUntil: this.#readUntil, writeUntil: this.#writeUntil };
  }

  /** One SDK client per subscription. */
  #client(sub: string): ComputeManagementClient {
    let c = this.#clients.get(sub.toLowerCase());
    if (!c) {
      c = new ComputeManagementClient(this.#opts.credential, sub, {
        endpoint: this.#opts.endpoint.replace(/\/+$/, ""),
        credentials: { scopes: [`${this.#opts.audience.replace(/\/+$/, "")}/.default`] },
        retryOptions: { maxRetries: 0 },
        userAgentOptions: { userAgentPrefix: this.#opts.userAgent ?? "aad-pod-identity/MIC" },
      });
      this.#clients.set(sub.toLowerCase(), c);
    }
    return c;
  }

  /**
   * One call under ARM's deadlines: refused here while the read or write deadline runs; a Retry-After in
   * the answer moves that deadline (for every VM and scale set: ARM's limits are the subscription's).
   */
  async #call<T>(op: ArmOperation, write: boolean, fn: () => Promise<T>): Promise<T> {
    const now = this.#now;
    const opts = this.#opts;
    const until = write ? this.#writeUntil : this.#readUntil;
    if (now() < until) throw new ThrottledLocally(op, until);
    const t0 = performance.now();
    try {
      const out = await fn();
      opts.onCall?.(op, "OK", (performance.now() - t0) / 1000);
      return out;
    } catch (e) {
      const err = errorOf(op, e, now());
      opts.onCall?.(op, err.code, (performance.now() - t0) / 1000);
      if (
        err.retryAfterMs !== undefined && (err.status === 429 || err.status >= 500 || err.retryAfterMs > 0)
      ) {
        const at = now() + err.retryAfterMs;
        if (write) this.#writeUntil = Math.max(this.#writeUntil, at);
        else this.#readUntil = Math.max(this.#readUntil, at);
      }
      throw err;
    }
  }

  async getIdentity(t: ComputeTarget, signal?: AbortSignal): Promise<CurrentIdentity | undefined> {
    const op = operationOf(t, false);
    const c = this.#client(t.subscriptionId);
    const options = { abortSignal: signal };
    try {
      const res = await this.#call(
        op,
        false,
        () =>
          t.kind === "vmss"
            ? c.virtualMachineScaleSets.get(t.resourceGroup, t.name, options)
            : c.virtualMachines.get(t.resourceGroup, t.name, options),
      );
      return currentIdentity(res.identity);
    } catch (e) {
      if (e instanceof ArmError && e.status === 404) return undefined;
      throw e;
    }
  }

  patchIdentity(
    t: ComputeTarget,
    body: IdentityPatchBody,
    signal?: AbortSignal,
  ): Promise<CurrentIdentity | undefined> {
    const op = operationOf(t, true);
    const identity = body as Parameters<
      ComputeManagementClient["virtualMachines"]["update"]
    >[2]["identity"];
    const opts = this.#opts;
    return this.#call(op, true, async () => {
      const c = this.#client(t.subscriptionId);
      const options = { abortSignal: signal };
      const poller = t.kind === "vmss"
        ? c.virtualMachineScaleSets.update(t.resourceGroup, t.name, { identity }, options)
        : c.virtualMachines.update(t.resourceGroup, t.name, { identity }, options);
      // Our own polling, quick first and then slower: a fast operation is seen at once, a slow one
      // (10-60 s in Azure) costs a handful of reads instead of one per second.
      await poller.submitted();
      let delay = opts.pollIntervalMs ?? 100;
      const maxDelay = opts.maxPollIntervalMs ?? 5_000;
      while (!poller.isDone) {
        await sleep(delay, signal, "reject");
        delay = Math.min(delay * 2, maxDelay);
        await poller.poll({ abortSignal: signal });
      }
      return operationOutcome(op, t, poller);
    });
  }
}
