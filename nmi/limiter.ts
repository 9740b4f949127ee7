// Upstream call pacing for the node's IMDS: at most `maxConcurrent` calls in flight and at most `perSecond`
// started in any rolling second (IMDS allows 5 concurrent and 20/s per VM for identity calls, shared by
// everything on the node, and answers 429 beyond). One source (the calling pod) may take at most two thirds
// of a second's starts (`perSourceShare`), so a flooding pod never uses the whole budget and another pod's
// call finds a slot at once. Waiting calls queue per source and sources take turns, so one pod flooding NMI
// waits behind its own calls, not in front of others'; a source may hold at most `maxQueuedPerSource`
// waiting calls (more are refused at once). An aborted caller (its client left, or its deadline passed)
// leaves the queue without taking a slot.

interface LimiterOptions {
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

/** Starts one source may make in a rolling second when `perSecond` are allowed: two thirds, at least one. */
export function sourceShare(perSecond: number): number {
  return Math.max(1, perSecond - Math.ceil(perSecond / 3));
}

export class UpstreamLimiter {
  readonly maxConcurrent: number;
  readonly perSecond: number;
  readonly maxQueuedPerSource: number;
  #now: () => number;
  #inflight = 0;
  /** Starts in the last second, oldest first. */
  #started: { at: number; source: string }[] = [];
  /** Starts one source may make in a rolling second. */
  readonly perSourceShare: number;
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
    this.perSourceShare = sourceShare(this.perSecond);
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

  #prune(now: number): void {
    while (this.#started.length && now - this.#started[0].at >= 1000) this.#started.shift();
  }

  #startsOf(source: string): number {
    let n = 0;
    for (const s of this.#started) if (s.source === source) n++;
    return n;
  }

  #canStart(source: string, now: number): boolean {
    this.#prune(now);
    return this.#inflight < this.maxConcurrent && this.#started.length < this.perSecond &&
      this.#startsOf(source) < this.perSourceShare;
  }

  #take(source: string, now: number): void {
    this.#inflight++;
    this.started++;
    this.peakInflight = Math.max(this.peakInflight, this.#inflight);
    this.#started.push({ at: now, source });
  }

  #acquire(signal: AbortSignal | undefined, source: string): Promise<void> {
    signal?.throwIfAborted();
    const now = this.#now();
    if (this.#queued === 0 && this.#canStart(source, now)) {
      this.#take(source, now);
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

  /**
   * The first waiter of the first source in turn order that may start now (within its share); that source
   * moves to the back of the turn order. Undefined when every waiting source has used its share.
   */
  #nextWaiter(): Waiter | undefined {
    for (const [source, queue] of this.#queues) {
      if (this.#startsOf(source) >= this.perSourceShare) continue;
      const w = queue.shift()!;
      this.#queued--;
      this.#queues.delete(source);
      if (queue.length) this.#queues.set(source, queue);
      return w;
    }
    return undefined;
  }

  /** Milliseconds until a start leaves the window and lets a waiting source start again. */
  #rateWait(now: number): number {
    const waiting = this.#started.length >= this.perSecond
      ? this.#started
      : this.#started.filter((s) => this.#queues.has(s.source));
    return Math.max(1, Math.ceil(1000 - (now - (waiting[0]?.at ?? now - 999))));
  }

  #pump(): void {
    while (this.#queued > 0) {
      const now = this.#now();
      this.#prune(now);
      if (this.#inflight >= this.maxConcurrent) return; // a finishing call pumps again
      const w = this.#started.length < this.perSecond ? this.#nextWaiter() : undefined;
      if (!w) {
        // Blocked by the rate: wake when the oldest start that blocks a waiting source leaves the window.
        if (this.#timer === undefined) {
          this.#timer = setTimeout(() => {
            this.#timer = undefined;
            this.#pump();
          }, this.#rateWait(now));
        }
        return;
      }
      if (w.signal && w.onAbort) w.signal.removeEventListener("abort", w.onAbort);
      this.#take(w.source, now);
      w.resolve();
    }
  }

  /** Cancels a pending window timer (for shutdown). */
  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
