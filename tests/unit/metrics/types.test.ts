// The text of each metric type, whole: HELP/TYPE lines, sample lines, blank line between metrics.

import assert from "node:assert/strict";
import { Counter, Gauge, Histogram, Registry } from "../../../lib/metrics.ts";

Deno.test("counter: starts at 0 without labels, counts up, refuses to go down", () => {
  const r = new Registry();
  const c = new Counter({ name: "c_total", help: "Things\\done\nhere", registers: [r] });
  assert.equal(r.metrics(), "# HELP c_total Things\\\\done\\nhere\n# TYPE c_total counter\nc_total 0\n");
  c.inc();
  c.inc(2.5);
  assert.match(r.metrics(), /^c_total 3.5$/m);
  assert.throws(() => c.inc(-1), /finite and >= 0/);
  assert.throws(() => c.inc(NaN), /finite and >= 0/);
  assert.throws(() => c.inc(Infinity), /finite and >= 0/);
  assert.match(r.metrics(), /^c_total 3.5$/m, "a refused increment changes nothing");
});

Deno.test("counter with labels: one line per series in first-use order, no line before any", () => {
  const r = new Registry();
  const c = new Counter({ name: "req_total", help: "h", labelNames: ["code", "route"], registers: [r] });
  assert.equal(r.metrics(), "# HELP req_total h\n# TYPE req_total counter\n");
  c.inc({ route: "/a", code: 200 });
  c.labels("500", "/b").inc(2);
  c.inc({ code: "200", route: "/a" }, 3);
  assert.equal(
    r.metrics(),
    '# HELP req_total h\n# TYPE req_total counter\nreq_total{code="200",route="/a"} 4\n' +
      'req_total{code="500",route="/b"} 2\n',
  );
});

Deno.test("gauge: set, inc, dec, with and without labels", () => {
  const r = new Registry();
  const g = new Gauge({ name: "g", help: "h", registers: [r] });
  const gl = new Gauge({ name: "gl", help: "h", labelNames: ["k"], registers: [r] });
  g.set(5);
  g.inc();
  g.dec(0.5);
  gl.set({ k: "a" }, -1);
  gl.labels("b").inc(2);
  gl.dec({ k: "b" });
  assert.equal(
    r.metrics(),
    '# HELP g h\n# TYPE g gauge\ng 5.5\n\n# HELP gl h\n# TYPE gl gauge\ngl{k="a"} -1\ngl{k="b"} 1\n',
  );
  assert.throws(() => g.inc(NaN), /finite/);
});

Deno.test("histogram: cumulative buckets, upper bounds inclusive, +Inf, sum and count", () => {
  const r = new Registry();
  const h = new Histogram({ name: "d_seconds", help: "h", buckets: [0.01, 0.1, 1], registers: [r] });
  for (const v of [0.0078125, 0.01, 0.0625, 0.5, 2, 3]) h.observe(v);
  assert.equal(
    r.metrics(),
    [
      "# HELP d_seconds h",
      "# TYPE d_seconds histogram",
      'd_seconds_bucket{le="0.01"} 2',
      'd_seconds_bucket{le="0.1"} 3',
      'd_seconds_bucket{le="1"} 4',
      'd_seconds_bucket{le="+Inf"} 6',
      "d_seconds_sum 5.5803125",
      "d_seconds_count 6",
      "",
    ].join("\n"),
  );
});

Deno.test("histogram with labels: `le` first on bucket lines (as prom-client), labels on sum and count", () => {
  const r = new Registry();
  const h = new Histogram({ name: "op", help: "h", buckets: [1], labelNames: ["op"], registers: [r] });
  h.observe({ op: 'a"b' }, 0.5);
  h.labels("c").observe(7);
  assert.equal(
    r.metrics(),
    [
      "# HELP op h",
      "# TYPE op histogram",
      'op_bucket{le="1",op="a\\"b"} 1',
      'op_bucket{le="+Inf",op="a\\"b"} 1',
      'op_sum{op="a\\"b"} 0.5',
      'op_count{op="a\\"b"} 1',
      'op_bucket{le="1",op="c"} 0',
      'op_bucket{le="+Inf",op="c"} 1',
      'op_sum{op="c"} 7',
      'op_count{op="c"} 1',
      "",
    ].join("\n"),
  );
});

Deno.test("histogram: bad buckets, a reserved label and a non-finite observation are refused", () => {
  const r = new Registry();
  assert.throws(() => new Histogram({ name: "a", help: "h", buckets: [1, 1] }), /strictly increasing/);
  assert.throws(() => new Histogram({ name: "a", help: "h", buckets: [2, 1] }), /strictly increasing/);
  assert.throws(() => new Histogram({ name: "a", help: "h", buckets: [1, Infinity] }), /finite/);
  assert.throws(() => new Histogram({ name: "a", help: "h", buckets: [1], labelNames: ["le"] }), /reserved/);
  const h = new Histogram({ name: "ok", help: "h", buckets: [1], registers: [r] });
  const before = r.metrics();
  assert.throws(() => h.observe(NaN), /finite/);
  assert.throws(() => h.observe(Infinity), /finite/);
  assert.equal(r.metrics(), before, "a refused observation changes nothing");
});
