import assert from "node:assert/strict";
import { sleep } from "../../../lib/sleep.ts";

Deno.test("sleep: resolves true after the full time; a negative time is no wait", async () => {
  const t0 = performance.now();
  assert.equal(await sleep(30), true);
  assert.ok(performance.now() - t0 >= 25);
  assert.equal(await sleep(-10), true);
});

Deno.test("sleep: an abort resolves false at once and leaves no timer (default)", async () => {
  const ctrl = new AbortController();
  const t0 = performance.now();
  const p = sleep(10_000, ctrl.signal);
  ctrl.abort();
  assert.equal(await p, false);
  assert.ok(performance.now() - t0 < 1000);
  assert.equal(await sleep(10_000, AbortSignal.abort()), false);
});

Deno.test("sleep: with onAbort 'reject' an abort rejects with the signal's reason, before or during", async () => {
  const reason = new Error("stopped");
  const ctrl = new AbortController();
  const p = sleep(10_000, ctrl.signal, "reject");
  ctrl.abort(reason);
  await assert.rejects(p, (e) => e === reason);
  await assert.rejects(sleep(10_000, AbortSignal.abort(reason), "reject"), (e) => e === reason);
  assert.equal(await sleep(1, new AbortController().signal, "reject"), true);
});
