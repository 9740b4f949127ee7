import assert from "node:assert/strict";
import { memoryLogger } from "../../../lib/log.ts";
import { upgradeTypesWithRetry } from "../../../mic/type_upgrade.ts";

Deno.test("type upgrade retry: leadership lost while waiting between attempts -> returns at once", async () => {
  const stop = new AbortController();
  const log = memoryLogger();
  let attempts = 0;
  const failing = () => {
    attempts++;
    return Promise.reject(new Error("etcd still starting"));
  };
  const t0 = performance.now();
  const timer = setTimeout(() => stop.abort(), 50); // leadership ends during the first wait
  await upgradeTypesWithRetry(failing, log, stop.signal, { attempts: 5, delayMs: 10_000 });
  clearTimeout(timer);
  const took = performance.now() - t0;
  assert.ok(took < 500, `returned after ${Math.round(took)} ms, not at the abort (50 ms)`);
  assert.equal(attempts, 1);
  assert.equal(log.records.filter((r) => r.level === "error").length, 0);
});

Deno.test("type upgrade retry: tries again with growing waits, then logs once and goes on", async () => {
  const log = memoryLogger();
  const at: number[] = [];
  await upgradeTypesWithRetry(
    () => {
      at.push(performance.now());
      return Promise.reject(new Error("apiserver storage initialising"));
    },
    log,
    new AbortController().signal,
    { attempts: 3, delayMs: 20 },
  );
  assert.equal(at.length, 3);
  assert.ok(at[2] - at[1] > at[1] - at[0], "attempt n waits n x the delay");
  assert.deepEqual(log.records.filter((r) => r.level === "error").map((r) => r.msg), [
    "type upgrade failed; continuing with objects as they are",
  ]);
  let calls = 0;
  await upgradeTypesWithRetry(() => (calls++, Promise.resolve(2)), log, new AbortController().signal);
  assert.equal(calls, 1);
});
