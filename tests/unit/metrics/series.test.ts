// Series lookup: positional and by name reach the same series, bad label input is refused before anything
// changes, and the per-metric cap refuses new combinations (counted, exposed) while old ones keep counting.

import assert from "node:assert/strict";
import { Counter, Histogram, Registry } from "../../../lib/metrics.ts";
import { DEFAULT_MAX_SERIES } from "../../../lib/metrics/metric.ts";

Deno.test("series: a bound series, a positional lookup and a label object are one series", () => {
  const c = new Counter({ name: "c", help: "h", labelNames: ["a", "b"] });
  const bound = c.labels("x", 1);
  bound.inc();
  c.labels("x", "1").inc();
  c.inc({ b: 1, a: "x" });
  assert.equal(bound.value, 3);
  assert.equal(c.labels("x", "1"), bound);
  assert.notEqual(c.labels("x", "2"), bound);
  // Values that only differ in where a separator would fall are different series.
  assert.notEqual(c.labels("x,y", "z"), c.labels("x", "y,z"));
});

Deno.test("series: wrong arity, unknown or missing label, odd value type: a clear error, nothing changes", () => {
  const r = new Registry();
  const c = new Counter<"a" | "b">({ name: "c", help: "h", labelNames: ["a", "b"], registers: [r] });
  c.inc({ a: "1", b: "2" });
  const before = r.metrics();
  assert.throws(() => c.labels("1"), /1 label values for labels \(a, b\)/);
  assert.throws(() => c.labels("1", "2", "3"), /3 label values/);
  assert.throws(() => c.inc({ a: "1", b: "3", z: "9" } as { a: string; b: string }), /unknown label z/);
  assert.throws(() => c.inc({ a: "1" } as { a: string; b: string }), /label b needs a string or number/);
  assert.throws(() => c.labels("1", null as unknown as string), /label b needs a string or number/);
  assert.throws(() => c.inc(), /label values required for \(a, b\)/);
  assert.equal(r.metrics(), before);
});

Deno.test("series: past maxSeries a new combination is dropped and counted; existing series still count", () => {
  const r = new Registry();
  const c = new Counter({ name: "c", help: "h", labelNames: ["k"], registers: [r], maxSeries: 2 });
  const h = new Histogram({
    name: "h",
    help: "h",
    labelNames: ["k"],
    buckets: [1],
    registers: [r],
    maxSeries: 1,
  });
  c.inc({ k: "a" });
  c.inc({ k: "b" });
  c.inc({ k: "c" });
  const detached = c.labels("d");
  detached.inc(5);
  c.inc({ k: "a" });
  h.observe({ k: "a" }, 0.5);
  h.observe({ k: "b" }, 0.5);
  assert.equal(c.droppedSeries, 2);
  assert.equal(h.droppedSeries, 1);
  const text = r.metrics();
  assert.match(text, /^c\{k="a"\} 2$/m);
  assert.match(text, /^c\{k="b"\} 1$/m);
  assert.doesNotMatch(text, /k="c"|k="d"/);
  assert.doesNotMatch(text, /h_count\{k="b"\}/);
  assert.match(
    text,
    /# TYPE aadpodidentity_metric_series_dropped_total counter\n/,
  );
  assert.match(text, /^aadpodidentity_metric_series_dropped_total\{metric="c"\} 2$/m);
  assert.match(text, /^aadpodidentity_metric_series_dropped_total\{metric="h"\} 1$/m);
});

Deno.test("series: the default cap is 10,000 series per metric; no drop metric while nothing was dropped", () => {
  assert.equal(DEFAULT_MAX_SERIES, 10_000);
  const r = new Registry();
  const c = new Counter({ name: "c", help: "h", labelNames: ["k"], registers: [r] });
  for (let i = 0; i < DEFAULT_MAX_SERIES; i++) c.labels(i).inc();
  assert.equal(c.droppedSeries, 0);
  assert.doesNotMatch(r.metrics(), /dropped/);
  c.labels("one more").inc();
  assert.equal(c.droppedSeries, 1);
  assert.match(r.metrics(), /^aadpodidentity_metric_series_dropped_total\{metric="c"\} 1$/m);
});
