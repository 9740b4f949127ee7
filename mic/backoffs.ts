// Exponential backoff with jitter per key (a VM / scale set, or one identity on it), so one failing
// resource or one bad identity waits alone while everything else proceeds.

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  /** 0.2 = up to +20% random extra, so retries of many keys spread out. */
  jitter: number;
}

export class Backoffs {
  #policy: BackoffPolicy;
  #now: () => number;
  #state = new Map<string, { failures: number; until: number }>();

  constructor(policy: BackoffPolicy, now: () => number = Date.now) {
    this.#policy = policy;
    this.#now = now;
  }

  /** Records a failure; the key waits at least until `atLeastUntil` (a Retry-After). Returns the time. */
  fail(key: string, atLeastUntil = 0): number {
    const s = this.#state.get(key) ?? { failures: 0, until: 0 };
    const { baseMs, maxMs, jitter } = this.#policy;
    const delay = Math.min(maxMs, baseMs * 2 ** s.failures) * (1 + jitter * Math.random());
    s.failures++;
    s.until = Math.max(this.#now() + delay, atLeastUntil);
    this.#state.set(key, s);
    return s.until;
  }

  succeed(key: string): void {
    this.#state.delete(key);
  }

  /** Until when the key must wait (0 or a past time: go). */
  until(key: string): number {
    return this.#state.get(key)?.until ?? 0;
  }

  blocked(key: string): boolean {
    return this.until(key) > this.#now();
  }

  failures(key: string): number {
    return this.#state.get(key)?.failures ?? 0;
  }
}
