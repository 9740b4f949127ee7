// ARM's request throttling: a token bucket per caller and operation class (docs/protocols.md,
// "## Throttling").
// Pure: the clock is injected so unit tests do not sleep.

export interface BucketConfig {
  /** Burst size: how many requests a full bucket allows back to back. */
  capacity: number;
  /** Tokens added per second, continuously. */
  refillPerSec: number;
}

export interface ThrottleConfig {
  reads: BucketConfig;
  writes: BucketConfig;
}

/** ARM's documented per-subscription, per-principal limits (2024 token-bucket model). */
export const ARM_DEFAULT_THROTTLE: ThrottleConfig = {
  reads: { capacity: 250, refillPerSec: 25 },
  writes: { capacity: 200, refillPerSec: 10 },
};

type TakeResult = { ok: true; remaining: number } | { ok: false; retryAfterSeconds: number };

export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(readonly config: BucketConfig, private readonly now: () => number = () => performance.now()) {
    if (!(config.capacity >= 1) || !(config.refillPerSec > 0)) {
      throw new RangeError("a token bucket needs capacity >= 1 and refillPerSec > 0");
    }
    this.#tokens = config.capacity;
    this.#last = now();
  }

  #refill(): void {
    const t = this.now();
    const elapsedSec = Math.max(0, t - this.#last) / 1000;
    this.#tokens = Math.min(this.config.capacity, this.#tokens + elapsedSec * this.config.refillPerSec);
    this.#last = t;
  }

  /** Whole tokens left, which is what the `x-ms-ratelimit-remaining-*` headers report. */
  remaining(): number {
    this.#refill();
    return Math.floor(this.#tokens);
  }

  take(): TakeResult {
    this.#refill();
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return { ok: true, remaining: Math.floor(this.#tokens) };
    }
    // Retry-After is whole seconds in ARM; round up so a client that obeys it always finds a token.
    const waitSec = (1 - this.#tokens) / this.config.refillPerSec;
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(waitSec)) };
  }
}

export type OperationClass = "reads" | "writes";

/** One pair of buckets per caller, as ARM counts per subscription and principal. */
export class Throttle {
  #buckets = new Map<string, Record<OperationClass, TokenBucket>>();

  constructor(
    readonly config: ThrottleConfig,
    private readonly now: () => number = () => performance.now(),
  ) {}

  #for(caller: string): Record<OperationClass, TokenBucket> {
    let b = this.#buckets.get(caller);
    if (!b) {
      b = {
        reads: new TokenBucket(this.config.reads, this.now),
        writes: new TokenBucket(this.config.writes, this.now),
      };
      this.#buckets.set(caller, b);
    }
    return b;
  }

  take(caller: string, cls: OperationClass): TakeResult {
    return this.#for(caller)[cls].take();
  }

  remaining(caller: string, cls: OperationClass): number {
    return this.#for(caller)[cls].remaining();
  }
}
