// The one timer wait of the services. Two callers want two things from an abort: a loop that stops when
// its signal aborts asks "did the full time pass?" (resolve false), while a step inside an operation that
// the abort cancels as a whole wants the abort to travel up as the signal's reason (reject). Both are one
// function with an explicit choice, so no caller gets the other behaviour by accident.

/** What an abort during the wait does: resolve `false` (the default) or reject with the signal's reason. */
type OnAbort = "resolve" | "reject";

/**
 * Waits `ms` (negative counts as 0) unless `signal` aborts first. Resolves true when the full time passed;
 * on an abort (also one that happened before the call) resolves false, or with `onAbort: "reject"` rejects
 * with `signal.reason`. The timer and the abort listener are always removed, so test sanitizers see
 * nothing left behind.
 */
export function sleep(ms: number, signal?: AbortSignal, onAbort: OnAbort = "resolve"): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const aborted = () => onAbort === "reject" ? reject(signal!.reason) : resolve(false);
    if (signal?.aborted) return aborted();
    const abortListener = () => {
      clearTimeout(timer);
      aborted();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", abortListener);
      resolve(true);
    }, Math.max(0, ms));
    signal?.addEventListener("abort", abortListener, { once: true });
  });
}
