import assert from "node:assert/strict";
import { Throttle, TokenBucket } from "../../../scripts/sandbox/azure/throttle.ts";

function clock(start = 0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

Deno.test("a bucket allows its capacity back to back, then asks to retry after the refill time", () => {
  const c = clock();
  const b = new TokenBucket({ capacity: 3, refillPerSec: 2 }, c.now);
  assert.deepEqual([b.take(), b.take(), b.take()], [
    { ok: true, remaining: 2 },
    { ok: true, remaining: 1 },
    { ok: true, remaining: 0 },
  ]);
  // One token needs 500 ms at 2/s; Retry-After is whole seconds, rounded up.
  assert.deepEqual(b.take(), { ok: false, retryAfterSeconds: 1 });
  c.advance(499);
  assert.equal(b.take().ok, false);
  c.advance(1);
  assert.deepEqual(b.take(), { ok: true, remaining: 0 });
});

Deno.test("Retry-After covers the whole wait for slow refill rates", () => {
  const c = clock();
  const b = new TokenBucket({ capacity: 1, refillPerSec: 0.25 }, c.now);
  assert.equal(b.take().ok, true);
  assert.deepEqual(b.take(), { ok: false, retryAfterSeconds: 4 });
  c.advance(3000);
  assert.deepEqual(b.take(), { ok: false, retryAfterSeconds: 1 });
  c.advance(1000);
  assert.equal(b.take().ok, true);
});

Deno.test("a bucket never holds more than its capacity", () => {
  const c = clock();
  const b = new TokenBucket({ capacity: 2, refillPerSec: 100 }, c.now);
  c.advance(60_000);
  assert.equal(b.remaining(), 2);
  b.take();
  b.take();
  assert.equal(b.take().ok, false);
});

Deno.test("reads and writes have separate buckets, per caller", () => {
  const c = clock();
  const t = new Throttle({
    reads: { capacity: 1, refillPerSec: 1 },
    writes: { capacity: 2, refillPerSec: 1 },
  }, c.now);
  assert.equal(t.take("alice", "reads").ok, true);
  assert.equal(t.take("alice", "reads").ok, false);
  assert.equal(t.take("alice", "writes").ok, true);
  assert.equal(t.take("bob", "reads").ok, true);
  assert.equal(t.remaining("alice", "writes"), 1);
});

Deno.test("a bucket rejects configurations that could never admit a request", () => {
  assert.throws(() => new TokenBucket({ capacity: 0, refillPerSec: 1 }), RangeError);
  assert.throws(() => new TokenBucket({ capacity: 1, refillPerSec: 0 }), RangeError);
});
