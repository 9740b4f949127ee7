// Tokens per (identity, resource): served from memory while they have at least `minLifetimeMs` left,
// refreshed in the background once they drop below `refreshAheadMs`, and fetched once for any number of
// concurrent identical requests (single flight). A fetch gets its own signal, aborted only when every request
// waiting for it has left (a background refresh never is): one client leaving never fails the others, and
// when all leave, the upstream call (or its place in the IMDS queue) is given up. Authorisation is NOT this
// module's job: the caller checks pod -> identity on every request before asking the cache, so a cached
// token never outlives a binding.

import type { Token } from "./token.ts";

interface CachePolicy {
  minLifetimeMs: number;
  refreshAheadMs: number;
}

type Freshness = "fresh" | "refresh_ahead" | "unusable";

/** Pure: what a cached token is good for at `nowMs`. */
export function freshness(token: Token, nowMs: number, policy: CachePolicy): Freshness {
  const remaining = token.expiresOn * 1000 - nowMs;
  if (remaining < policy.minLifetimeMs) return "unusable";
  if (remaining < policy.refreshAheadMs) return "refresh_ahead";
  return "fresh";
}

/** A background refresh is not retried sooner than this after the last one (IMDS may hand back the same token). */
const REFRESH_RETRY_MS = 60_000;

interface Entry {
  token: Token;
  lastRefreshAt: number;
}

interface Flight {
  promise: Promise<Token>;
  controller: AbortController;
  /** Requests waiting for it; a background refresh holds it open for good. */
  waiters: number;
  background: boolean;
}

type Fetch = (signal: AbortSignal) => Promise<Token>;

interface CacheResult {
  token: Token;
  /** "cache": served from memory; "upstream": this request's fetch; "shared": joined another's fetch. */
  from: "cache" | "upstream" | "shared";
}

export class TokenCache {
  readonly policy: CachePolicy;
  #entries = new Map<string, Entry>();
  #inflight = new Map<string, Flight>();
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

  async get(key: string, fetch: Fetch, signal?: AbortSignal): Promise<CacheResult> {
    signal?.throwIfAborted();
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
          this.#flight(key, fetch, true).promise.catch((e) => this.#onBackgroundError(key, e));
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
      return { token: await this.#join(pending, signal), from: "shared" };
    }
    this.stats.misses++;
    this.#onResult("upstream");
    return { token: await this.#join(this.#flight(key, fetch, false), signal), from: "upstream" };
  }

  /** Waits for a flight until it ends or `signal` aborts; the last waiter to leave aborts the flight. */
  async #join(flight: Flight, signal?: AbortSignal): Promise<Token> {
    if (!signal) {
      flight.background = true; // a caller that can never leave keeps it alive
      return await flight.promise;
    }
    flight.waiters++;
    let onAbort: (() => void) | undefined;
    try {
      return await Promise.race([
        flight.promise,
        new Promise<never>((_, reject) => {
          onAbort = () => reject(signal.reason);
          signal.addEventListener("abort", onAbort, { once: true });
        }),
      ]);
    } finally {
      signal.removeEventListener("abort", onAbort!);
      flight.waiters--;
      if (flight.waiters === 0 && !flight.background) flight.controller.abort(signal.reason);
    }
  }

  #flight(key: string, fetch: Fetch, background: boolean): Flight {
    const controller = new AbortController();
    const flight: Flight = {
      promise: Promise.resolve(undefined as unknown as Token),
      controller,
      waiters: 0,
      background,
    };
    flight.promise = (async () => {
      try {
        const token = await fetch(controller.signal);
        // A token already too short-lived is handed to this request but not kept.
        if (freshness(token, this.#now(), this.policy) !== "unusable") {
          this.#entries.set(key, { token, lastRefreshAt: this.#now() });
        }
        return token;
      } finally {
        if (this.#inflight.get(key) === flight) this.#inflight.delete(key);
      }
    })();
    flight.promise.catch(() => {}); // awaited by its waiters; an abandoned one must not go unhandled
    this.#inflight.set(key, flight);
    return flight;
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
