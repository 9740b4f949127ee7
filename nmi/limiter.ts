// Upstream call pacing for the node's IMDS: at most `maxConcurrent` calls in flight and at most `perSecond`
// started in any rolling second (IMDS allows 5 concurrent and 20/s per VM for identity calls, shared by
// everything on the node, and answers 429 beyond). Callers queue in FIFO order; an aborted caller leaves the
// queue without taking a slot.

export interface LimiterOptions {
  maxConcurrent: number;
  perSecond: number;
  now?: () => number;
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class UpstreamLimiter {
  readonly maxConcurrent: number;
  readonly perSecond: number;
  #now: () => number;
  #inflight = 0;
  #started: number[] = [];
  #queue: Waiter[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Highest number of calls seen in flight at once (for tests and metrics). */
  peakInflight = 0;
  /** Calls started in total. */
  started = 0;

  constructor(opts: LimiterOptions) {
    this.maxConcurrent = opts.maxConcurrent;
    this.perSecond = opts.perSecond;
    this.#now = opts.now ?? (() => performance.now());
  }

  get inflight(): number {
    return this.#inflight;
  }

  get queued(): number {
    return this.#queue.length;
  }

  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.#acquire(signal);
    try {
      return await fn();
    } finally {
      this.#inflight--;
      this.#pump();
    }
  }

  #canStart(now: number): boolean {
    while (this.#started.length && now - this.#started[0] >= 1000) this.#started.shift();
    return this.#inflight < this.maxConcurrent && this.#started.length < this.perSecond;
  }

  #take(now: number): void {
    this.#inflight++;
    this.started++;
    this.peakInflight = Math.max(this.peakInflight, this.#inflight);
    this.#started.push(now);
  }

  #acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const now = this.#now();
    if (this.#queue.length === 0 && this.#canStart(now)) {
      this.#take(now);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { resolve, reject, signal };
      if (signal) {
        w.onAbort = () => {
          const i = this.#queue.indexOf(w);
          if (i >= 0) this.#queue.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
      this.#queue.push(w);
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#queue.length) {
      const now = this.#now();
      if (!this.#canStart(now)) {
        // Blocked by the per-second window (not concurrency): wake when the oldest start leaves it.
        if (this.#inflight < this.maxConcurrent && this.#timer === undefined) {
          const wait = Math.max(1, 1000 - (now - this.#started[0]));
          this.#timer = setTimeout(() => {
            this.#timer = undefined;
            this.#pump();
          }, wait);
        }
        return;
      }
      const w = this.#queue.shift()!;
      if (w.signal && w.onAbort) w.signal.removeEventListener("abort", w.onAbort);
      this.#take(now);
      w.resolve();
    }
  }

  /** Cancels a pending window timer (for shutdown). */
  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
