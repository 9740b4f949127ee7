import assert from "node:assert/strict";
import { LeaderElector, microTime } from "../../../lib/kube/leader_election.ts";
import { KubeClient } from "../../../lib/kube/rest.ts";
import { memoryLogger } from "../../../lib/log.ts";

Deno.test("leader election: lease times are MicroTime with six fractional digits", () => {
  assert.equal(microTime(Date.parse("2026-11-29T10:00:01.234Z")), "2026-11-29T10:00:01.234000Z");
});

Deno.test("leader election: timings must leave the renew deadline inside the lease", () => {
  const client = {} as KubeClient;
  const base = { client, namespace: "default", name: "mic", identity: "a" };
  assert.throws(
    () => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }),
    RangeError,
  );
  assert.throws(() => new LeaderElector({ ...base, retryPeriodMs: 10_000 }), RangeError);
  assert.throws(() => new LeaderElector({ ...base, identity: "" }), RangeError);
  const e = new LeaderElector(base);
  assert.equal(e.isLeader(), false);
  assert.equal(e.leader, undefined);
});

Deno.test("leader election: a standby counts another holder's lease from when its GET returned", async () => {
  // A scripted Lease endpoint: the first GET is answered 1.5 s late with the state as of its answer (as a
  // slow apiserver would), later GETs at once; the holder never renews. Counting from when that first GET
  // was sent would take the lease 1.5 s before the holder's 2 s could have run out.
  const started = performance.now();
  let gets = 0;
  let firstAnsweredAt = 0;
  let takenAt = 0;
  const lease = {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name: "mic", namespace: "default", resourceVersion: "1" },
    spec: { holderIdentity: "other", leaseDurationSeconds: 2 },
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    if (req.method === "GET") {
      if (++gets === 1) {
        await new Promise((r) => setTimeout(r, 1_500));
        firstAnsweredAt = performance.now();
      }
      return Response.json(lease);
    }
    const body = await req.json();
    takenAt ||= performance.now();
    return Response.json({ ...body, metadata: { ...body.metadata, resourceVersion: "2" } });
  });
  const httpClient = Deno.createHttpClient({});
  const client = new KubeClient({
    server: `http://127.0.0.1:${server.addr.port}`,
    client: httpClient,
    authHeader: () => Promise.resolve(undefined),
    source: "test",
    close: () => httpClient.close(),
  });
  const ctrl = new AbortController();
  const elector = new LeaderElector({
    client,
    namespace: "default",
    name: "mic",
    identity: "me",
    leaseDurationMs: 3_000,
    renewDeadlineMs: 2_000,
    retryPeriodMs: 300,
    releaseOnCancel: false,
    log: memoryLogger(),
    onStartedLeading: () => ctrl.abort(),
  });
  try {
    await elector.run(ctrl.signal);
    assert.ok(takenAt > 0, "never took the lease");
    assert.ok(
      takenAt - firstAnsweredAt >= 2_000,
      `took the lease ${Math.round(takenAt - firstAnsweredAt)} ms after seeing it (${
        Math.round(takenAt - started)
      } ms after the first GET was sent)`,
    );
  } finally {
    httpClient.close();
    await server.shutdown();
  }
});
