// The node's IMDS, reached with plain fetch. Why not ManagedIdentityCredential: IMDS speaks exactly the
// protocol NMI serves, so its JSON can be passed through field for field (an SDK reshapes it into
// {token, expiresOnTimestamp}, dropping not_before/ext_expires_in and client_id); MSAL caches the IMDS
// endpoint and its tokens per process, which would hide NMI's own cache policy and its limiter; and errors
// must come back as IMDS's status and body so NMI can tell "Identity not found" (retry: assignment still
// propagating) from other refusals. Every call runs through the upstream limiter (queued per calling pod,
// given up when its caller leaves) and a timeout. A refusal IMDS gives is remembered for a few seconds, so a
// pod repeating a bad request costs one upstream call, not one per request.

import { QueueFullError, type UpstreamLimiter } from "./limiter.ts";

interface ImdsClientOptions {
  /** `http://169.254.169.254:80` */
  baseUrl: string;
  timeoutMs: number;
  limiter: UpstreamLimiter;
  /** Sent as User-Agent. */
  userAgent: string;
  /** How long an IMDS refusal is answered from memory; default 5 s. */
  negativeTtlMs?: number;
  /** Observes each upstream call (not its time in the queue). */
  /**
   * Each upstream call, timed alone (no queue time); `kind` tells the VM's default identity from a named
   * one, as the original's adal_token_msi / adal_token_msi_userassignedid did.
   */
  onCall?: (kind: "imds" | "imds_user_assigned", ok: boolean, seconds: number) => void;
}

/** Who asks: the request's signal and the calling pod, for the limiter's per-source queues. */
interface ImdsCall {
  signal?: AbortSignal;
  source?: string;
}

export type UpstreamAnswer =
  | { ok: true; status: number; body: unknown }
  | { ok: false; status: number; body: unknown };

/** At most one is set, as in IMDS's own query. */
export interface ImdsSelector {
  clientId?: string;
  resourceId?: string;
  objectId?: string;
}

export class UpstreamUnavailable extends Error {
  override name = "UpstreamUnavailable";
}

/** IMDS's answer while an identity assignment has not reached this VM yet. */
export function isIdentityNotFound(a: UpstreamAnswer): boolean {
  if (a.ok || a.status !== 400) return false;
  const b = a.body as { error_description?: unknown } | null;
  return typeof b?.error_description === "string" && /identity not found/i.test(b.error_description);
}

/** Reads a JSON body, or the first line of text when it is not JSON. */
export async function readBody(res: Response): Promise<unknown> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return { error: "upstream_error", error_description: text.trim().split("\n")[0].slice(0, 300) };
  }
}

export function transportMessage(e: unknown): string {
  const inner = e instanceof Error && e.cause instanceof Error ? e.cause : e;
  if (inner instanceof DOMException && inner.name === "TimeoutError") return "timed out";
  return inner instanceof Error ? inner.message.split("\n")[0] : String(inner);
}

/** An IMDS refusal worth remembering: not "Identity not found" (retried while assignment propagates), nor 429. */
function isLastingRefusal(a: UpstreamAnswer): boolean {
  return !a.ok && a.status !== 429 && a.status < 500 && !isIdentityNotFound(a);
}

export class ImdsClient {
  readonly baseUrl: string;
  #opts: ImdsClientOptions;
  #refused = new Map<string, { answer: UpstreamAnswer; until: number }>();

  constructor(opts: ImdsClientOptions) {
    this.#opts = opts;
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
  }

  /** A managed-identity token for the identity `selector` names; none asks for the VM's default identity. */
  async token(resource: string, selector: ImdsSelector = {}, call: ImdsCall = {}): Promise<UpstreamAnswer> {
    const q = new URLSearchParams({ "api-version": "2018-02-01", resource });
    if (selector.clientId) q.set("client_id", selector.clientId);
    else if (selector.resourceId) q.set("msi_res_id", selector.resourceId);
    else if (selector.objectId) q.set("object_id", selector.objectId);
    const key = q.toString();
    const now = performance.now();
    const remembered = this.#refused.get(key);
    if (remembered && remembered.until > now) return remembered.answer;
    if (remembered) this.#refused.delete(key);
    let answer: UpstreamAnswer;
    try {
      answer = await this.#opts.limiter.run(
        () =>
          this.#call(
            key,
            selector.clientId || selector.resourceId || selector.objectId ? "imds_user_assigned" : "imds",
            call.signal,
          ),
        call.signal,
        call.source,
      );
    } catch (e) {
      if (e instanceof UpstreamUnavailable) throw e;
      const why = e instanceof QueueFullError ? e.message : transportMessage(e);
      throw new UpstreamUnavailable(`IMDS at ${this.baseUrl}: ${why}`);
    }
    if (isLastingRefusal(answer)) {
      if (this.#refused.size >= 10_000) this.#refused.clear(); // bounded: a flood of distinct bad requests
      this.#refused.set(key, { answer, until: performance.now() + (this.#opts.negativeTtlMs ?? 5000) });
    }
    return answer;
  }

  async #call(
    query: string,
    kind: "imds" | "imds_user_assigned",
    signal?: AbortSignal,
  ): Promise<UpstreamAnswer> {
    const timeout = AbortSignal.timeout(this.#opts.timeoutMs);
    const t0 = performance.now();
    let res: Response;
    let body: unknown;
    try {
      res = await fetch(`${this.baseUrl}/metadata/identity/oauth2/token?${query}`, {
        headers: { Metadata: "true", "User-Agent": this.#opts.userAgent },
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      body = await readBody(res);
    } catch (e) {
      this.#opts.onCall?.(kind, false, (performance.now() - t0) / 1000);
      throw new UpstreamUnavailable(`IMDS at ${this.baseUrl}: ${transportMessage(e)}`);
    }
    this.#opts.onCall?.(kind, res.ok, (performance.now() - t0) / 1000);
    return { ok: res.ok, status: res.status, body };
  }
}
