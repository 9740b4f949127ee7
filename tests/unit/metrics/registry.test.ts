import assert from "node:assert/strict";
import { Counter, Gauge, Histogram, newRegistry, Registry } from "../../../lib/metrics.ts";

Deno.test("registry: default labels on every series, after the metric's own; a label of the same name wins", () => {
  const r = newRegistry({ node: 'n"1', region: "west" });
  new Counter({ name: "plain", help: "h", registers: [r] }).inc();
  new Counter({ name: "own", help: "h", labelNames: ["region", "k"], registers: [r] }).inc({
    region: "east",
    k: "x",
  });
  new Histogram({ name: "h", help: "h", buckets: [1], labelNames: ["k"], registers: [r] }).observe(
    { k: "y" },
    2,
  );
  const text = r.metrics();
  assert.match(text, /^plain\{node="n\\"1",region="west"\} 1$/m);
  assert.match(text, /^own\{region="east",k="x",node="n\\"1"\} 1$/m);
  assert.match(text, /^h_bucket\{le="1",k="y",node="n\\"1",region="west"\} 0$/m);
  assert.match(text, /^h_bucket\{le="\+Inf",k="y",node="n\\"1",region="west"\} 1$/m);
  assert.match(text, /^h_sum\{k="y",node="n\\"1",region="west"\} 2$/m);
  assert.throws(() => r.setDefaultLabels({ "bad-name": "x" }), /invalid label name/);
});

Deno.test("registry: one name once; names, label names and help are checked", () => {
  const r = new Registry();
  new Counter({ name: "a", help: "h", registers: [r] });
  assert.throws(() => new Gauge({ name: "a", help: "h", registers: [r] }), /already registered/);
  assert.throws(() => new Counter({ name: "1a", help: "h" }), /invalid metric name/);
  assert.throws(() => new Counter({ name: "a", help: "" }), /help text is required/);
  assert.throws(() => new Counter({ name: "a", help: "h", labelNames: ["__x"] }), /invalid label name/);
  assert.throws(() => new Counter({ name: "a", help: "h", labelNames: ["x", "x"] }), /duplicate label names/);
});

Deno.test("registry: a gauge's collect runs at each scrape; metrics in registration order", () => {
  const r = new Registry();
  let n = 0;
  new Counter({ name: "first", help: "h", registers: [r] });
  new Gauge({
    name: "scrapes",
    help: "h",
    labelNames: ["k"],
    registers: [r],
    collect() {
      this.labels("n").set(++n);
    },
  });
  assert.match(r.metrics(), /^first 0\n\n# HELP scrapes h\n# TYPE scrapes gauge\nscrapes\{k="n"\} 1\n$/m);
  assert.match(r.metrics(), /^scrapes\{k="n"\} 2$/m);
  assert.equal(new Registry().metrics(), "\n");
});
