// When to poll a long-running ARM operation (docs/protocols.md, "## Long-running operations"). Pure: the
// caller measures time and sleeps. Three sources, strongest first:
//   - the operation's own Retry-After: a minimum, never polled sooner (capped, a broken header cannot
//     park MIC for hours);
//   - how long operations of this kind (VM / scale set) took recently: an EWMA of the durations the
//     operation status reported (endTime - startTime), so a warm MIC polls once, when the work is done;
//   - with neither, a quick first look (an operation may be done at once), then the SDK's own default
//     interval (2 s, @azure/core-lro's POLL_INTERVAL_IN_MS), then backing off by half the elapsed time.

export interface PollTiming {
  /** Never wait less than this between polls (and the first poll when nothing is known). */
  floorMs: number;
  /** The longest wait the client chooses itself. */
  maxMs: number;
  /** A Retry-After longer than this is cut to it. */
  retryAfterCapMs: number;
  /** The second wait when no Retry-After and no history tell how long operations take. */
  coldIntervalMs: number;
}

export const DEFAULT_POLL_TIMING: PollTiming = {
  floorMs: 100,
  maxMs: 5_000,
  retryAfterCapMs: 60_000,
  coldIntervalMs: 2_000,
};

interface PollState {
  /** Polls already sent for this operation. */
  polls: number;
  /** Since the PATCH was answered. */
  elapsedMs: number;
  /** The last answer's Retry-After in ms, if it had one. */
  retryAfterMs?: number;
  /** How long this kind of operation took recently; undefined when nothing was observed yet. */
  estimateMs?: number;
}

/** How long to wait before the next poll of an operation still in progress. */
export function nextPollDelay(s: PollState, t: PollTiming = DEFAULT_POLL_TIMING): number {
  const clamp = (ms: number) => Math.min(t.maxMs, Math.max(t.floorMs, ms));
  let own: number;
  if (s.estimateMs !== undefined && s.elapsedMs + t.floorMs <= s.estimateMs) {
    own = Math.max(t.floorMs, Math.min(t.retryAfterCapMs, s.estimateMs - s.elapsedMs));
  } else if (s.polls === 0) {
    own = t.floorMs;
  } else if (s.estimateMs === undefined && s.polls === 1) {
    own = clamp(t.coldIntervalMs);
  } else {
    own = clamp(s.elapsedMs / 2);
  }
  if (s.retryAfterMs === undefined) return own;
  return Math.max(own, Math.min(t.retryAfterCapMs, Math.max(t.floorMs, s.retryAfterMs)));
}

/** Recent operation durations per kind, as an exponentially weighted moving average (bounded). */
export class DurationEstimate {
  readonly #byKind = new Map<string, number>();
  constructor(readonly weight = 0.5, readonly maxMs = 60_000) {}

  get(kind: string): number | undefined {
    return this.#byKind.get(kind);
  }

  observe(kind: string, durationMs: number): void {
    if (!Number.isFinite(durationMs) || durationMs < 0) return;
    const d = Math.min(this.maxMs, durationMs);
    const prev = this.#byKind.get(kind);
    this.#byKind.set(kind, prev === undefined ? d : prev + this.weight * (d - prev));
  }
}
