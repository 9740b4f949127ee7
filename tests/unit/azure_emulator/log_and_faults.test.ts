import assert from "node:assert/strict";
import { FaultInjector } from "../../../scripts/sandbox/azure/faults.ts";
import { redactQuery, RequestLog, type RequestLogEntry } from "../../../scripts/sandbox/azure/request_log.ts";

function entry(e: Partial<RequestLogEntry>): RequestLogEntry {
  return {
    time: "t",
    service: "arm",
    method: "GET",
    path: "/",
    query: {},
    status: 200,
    route: "vm.get",
    durationMs: 1,
    ...e,
  };
}

Deno.test("the request log counts and lists by any field, method case-insensitively", () => {
  const log = new RequestLog();
  log.record(entry({ route: "vmss.get" }));
  log.record(entry({ method: "PATCH", route: "vmss.patch", caller: "app" }));
  log.record(entry({ route: "vmss.get", status: 429 }));
  assert.equal(log.length, 3);
  assert.equal(log.count({ method: "get", route: "vmss.get" }), 2);
  assert.equal(log.count({ route: "vmss.get", status: 200 }), 1);
  assert.deepEqual(log.routes(), ["vmss.get", "vmss.patch", "vmss.get"]);
  assert.equal(log.list({ caller: "app" })[0].method, "PATCH");
  // list() hands out copies: a test cannot rewrite history.
  log.list()[0].query.x = "y";
  assert.deepEqual([...log][0].query, {});
  log.clear();
  assert.equal(log.count(), 0);
});

Deno.test("query values that look like credentials are masked", () => {
  const q = redactQuery(
    new URLSearchParams("client_secret=s&client_assertion=a&access_token=t&resource=r&sig=x"),
  );
  assert.deepEqual(q, {
    client_secret: "***",
    client_assertion: "***",
    access_token: "***",
    resource: "r",
    sig: "***",
  });
});

Deno.test("faults apply to their route the given number of times, in insertion order", () => {
  const f = new FaultInjector();
  f.inject({ route: "vmss.get", status: 503, times: 2 });
  const id = f.inject({ route: "vmss.get", latencyMs: 10 });
  assert.equal(f.take("vm.get"), undefined);
  assert.equal(f.take("vmss.get")?.status, 503);
  assert.equal(f.take("vmss.get")?.status, 503);
  assert.equal(f.take("vmss.get")?.latencyMs, 10);
  assert.equal(f.take("vmss.get")?.latencyMs, 10);
  f.clear(id);
  assert.equal(f.take("vmss.get"), undefined);
  assert.deepEqual(f.active(), []);
});

Deno.test("faults without an effect or with an impossible status are refused", () => {
  const f = new FaultInjector();
  assert.throws(() => f.inject({ route: "vm.get" }), TypeError);
  assert.throws(() => f.inject({ route: "vm.get", status: 700 }), RangeError);
  assert.throws(() => f.inject({ route: "", drop: true }), TypeError);
});
