// The node's IMDS, reached with plain fetch. Why not ManagedIdentityCredential: IMDS speaks exactly the
// protocol NMI serves, so its JSON can be passed through field for field (an SDK reshapes it into
// {token, expiresOnTimestamp}, dropping not_before/ext_expires_in and client_id); MSAL caches the IMDS
// endpoint and its tokens per process, which would hide NMI's own cache policy and its limiter; and errors
// must come back as IMDS's status and body so NMI can tell "Identity not found" (retry: assignment still
// propagating) from other refusals. Every call runs through the upstream limiter and a timeout.

import type { UpstreamLimiter } from "./limiter.ts";

export interface ImdsClientOptions {
  /** `http://169.254.169.254:80` */
  baseUrl: string;
  timeoutMs: number;
  limiter: UpstreamLimiter;
  /** Sent as User-Agent. */
  userAgent: string;
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

export class ImdsClient {
  readonly baseUrl: string;
  #opts: ImdsClientOptions;

  constructor(opts: ImdsClientOptions) {
    this.#opts = opts;
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
  }

  /** A managed-identity token for the identity `selector` names; none asks for the VM's default identity. */
  token(resource: string, selector: ImdsSelector = {}, signal?: AbortSignal): Promise<UpstreamAnswer> {
    const q = new URLSearchParams({ "api-version": "2018-02-01", resource });
    if (selector.clientId) q.set("client_id", selector.clientId);
    else if (selector.resourceId) q.set("msi_res_id", selector.resourceId);
    else if (selector.objectId) q.set("object_id", selector.objectId);
    return this.#opts.limiter.run(async () => {
      const timeout = AbortSignal.timeout(this.#opts.timeoutMs);
      let res: Response;
      try {
        res = await fetch(`${this.baseUrl}/metadata/identity/oauth2/token?${q}`, {
          headers: { Metadata: "true", "User-Agent": this.#opts.userAgent },
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
      } catch (e) {
        throw new UpstreamUnavailable(`IMDS at ${this.baseUrl}: ${transportMessage(e)}`);
      }
      const body = await readBody(res);
      return { ok: res.ok, status: res.status, body };
    }, signal);
  }
}
