// One cached token per scope for MIC's ARM credential: reused until shortly before it expires (5 minutes
// early, or half its lifetime when it lives less than 10 minutes, as MSAL refreshes), fetched once for all
// concurrent callers, and kept when a refresh fails while it is still valid.

import type { AccessToken, GetTokenOptions, TokenCredential } from "./token_credential.ts";

/** When a token issued at `issuedAt` and expiring at `expiresOn` should be replaced (epoch ms). */
export function refreshAt(issuedAt: number, expiresOn: number): number {
  const lifetime = Math.max(0, expiresOn - issuedAt);
  return expiresOn - Math.min(5 * 60_000, lifetime / 2);
}

interface Entry {
  token?: AccessToken;
  refreshAt: number;
  inflight?: Promise<AccessToken>;
}

/** Keeps a token usable this long after a failed refresh at most: an expiring token is not handed out. */
const MIN_REMAINING_MS = 30_000;

export class TokenCache {
  readonly #entries = new Map<string, Entry>();

  constructor(
    readonly fetchToken: (scope: string) => Promise<AccessToken>,
    readonly now: () => number = Date.now,
  ) {}

  /** The cached token, or one fetch shared by every caller; a caller's signal ends only its own wait. */
  async get(scope: string, signal?: AbortSignal): Promise<AccessToken> {
    signal?.throwIfAborted();
    const entry = this.#entries.get(scope) ?? { refreshAt: 0 };
    this.#entries.set(scope, entry);
    if (entry.token && this.now() < entry.refreshAt) return entry.token;
    entry.inflight ??= this.#refresh(scope, entry);
    try {
      return await withSignal(entry.inflight, signal);
    } catch (e) {
      const t = entry.token;
      if (!signal?.aborted && t && t.expiresOnTimestamp - this.now() > MIN_REMAINING_MS) return t;
      throw e;
    }
  }

  async #refresh(scope: string, entry: Entry): Promise<AccessToken> {
    const issuedAt = this.now();
    try {
      const token = await this.fetchToken(scope);
      entry.token = token;
      entry.refreshAt = refreshAt(issuedAt, token.expiresOnTimestamp);
      return token;
    } finally {
      entry.inflight = undefined;
    }
  }
}

function withSignal<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The scope a credential is asked for, as one string (MIC asks for exactly one). */
function oneScope(scopes: string | string[]): string {
  const list = typeof scopes === "string" ? [scopes] : scopes;
  if (list.length !== 1) throw new TypeError(`exactly one scope expected, got ${list.length}`);
  return list[0];
}

/** A credential whose tokens come from `fetchToken` through one TokenCache. */
export abstract class CachedCredential implements TokenCredential {
  readonly #cache: TokenCache;

  constructor(now?: () => number) {
    this.#cache = new TokenCache((scope) => this.fetchToken(scope), now);
  }

  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
    return this.#cache.get(oneScope(scopes), options?.abortSignal);
  }

  protected abstract fetchToken(scope: string): Promise<AccessToken>;
}
