// The pure decisions of the event recorder, after client-go's EventCorrelator: a per-object spam filter (a
// token bucket per source+object) and an aggregator that folds many similar events (same source, object,
// type and reason, different messages) into one. Both take a clock so tests can drive time.

export interface SpamFilterOptions {
  /** Events an object may get in a burst (client-go: 25). */
  burst?: number;
  /** One more token per this many ms (client-go: 1 per 5 minutes). */
  refillEveryMs?: number;
  /** Objects remembered; the least recently used is forgotten first. */
  cacheSize?: number;
  now?: () => number;
}

/** client-go's EventSourceObjectSpamFilter: true when the event may be written, false when it is spam. */
export class SpamFilter {
  readonly burst: number;
  readonly refillEveryMs: number;
  #cacheSize: number;
  #now: () => number;
  #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(opts: SpamFilterOptions = {}) {
    this.burst = opts.burst ?? 25;
    this.refillEveryMs = opts.refillEveryMs ?? 300_000;
    this.#cacheSize = opts.cacheSize ?? 4096;
    this.#now = opts.now ?? (() => performance.now());
    if (!(this.burst >= 1 && this.refillEveryMs > 0)) throw new RangeError("spam filter needs burst >= 1");
  }

  allow(key: string): boolean {
    const now = this.#now();
    const b = this.#buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) / this.refillEveryMs);
    b.at = now;
    this.#buckets.delete(key);
    this.#buckets.set(key, b);
    while (this.#buckets.size > this.#cacheSize) this.#buckets.delete(this.#buckets.keys().next().value!);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

export interface AggregatorOptions {
  /** Distinct messages within the interval before they are combined (client-go: 10). */
  maxEvents?: number;
  /** A group with no event for this long starts over (client-go: 10 minutes). */
  maxIntervalMs?: number;
  cacheSize?: number;
  now?: () => number;
}

export const COMBINED_PREFIX = "(combined from similar events): ";

/**
 * client-go's EventAggregator. `group` is the similarity key (source, object, type, reason); the answer is
 * the message to write and the key under which repeats are counted: the message's own key until the group
 * has seen maxEvents distinct messages, then the group's one combined event.
 */
export class EventAggregator {
  readonly maxEvents: number;
  readonly maxIntervalMs: number;
  #cacheSize: number;
  #now: () => number;
  #groups = new Map<string, { messages: Set<string>; at: number }>();

  constructor(opts: AggregatorOptions = {}) {
    this.maxEvents = opts.maxEvents ?? 10;
    this.maxIntervalMs = opts.maxIntervalMs ?? 600_000;
    this.#cacheSize = opts.cacheSize ?? 4096;
    this.#now = opts.now ?? (() => performance.now());
    if (!(this.maxEvents >= 1)) throw new RangeError("aggregator needs maxEvents >= 1");
  }

  aggregate(group: string, message: string): { message: string; key: string; combined: boolean } {
    const now = this.#now();
    let g = this.#groups.get(group);
    if (!g || now - g.at > this.maxIntervalMs) g = { messages: new Set(), at: now };
    g.at = now;
    g.messages.add(message);
    this.#groups.delete(group);
    this.#groups.set(group, g);
    while (this.#groups.size > this.#cacheSize) this.#groups.delete(this.#groups.keys().next().value!);
    if (g.messages.size < this.maxEvents) {
      return { message, key: `${group}\u0000${message}`, combined: false };
    }
    // Keep the set bounded, as client-go does (it drops an arbitrary member; we drop the oldest).
    g.messages.delete(g.messages.values().next().value!);
    return { message: COMBINED_PREFIX + message, key: group, combined: true };
  }
}
