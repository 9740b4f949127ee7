// One memory-reducing collection once NMI is quiet again after a burst (token requests or watch events).
// Under a burst V8 scavenges every few dozen requests: what is in flight at each one (requests being
// answered, events being decoded) survives twice and is promoted, and the mark-compacts that garbage
// triggers leave the grown old generation where it is (`--trace-gc-nvp`, one 8 s run at 64 connections:
// 13 mark-compacts, 8 -> 13.8 MiB committed). Nothing V8 did on its own afterwards gave it back: NMI idle
// with 501 pods read 59 MiB, right after ~500k requests 67-70, and 30 s later still the same. V8's own
// collection for this case is its "last resort" (CollectAllAvailableGarbage: repeated full collections with
// compaction, freed pages returned), which NMI asks for through the gc() function `--expose-gc` installs
// (nmi/permissions.ts). A plain `gc()` measured no difference: it neither compacts nor returns pages.
// Cost: one collection of a ~10 MiB heap, only after an interval with at least `busyEvents` events was
// followed by one with at most `quietEvents`, so at most once per two intervals whatever pods send.

import type { Logger } from "../lib/log.ts";

/** The options of V8's gc() extension (v8/src/extensions/gc-extension.cc) NMI uses. */
interface GcOptions {
  type: "major";
  execution: "sync";
  flavor: "last-resort";
}

type GcFunction = (options: GcOptions) => unknown;

interface IdleGcPolicy {
  /** Events (requests + cache changes) in one interval that make it a burst. */
  busyEvents: number;
  /** Events in one interval at or under which NMI counts as quiet. */
  quietEvents: number;
}

export const IDLE_GC_POLICY: IdleGcPolicy = { busyEvents: 500, quietEvents: 10 };
const IDLE_GC_INTERVAL_MS = 5_000;

export interface IdleGcState {
  /** The event count at the previous tick. */
  seen: number;
  /** A burst has happened since the last collection. */
  armed: boolean;
}

/**
 * One tick: `count` is the running total of events. Collect when a burst has been seen and this interval
 * was quiet; an interval between quiet and busy keeps waiting (the burst may still be tailing off).
 */
export function idleGcStep(
  state: IdleGcState,
  count: number,
  policy: IdleGcPolicy,
): { state: IdleGcState; collect: boolean } {
  const events = count - state.seen;
  if (events >= policy.busyEvents) return { state: { seen: count, armed: true }, collect: false };
  if (state.armed && events <= policy.quietEvents) {
    return { state: { seen: count, armed: false }, collect: true };
  }
  return { state: { seen: count, armed: state.armed }, collect: false };
}

/** V8's gc() when `--expose-gc` is among the V8 flags, else undefined. */
export function exposedGc(): GcFunction | undefined {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === "function" ? gc as GcFunction : undefined;
}

/**
 * Ticks every `intervalMs` (a timer that does not keep the process alive) until `signal` aborts. Without
 * `gc` (no `--expose-gc`) it does nothing: V8's own heuristics then decide alone.
 */
export function startIdleGc(o: {
  count: () => number;
  gc: GcFunction | undefined;
  log: Logger;
  signal: AbortSignal;
  intervalMs?: number;
  policy?: IdleGcPolicy;
}): void {
  const gc = o.gc;
  if (!gc || o.signal.aborted) return;
  const policy = o.policy ?? IDLE_GC_POLICY;
  let state: IdleGcState = { seen: o.count(), armed: false };
  const timer = setInterval(() => {
    const step = idleGcStep(state, o.count(), policy);
    state = step.state;
    if (!step.collect) return;
    const t0 = performance.now();
    gc({ type: "major", execution: "sync", flavor: "last-resort" });
    o.log.debug("idle collection", { ms: Math.round(performance.now() - t0) });
  }, o.intervalMs ?? IDLE_GC_INTERVAL_MS);
  Deno.unrefTimer(timer);
  o.signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}
