// Retry pacing for the watch loop and leader election: exponential growth so a broken apiserver is not
// hammered, jitter so many clients restarting together do not retry in lockstep, and a cap so recovery is
// noticed within a bounded time.

export interface BackoffOptions {
  /** First delay, before jitter. */
  initialMs?: number;
  /** Upper bound on the delay before jitter is added. */
  maxMs?: number;
  factor?: number;
  /** Extra random fraction added on top: delay * (1 + jitter * random()). 0 disables jitter. */
  jitter?: number;
  /** Injectable for tests; returns [0, 1). */
  random?: () => number;
}

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  readonly jitter: number;
  #random: () => number;
  #attempt = 0;

  constructor(opts: BackoffOptions = {}) {
    this.initialMs = opts.initialMs ?? 1_000;
    this.maxMs = opts.maxMs ?? 30_000;
    this.factor = opts.factor ?? 2;
    this.jitter = opts.jitter ?? 0.5;
    this.#random = opts.random ?? Math.random;
    if (this.initialMs <= 0 || this.maxMs < this.initialMs || this.factor < 1 || this.jitter < 0) {
      throw new RangeError(`invalid backoff ${JSON.stringify(opts)}`);
    }
  }

  /** How many delays were handed out since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  /** The next delay; each call grows the base until it reaches the cap. */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * this.factor ** this.#attempt);
    this.#attempt++;
    return Math.round(base * (1 + this.jitter * this.#random()));
  }

  reset(): void {
    this.#attempt = 0;
  }
}
