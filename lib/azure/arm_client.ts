// VM / scale-set identity reads and PATCHes with fetch (the ARM REST calls @azure/arm-compute 25.1.1 made:
// api-version 2026-04-01, the same paths and bodies), with ARM's throttling honoured the way the original
// did it right (docs/upstream.md, "## MIC assignment algorithm"; docs/protocols.md, "## Throttling"): a
// Retry-After from any error answer (ARM's subscription limits, Compute's per-resource OperationNotAllowed,
// up to 20 minutes) sets a read or a write deadline, and until it passes calls fail here without reaching
// ARM. No retries here: the executor decides when to try again, so one identity cannot turn into a retry
// storm. Long-running operations: arm_lro.ts, polled when lro_timing.ts says.

import { sleep } from "../sleep.ts";
import { ArmError, type ArmOperation, ThrottledLocally } from "./arm_error.ts";
import { type ArmAnswer, armErrorOf, armFetch } from "./arm_http.ts";
import { followOperation } from "./arm_lro.ts";
import type { CurrentIdentity, IdentityPatchBody } from "./identity_delta.ts";
import { DEFAULT_POLL_TIMING, DurationEstimate } from "./lro_timing.ts";
import type { ComputeTarget } from "./provider_id.ts";
import type { TokenCredential } from "./token_credential.ts";

export { ArmError, ThrottledLocally };

/** The Compute api-version @azure/arm-compute 25.1.1 sends for virtualMachines / virtualMachineScaleSets. */
const COMPUTE_API_VERSION = "2026-04-01";

function operationOf(t: ComputeTarget, write: boolean): ArmOperation {
  return `${t.kind}_${write ? "update" : "get"}` as ArmOperation;
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
  /** The shortest wait between polls of a long-running operation, and the first when nothing is known. */
  pollIntervalMs?: number;
  /** The longest wait MIC chooses itself between polls (default 5 s; a Retry-After may ask for up to 60 s). */
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

interface ArmComputeResource {
  identity?: ArmIdentityBlock;
  properties?: { provisioningState?: string };
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

/** The identity block of a finished operation's resource, or an ArmError when its provisioning failed. */
function operationOutcome(op: ArmOperation, t: ComputeTarget, body: unknown): CurrentIdentity | undefined {
  const result = (typeof body === "object" && body !== null ? body : undefined) as
    | ArmComputeResource
    | undefined;
  const provisioning = result?.properties?.provisioningState;
  if (typeof provisioning === "string" && /^(failed|canceled)$/i.test(provisioning)) {
    throw new ArmError(
      op,
      0,
      `Provisioning${provisioning}`,
      `${t.resourceId}: provisioning state ${provisioning}`,
    );
  }
  return result?.identity ? currentIdentity(result.identity) : undefined;
}

export function createArmClient(opts: ArmClientOptions): IdentityArm {
  return new ArmClient(opts);
}

class ArmClient implements IdentityArm {
  readonly #opts: ArmClientOptions;
  readonly #now: () => number;
  readonly #endpoint: string;
  readonly #scope: string;
  readonly #estimate = new DurationEstimate();
  #readUntil = 0;
  #writeUntil = 0;

  constructor(opts: ArmClientOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#endpoint = opts.endpoint.replace(/\/+$/, "");
    this.#scope = `${opts.audience.replace(/\/+$/, "")}/.default`;
  }

  deadlines(): { readUntil: number; writeUntil: number } {
    return { readUntil: this.#readUntil, writeUntil: this.#writeUntil };
  }

  #url(t: ComputeTarget): string {
    const kind = t.kind === "vmss" ? "virtualMachineScaleSets" : "virtualMachines";
    const seg = encodeURIComponent;
    return `${this.#endpoint}/subscriptions/${seg(t.subscriptionId)}/resourceGroups/${seg(t.resourceGroup)}` +
      `/providers/Microsoft.Compute/${kind}/${seg(t.name)}?api-version=${COMPUTE_API_VERSION}`;
  }

  /** One authorized request; an answer outside `ok` is thrown as ArmError. */
  async #send(
    op: ArmOperation,
    method: "GET" | "PATCH",
    url: string,
    ok: number[],
    signal?: AbortSignal,
    body?: unknown,
  ): Promise<ArmAnswer> {
    if (!url.startsWith("https://")) {
      // As @azure/core-rest-pipeline's bearer policy: a token never travels unencrypted.
      throw new ArmError(op, 0, "InsecureEndpoint", `refusing to send a bearer token to a non-https URL`);
    }
    let token: string;
    try {
      const t = await this.#opts.credential.getToken(this.#scope, { abortSignal: signal });
      if (!t) throw new Error("the credential gave no token");
      token = t.token;
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      throw new ArmError(op, 0, typeof code === "string" ? code : "CredentialFailed", (e as Error).message);
    }
    const userAgent = this.#opts.userAgent ?? "aad-pod-identity/MIC";
    const a = await armFetch({ op, method, url, token, userAgent, body, signal });
    if (!ok.includes(a.status)) throw armErrorOf(op, a, this.#now());
    return a;
  }

  /**
   * One call under ARM's deadlines: refused here while the read or write deadline runs; a Retry-After in
   * an error answer moves that deadline (for every VM and scale set: ARM's limits are the subscription's).
   */
  async #call<T>(op: ArmOperation, write: boolean, fn: () => Promise<T>): Promise<T> {
    const now = this.#now;
    const until = write ? this.#writeUntil : this.#readUntil;
    if (now() < until) throw new ThrottledLocally(op, until);
    const t0 = performance.now();
    try {
      const out = await fn();
      this.#opts.onCall?.(op, "OK", (performance.now() - t0) / 1000);
      return out;
    } catch (e) {
      const err = e instanceof ArmError
        ? e
        : new ArmError(op, 0, "Failed", e instanceof Error ? e.message : String(e));
      this.#opts.onCall?.(op, err.code, (performance.now() - t0) / 1000);
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
    try {
      const a = await this.#call(op, false, () => this.#send(op, "GET", this.#url(t), [200], signal));
      return currentIdentity((a.body as ArmComputeResource | undefined)?.identity);
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
    const opts = this.#opts;
    return this.#call(op, true, async () => {
      const url = this.#url(t);
      const initial = await this.#send(op, "PATCH", url, [200, 201, 202], signal, { identity: body });
      const final = await followOperation(initial, url, {
        op,
        kind: t.kind,
        get: (u) => this.#send(op, "GET", u, [200, 201, 202], signal),
        wait: (ms) => sleep(ms, signal, "reject"),
        now: this.#now,
        estimate: this.#estimate,
        timing: {
          ...DEFAULT_POLL_TIMING,
          floorMs: opts.pollIntervalMs ?? DEFAULT_POLL_TIMING.floorMs,
          maxMs: opts.maxPollIntervalMs ?? DEFAULT_POLL_TIMING.maxMs,
        },
        origin: new URL(this.#endpoint).origin,
        apiVersion: COMPUTE_API_VERSION,
      });
      return operationOutcome(op, t, final);
    });
  }
}
