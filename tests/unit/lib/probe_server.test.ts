import assert from "node:assert/strict";
import { Counter, newRegistry } from "../../../lib/metrics.ts";
import { startProbeServer } from "../../../lib/probe_server.ts";

Deno.test("probe server: healthz, readyz follows readiness, metrics, nothing else", async () => {
  const registry = newRegistry();
  new Counter({ name: "aadpodidentity_test_total", help: "t", registers: [registry] }).inc(3);
  let ready = false;
  const server = startProbeServer({
    hostname: "127.0.0.1",
    port: 0,
    registry,
    readiness: () => ready ? { ready } : { ready, reason: "caches not synced" },
  });
  const get = async (path: string, method = "GET") => {
    const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { method });
    return { status: res.status, body: await res.text() };
  };
  try {
    assert.deepEqual(await get("/healthz"), { status: 200, body: "Not Active" });
    assert.deepEqual(await get("/readyz"), { status: 503, body: "not ready: caches not synced\n" });
    ready = true;
    assert.equal((await get("/readyz")).status, 200);
    // The original's /healthz answers (pkg/probes/probes.go v1.8.17).
    assert.deepEqual(await get("/healthz"), { status: 200, body: "Active" });
    assert.match((await get("/metrics")).body, /aadpodidentity_test_total 3/);
    assert.equal((await get("/debug/pprof/")).status, 404);
    assert.equal((await get("/healthz", "POST")).status, 405);
  } finally {
    await server.shutdown();
  }
});

Deno.test("probe server: /healthz says Active only when `active` holds (MIC: the leader), still 200", async () => {
  let leading = false;
  const server = startProbeServer({
    hostname: "127.0.0.1",
    port: 0,
    readiness: () => ({ ready: true }),
    active: () => leading,
  });
  const body = async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/healthz`);
    return [res.status, await res.text()];
  };
  try {
    assert.deepEqual(await body(), [200, "Not Active"]);
    leading = true;
    assert.deepEqual(await body(), [200, "Active"]);
  } finally {
    await server.shutdown();
  }
});
