import assert from "node:assert/strict";
import { DEFAULT_POLL_TIMING, DurationEstimate, nextPollDelay } from "../../../lib/azure/lro_timing.ts";

/** The times (ms after the PATCH's answer) at which an operation of `durationMs` is polled. */
function pollTimes(durationMs: number, o: { estimateMs?: number; retryAfterMs?: number } = {}): number[] {
  const times: number[] = [];
  let elapsed = 0;
  for (let polls = 0; polls < 50; polls++) {
    elapsed += nextPollDelay({ polls, elapsedMs: elapsed, ...o });
    times.push(elapsed);
    if (elapsed >= durationMs) return times;
  }
  throw new Error("never done");
}

Deno.test("LRO timing: nothing known -> a quick first look, then the SDK's 2 s, then half the elapsed time", () => {
  assert.deepEqual(pollTimes(0), [100]);
  assert.deepEqual(pollTimes(2_000), [100, 2_100]);
  assert.deepEqual(pollTimes(4_000), [100, 2_100, 3_150, 4_725]);
  // never more than 5 s between polls when MIC chooses
  const long = pollTimes(60_000);
  for (let i = 1; i < long.length; i++) assert.ok(long[i] - long[i - 1] <= 5_000);
});

Deno.test("LRO timing: with history, the first poll is when such operations were done", () => {
  assert.deepEqual(pollTimes(2_000, { estimateMs: 2_000 }), [2_000]);
  assert.deepEqual(pollTimes(30_000, { estimateMs: 30_000 }), [30_000], "beyond the 5 s back-off cap");
  assert.deepEqual(pollTimes(2_500, { estimateMs: 2_000 }), [2_000, 3_000], "a miss backs off by half");
  assert.deepEqual(pollTimes(50, { estimateMs: 50 }), [100], "never below the floor");
});

Deno.test("LRO timing: Retry-After is a minimum, capped at 60 s, floored", () => {
  assert.deepEqual(pollTimes(2_000, { retryAfterMs: 1_000 }), [1_000, 3_000]);
  assert.deepEqual(pollTimes(2_000, { retryAfterMs: 1_000, estimateMs: 2_000 }), [2_000]);
  assert.equal(nextPollDelay({ polls: 0, elapsedMs: 0, retryAfterMs: 3_600_000 }), 60_000);
  assert.equal(nextPollDelay({ polls: 3, elapsedMs: 9_000, retryAfterMs: 0 }), 4_500);
  assert.equal(nextPollDelay({ polls: 0, elapsedMs: 0, retryAfterMs: 0 }), DEFAULT_POLL_TIMING.floorMs);
});

Deno.test("LRO duration estimate: EWMA per kind, bounded, junk ignored", () => {
  const e = new DurationEstimate(0.5, 60_000);
  assert.equal(e.get("vmss"), undefined);
  e.observe("vmss", 2_000);
  assert.equal(e.get("vmss"), 2_000);
  e.observe("vmss", 4_000);
  assert.equal(e.get("vmss"), 3_000);
  e.observe("vmss", 10_000_000);
  assert.equal(e.get("vmss"), 31_500);
  e.observe("vmss", NaN);
  e.observe("vmss", -5);
  assert.equal(e.get("vmss"), 31_500);
  assert.equal(e.get("vm"), undefined);
});
