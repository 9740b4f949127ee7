// Decides which failures of a retry loop are worth a log line: the first of each distinct cause, and the
// same cause again only after `repeatMs`, so an outage shows up as one line per cause instead of one per
// retry. The reflector and leader election share it.

export class CauseLog {
  readonly repeatMs: number;
  #lastCause: string | undefined;
  #lastLoggedAt = -Infinity;
  #failures = 0;

  constructor(repeatMs = 300_000) {
    this.repeatMs = repeatMs;
  }

  /** Failed attempts since the last success. */
  get failures(): number {
    return this.#failures;
  }

  /** Counts a failure; true when it should be logged (a new cause, or the old one after `repeatMs`). */
  failed(cause: string, now = performance.now()): boolean {
    this.#failures++;
    if (cause === this.#lastCause && now - this.#lastLoggedAt < this.repeatMs) return false;
    this.#lastCause = cause;
    this.#lastLoggedAt = now;
    return true;
  }

  /** Ends a failure streak; returns how many attempts failed when any of them was logged, else 0. */
  recovered(): number {
    const logged = this.#lastCause !== undefined ? this.#failures : 0;
    this.#failures = 0;
    this.#lastCause = undefined;
    this.#lastLoggedAt = -Infinity;
    return logged;
  }
}
