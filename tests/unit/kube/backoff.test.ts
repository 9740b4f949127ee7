import assert from "node:assert/strict";
import { Backoff } from "../../../lib/kube/backoff.ts";

Deno.test("backoff: doubles from the initial delay up to the cap, jitter on top, reset starts over", () => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5, random: () => 0 });
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => b.next()), [100, 200, 400, 800, 1000, 1000]);
  assert.equal(b.attempts, 6);
  b.reset();
  assert.equal(b.next(), 100);
  const high = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.5, random: () => 0.999 });
  assert.equal(high.next(), 150);
  assert.throws(() => new Backoff({ initialMs: 0 }), RangeError);
});

Deno.test("backoff: jittered delays spread out", () => {
  const b = () => new Backoff({ initialMs: 1000, jitter: 0.5 }).next();
  const seen = new Set(Array.from({ length: 20 }, b));
  assert.ok(seen.size > 5, `expected spread, got ${[...seen]}`);
  for (const d of seen) assert.ok(d >= 1000 && d <= 1500);
});
