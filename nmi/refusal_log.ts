// Refused token requests are logged, but a pod repeating a refused request must not flood the node's logs:
// each line is cut to a bounded length and at most `perSecond` lines are written per second; the rest are
// counted and reported in one line when logging resumes.

import type { Logger } from "../lib/log.ts";

/** Longest reason written per refused request. */
const MAX_REASON_CHARS = 300;

export class RefusalLog {
  #log: Logger;
  #perSecond: number;
  #now: () => number;
  #windowStart = 0;
  #inWindow = 0;
  #suppressed = 0;

  constructor(log: Logger, opts: { perSecond?: number; now?: () => number } = {}) {
    this.#log = log;
    this.#perSecond = opts.perSecond ?? 10;
    this.#now = opts.now ?? (() => performance.now());
  }

  refused(pod: string, status: number, reason: string): void {
    const now = this.#now();
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#inWindow = 0;
    }
    if (this.#inWindow >= this.#perSecond) {
      this.#suppressed++;
      return;
    }
    this.#inWindow++;
    if (this.#suppressed > 0) {
      this.#log.info("token refusals not logged (rate limit)", { count: this.#suppressed });
      this.#suppressed = 0;
    }
    const short = reason.length > MAX_REASON_CHARS ? `${reason.slice(0, MAX_REASON_CHARS)}...` : reason;
    this.#log.info("token refused", { pod: pod.slice(0, 320), status, reason: short });
  }
}
