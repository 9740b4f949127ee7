// Whether the pod watch is known to be fresh: it showed progress (an event, a bookmark or a completed LIST)
// within `boundMs`. A stalled apiserver link looks exactly like a quiet cluster to a watch, so after the
// bound NMI stops trusting its cache alone for who holds an IP (issue 19 item 7): the caller resolver then
// confirms the pod with a direct GET, and refuses with 503 when it cannot. Progress is sampled once a
// second (and on every question), so "fresh" is never off by more than that.

export class WatchFreshness {
  readonly boundMs: number;
  #progress: () => number;
  #now: () => number;
  #last: number;
  #changedAt: number;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(progress: () => number, boundMs: number, now: () => number = () => performance.now()) {
    this.#progress = progress;
    this.boundMs = boundMs;
    this.#now = now;
    this.#last = progress();
    this.#changedAt = now();
  }

  /** Notes progress since the last look. */
  sample(): void {
    const v = this.#progress();
    if (v !== this.#last) {
      this.#last = v;
      this.#changedAt = this.#now();
    }
  }

  isFresh(): boolean {
    this.sample();
    return this.#now() - this.#changedAt <= this.boundMs;
  }

  /** Samples every second until `signal` aborts. */
  start(signal: AbortSignal): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.sample(), 1000);
    signal.addEventListener("abort", () => clearInterval(this.#timer), { once: true });
  }
}
