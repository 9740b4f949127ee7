// Upstream call pacing for the node's IMDS: at most `maxConcurrent` calls in flight and at most `perSecond`
// started in any rolling second (IMDS allows 5 concurrent and 20/s per VM for identity calls, shared by
// everything on the node, and answers 429 beyond). Within that, starts are paced by a token bucket (a
// burst of maxConcurrent or a third of the rate, then one per 1/perSecond s): a saturating source would otherwise take the
// whole second's budget at its start, and another source's call would wait for the next second even with
// its turn. Waiting calls queue per source (the calling pod) and
// sources take turns, so one pod flooding NMI waits behind its own calls, not in front of others'; a source
// may hold at most `maxQueuedPerSource` waiting calls (more are refused at once). An aborted caller (its
// client left, or its deadline passed) leaves the queue without taking a slot.

export interface LimiterOptions {
  maxConcurrent: number;
  perSecond: number;
  /** Waiting calls one source may hold; default 64. */
  maxQueuedPerSource?: number;
  now?: () => number;
}

/** A source already holds its share of the queue. */
export class QueueFullError extends Error {
  override name = "QueueFullError";
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
  source: string;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class UpstreamLimiter {
  readonly maxConcurrent: number;
  readonly perSecond: number;
  readonly maxQueuedPerSource: number;
  #now: () => number;
  #inflight = 0;
  #started: number[] = [];
  readonly burst: number;
  #tokens: number;
  #refilledAt: number;
  /** Per source, in turn order: the next turn goes to the first key, which then moves to the end. */
  #queues = new Map<string, Waiter[]>();
  #queued = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Highest number of calls seen in flight at once (for tests and metrics). */
  peakInflight = 0;
  /** Calls started in total. */
  started = 0;

  constructor(opts: LimiterOptions) {
    this.maxConcurrent = opts.maxConcurrent;
    this.perSecond = opts.perSecond;
    this.maxQueuedPerSource = opts.maxQueuedPerSource ?? 64;
    this.#now = opts.now ?? (() => performance.now());
    this.burst = Math.min(this.perSecond, Math.max(this.maxConcurrent, Math.ceil(this.perSecond / 3)));
    this.#tokens = this.burst;
    this.#refilledAt = this.#now();
  }

  get inflight(): number {
    return this.#inflight;
  }

  get queued(): number {
    return this.#queued;
  }

  async run<T>(fn: () => Promise<T>, signal?: AbortSignal, source = ""): Promise<T> {
    await this.#acquire(signal, source);
    try {
      return await fn();
    } finally {
      this.#inflight--;
      this.#pump();
    }
  }

  #refill(now: number): void {
    this.#tokens = Math.min(this.burst, this.#tokens + (now - this.#refilledAt) * this.perSecond / 1000);
    this.#refilledAt = now;
  }

  #canStart(now: number): boolean {
    while (this.#started.length && now - this.#started[0] >= 1000) this.#started.shift();
    this.#refill(now);
    return this.#inflight < this.maxConcurrent && this.#started.length < this.perSecond && this.#tokens >= 1;
  }

  /** Milliseconds until the rate (window and bucket) allows a start; concurrency aside. */
  #rateWait(now: number): number {
    const window = this.#started.length < this.perSecond ? 0 : 1000 - (now - this.#started[0]);
    const bucket = this.#tokens >= 1 ? 0 : (1 - this.#tokens) * 1000 / this.perSecond;
    return Math.max(1, Math.ceil(Math.max(window, bucket)));
  }

  #take(now: number): void {
    this.#inflight++;
    this.started++;
    this.peakInflight = Math.max(this.peakInflight, this.#inflight);
    this.#started.push(now);
    this.#tokens -= 1;
  }

  #acquire(signal: AbortSignal | undefined, source: string): Promise<void> {
    signal?.throwIfAborted();
    const now = this.#now();
    if (this.#queued === 0 && this.#canStart(now)) {
      this.#take(now);
      return Promise.resolve();
    }
    const queue = this.#queues.get(source) ?? [];
    if (queue.length >= this.maxQueuedPerSource) {
      return Promise.reject(
        new QueueFullError(`${queue.length} IMDS calls of ${source || "this source"} are already waiting`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { resolve, reject, source, signal };
      if (signal) {
        w.onAbort = () => {
          this.#remove(w);
          reject(signal.reason);
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
      queue.push(w);
      this.#queued++;
      if (!this.#queues.has(source)) this.#queues.set(source, queue);
      this.#pump();
    });
  }

  #remove(w: Waiter): void {
    const queue = this.#queues.get(w.source);
    const i = queue?.indexOf(w) ?? -1;
    if (!queue || i < 0) return;
    queue.splice(i, 1);
    this.#queued--;
    if (queue.length === 0) this.#queues.delete(w.source);
  }

  /** The first waiter of the source whose turn it is; that source moves to the back of the turn order. */
  #nextWaiter(): Waiter {
    const [source, queue] = this.#queues.entries().next().value!;
    const w = queue.shift()!;
    this.#queued--;
    this.#queues.delete(source);
    if (queue.length) this.#queues.set(source, queue);
    return w;
  }

  #pump(): void {
    while (this.#queued > 0) {
      const now = this.#now();
      if (!this.#canStart(now)) {
        // Blocked by the rate (not concurrency): wake when the window or the bucket allows a start.
        if (this.#inflight < this.maxConcurrent && this.#timer === undefined) {
          const wait = this.#rateWait(now);
          this.#timer = setTimeout(() => {
            this.#timer = undefined;
            this.#pump();
          }, wait);
        }
        return;
      }
      const w = this.#nextWaiter();
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
