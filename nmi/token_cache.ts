// Tokens per (identity, resource): served from memory while they have at least `minLifetimeMs` left,
// refreshed in the background once they drop below `refreshAheadMs`, and fetched once for any number of
// concurrent identical requests (single flight). Authorisation is NOT this module's job: the caller checks
// pod -> identity on every request before asking the cache, so a cached token never outlives a binding.

import type { Token } from "./token.ts";

export interface CachePolicy {
  minLifetimeMs: number;
  refreshAheadMs: number;
}

export type Freshness = "fresh" | "refresh_ahead" | "unusable";

/** Pure: what a cached token is good for at `nowMs`. */
export function freshness(token: Token, nowMs: number, policy: CachePolicy): Freshness {
  const remaining = token.expiresOn * 1000 - nowMs;
  if (remaining < policy.minLifetimeMs) return "unusable";
  if (remaining < policy.refreshAheadMs) return "refresh_ahead";
  return "fresh";
}

/** A background refresh is not retried sooner than this after the last one (IMDS may hand back the same token). */
export const REFRESH_RETRY_MS = 60_000;

interface Entry {
  token: Token;
  lastRefreshAt: number;
}

export interface CacheResult {
  token: Token;
  /** "cache": served from memory; "upstream": this request's fetch; "shared": joined another's fetch. */
  from: "cache" | "upstream" | "shared";
}

export class TokenCache {
  readonly policy: CachePolicy;
  #entries = new Map<string, Entry>();
  #inflight = new Map<string, Promise<Token>>();
  #now: () => number;
  #onBackgroundError: (key: string, e: unknown) => void;
  #onResult: (from: CacheResult["from"]) => void;
  stats = { hits: 0, misses: 0, shared: 0, refreshes: 0 };

  constructor(
    policy: CachePolicy,
    opts: {
      now?: () => number;
      onBackgroundError?: (key: string, e: unknown) => void;
      onResult?: (from: CacheResult["from"]) => void;
    } = {},
  ) {
    this.#onResult = opts.onResult ?? (() => {});
    this.policy = policy;
    this.#now = opts.now ?? Date.now;
    this.#onBackgroundError = opts.onBackgroundError ?? (() => {});
  }

  get size(): number {
    return this.#entries.size;
  }

  async get(key: string, fetch: () => Promise<Token>): Promise<CacheResult> {
    const now = this.#now();
    const entry = this.#entries.get(key);
    if (entry) {
      const state = freshness(entry.token, now, this.policy);
      if (state !== "unusable") {
        this.stats.hits++;
        if (
          state === "refresh_ahead" && !this.#inflight.has(key) &&
          now - entry.lastRefreshAt >= REFRESH_RETRY_MS
        ) {
          entry.lastRefreshAt = now;
          this.stats.refreshes++;
          this.#flight(key, fetch).catch((e) => this.#onBackgroundError(key, e));
        }
        this.#onResult("cache");
        return { token: entry.token, from: "cache" };
      }
      this.#entries.delete(key);
    }
    const pending = this.#inflight.get(key);
    if (pending) {
      this.stats.shared++;
      this.#onResult("shared");
      return { token: await pending, from: "shared" };
    }
    this.stats.misses++;
    this.#onResult("upstream");
    return { token: await this.#flight(key, fetch), from: "upstream" };
  }

  #flight(key: string, fetch: () => Promise<Token>): Promise<Token> {
    const p = (async () => {
      try {
        const token = await fetch();
        // A token already too short-lived is handed to this request but not kept.
        if (freshness(token, this.#now(), this.policy) !== "unusable") {
          this.#entries.set(key, { token, lastRefreshAt: this.#now() });
        }
        return token;
      } finally {
        this.#inflight.delete(key);
      }
    })();
    this.#inflight.set(key, p);
    return p;
  }

  /** Drops every entry whose key starts with `prefix` (an identity deleted or changed). */
  forget(prefix: string): void {
    for (const k of [...this.#entries.keys()]) if (k.startsWith(prefix)) this.#entries.delete(k);
  }

  /** Drops entries that can no longer be served. */
  sweep(): void {
    const now = this.#now();
    for (const [k, e] of this.#entries) {
      if (freshness(e.token, now, this.policy) === "unusable") this.#entries.delete(k);
    }
  }
}
