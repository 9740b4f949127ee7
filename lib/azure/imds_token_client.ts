// MIC's managed-identity token from the node's IMDS: GET /metadata/identity/oauth2/token with
// `Metadata: true`, api-version 2018-02-01, the resource (the scope without `/.default`) and the identity's
// client id, retried as Microsoft documents for IMDS
// (https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#error-handling):
// 404 and 410 while IMDS updates (410 for up to 70 s), 429 and 5xx with exponential backoff, Retry-After
// honoured. The address is the one @azure/identity reads: AZURE_POD_IDENTITY_AUTHORITY_HOST, else
// http://169.254.169.254.

import { parseRetryAfter } from "../retry_after.ts";
import { sleep } from "../sleep.ts";
import { tokenError, tokenFromAnswer } from "./aad_token_client.ts";
import { readBoundedJson } from "./bounded_body.ts";
import { CachedCredential } from "./token_cache.ts";
import { type AccessToken, TokenRequestError } from "./token_credential.ts";

export const DEFAULT_IMDS_HOST = "http://169.254.169.254";

interface ImdsRetryPolicy {
  /** Retries of 404 / 429 / 5xx. */
  maxRetries: number;
  /** First backoff; each next one doubles. */
  baseMs: number;
  /** 410 is retried until this long has passed since the first try. */
  goneForMs: number;
  /** A Retry-After longer than this is cut to it. */
  maxDelayMs: number;
}

const IMDS_RETRY: ImdsRetryPolicy = {
  maxRetries: 5,
  baseMs: 800,
  goneForMs: 70_000,
  maxDelayMs: 60_000,
};

/** The wait before retry number `attempt` (1-based) after `status`; undefined = give up. */
export function imdsRetryDelay(
  status: number,
  attempt: number,
  elapsedMs: number,
  retryAfterMs: number | undefined,
  p: ImdsRetryPolicy = IMDS_RETRY,
): number | undefined {
  const backoff = Math.min(p.maxDelayMs, p.baseMs * 2 ** (attempt - 1));
  const delay = Math.min(p.maxDelayMs, Math.max(backoff, retryAfterMs ?? 0));
  if (status === 410) return elapsedMs < p.goneForMs ? Math.max(delay, 3_000) : undefined;
  const transient = status === 404 || status === 429 || status >= 500;
  return transient && attempt <= p.maxRetries ? delay : undefined;
}

interface ManagedIdentityOptions {
  /** IMDS's origin, e.g. http://169.254.169.254 */
  host: string;
  /** A user-assigned identity's client id; the VM's system-assigned identity when absent. */
  clientId?: string;
  userAgent?: string;
  timeoutMs?: number;
  retry?: ImdsRetryPolicy;
  now?: () => number;
}

export class ManagedIdentityCredential extends CachedCredential {
  readonly #o: ManagedIdentityOptions;

  constructor(o: ManagedIdentityOptions) {
    super(o.now);
    this.#o = o;
  }

  protected fetchToken(scope: string): Promise<AccessToken> {
    return this.#fetchWithRetries(scope);
  }

  #url(scope: string): string {
    const url = new URL(`${this.#o.host.replace(/\/+$/, "")}/metadata/identity/oauth2/token`);
    url.searchParams.set("api-version", "2018-02-01");
    url.searchParams.set("resource", scope.replace(/\/\.default$/, ""));
    if (this.#o.clientId) url.searchParams.set("client_id", this.#o.clientId);
    return url.toString();
  }

  async #fetchWithRetries(scope: string): Promise<AccessToken> {
    const now = this.#o.now ?? Date.now;
    const started = now();
    for (let attempt = 1;; attempt++) {
      try {
        return await this.#fetchOnce(scope);
      } catch (e) {
        if (!(e instanceof TokenRequestError)) throw e;
        const delay = imdsRetryDelay(e.status, attempt, now() - started, e.retryAfterMs, this.#o.retry);
        if (delay === undefined) throw e;
        await sleep(delay);
      }
    }
  }

  async #fetchOnce(scope: string): Promise<AccessToken> {
    const url = this.#url(scope);
    const from = `IMDS token${this.#o.clientId ? ` for ${this.#o.clientId}` : ""} at ${this.#o.host}`;
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { "metadata": "true", "user-agent": this.#o.userAgent ?? "aad-pod-identity/MIC" },
        signal: AbortSignal.timeout(this.#o.timeoutMs ?? 30_000),
      });
    } catch (e) {
      throw new TokenRequestError(0, "unreachable", `${from}: ${(e as Error).message.split("\n")[0]}`);
    }
    const body = await readBoundedJson(res, from);
    if (!res.ok) {
      const err = tokenError(res.status, body, from);
      err.retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
      throw err;
    }
    return tokenFromAnswer(body, (this.#o.now ?? Date.now)(), from);
  }
}
