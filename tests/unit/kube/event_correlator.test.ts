import assert from "node:assert/strict";
import { COMBINED_PREFIX, EventAggregator, SpamFilter } from "../../../lib/kube/event_correlator.ts";

Deno.test("event spam filter: a burst of 25 per object, then one more per 5 minutes; objects apart", () => {
  let now = 0;
  const f = new SpamFilter({ now: () => now });
  const allowed = (key: string, n: number) =>
    Array.from({ length: n }, () => f.allow(key)).filter(Boolean).length;
  assert.equal(allowed("pod-a", 30), 25);
  assert.equal(allowed("pod-b", 3), 3, "another object has its own bucket");
  now += 299_000;
  assert.equal(f.allow("pod-a"), false);
  now += 1_000;
  assert.equal(f.allow("pod-a"), true);
  assert.equal(f.allow("pod-a"), false);
  now += 3_600_000; // 12 more in an hour
  assert.equal(allowed("pod-a", 30), 12);
  now += 86_400_000; // refills to the burst, never beyond
  assert.equal(allowed("pod-a", 30), 25);
});

Deno.test("event aggregator: the 10th distinct message in 10 minutes becomes one combined event", () => {
  let now = 0;
  const a = new EventAggregator({ now: () => now });
  const out = Array.from({ length: 12 }, (_, i) => a.aggregate("g", `attempt ${i}`));
  assert.deepEqual(out.slice(0, 9).map((o) => o.combined), Array(9).fill(false));
  assert.equal(new Set(out.slice(0, 9).map((o) => o.key)).size, 9, "each message counted on its own");
  for (const o of out.slice(9)) {
    assert.equal(o.combined, true);
    assert.equal(o.key, "g");
  }
  assert.equal(out[11].message, `${COMBINED_PREFIX}attempt 11`);
  // A repeat of a remembered message still counts on its own event.
  assert.equal(a.aggregate("g", "attempt 8").combined, false);
  // Another group, and the same group after 10 quiet minutes, start over.
  assert.equal(a.aggregate("h", "attempt 99").combined, false);
  now += 600_001;
  assert.equal(a.aggregate("g", "attempt 100").combined, false);
});
