// Waiting for the caches to change, without polling: every watch event of the caches NMI decides from
// (pods, assignments, bindings, identities, exceptions) calls `notify()`, which wakes every waiter to
// re-evaluate its decision. A waiter takes the next-change promise BEFORE evaluating, so an event that lands
// between its check and its sleep is never lost.

export class ChangeFeed {
  #waiters = new Set<() => void>();
  /** Bumped by every change: equal before and after an await means the caches did not change meanwhile. */
  version = 0;

  /** Wakes every current waiter. */
  notify(): void {
    this.version++;
    if (this.#waiters.size === 0) return;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  get waiting(): number {
    return this.#waiters.size;
  }

  /** Resolves at the next notify(); `cancel` releases it without waiting. */
  next(): { changed: Promise<void>; cancel: () => void } {
    let wake!: () => void;
    const changed = new Promise<void>((r) => wake = r);
    this.#waiters.add(wake);
    return { changed, cancel: () => this.#waiters.delete(wake) };
  }
}

/**
 * Re-evaluates `evaluate` after every change until it returns a value, `deadlineAt` (performance.now()
 * time) passes, or `signal` aborts; undefined on deadline or abort.
 */
export async function waitFor<T>(
  evaluate: () => T | undefined,
  feed: ChangeFeed,
  deadlineAt: number,
  signal?: AbortSignal,
): Promise<T | undefined> {
  while (true) {
    const next = feed.next();
    const value = evaluate();
    const left = deadlineAt - performance.now();
    if (value !== undefined || left <= 0 || signal?.aborted) {
      next.cancel();
      return value;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    await Promise.race([
      next.changed,
      new Promise<void>((r) => {
        timer = setTimeout(r, left);
      }),
      new Promise<void>((r) => {
        onAbort = () => r();
        signal?.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
    next.cancel();
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}
