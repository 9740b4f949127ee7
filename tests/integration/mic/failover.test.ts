// Restart and failover with real MIC processes, each with its own service principal so the emulator's
// request log says who called: a new MIC adopts what exists without any ARM call or write; after kill -9
// of the leader the warm standby takes over within the lease duration, and the two never both write.

import assert from "node:assert/strict";
import { micEnv, waitForLog, waitUntil } from "./harness.ts";

const LEASE_MS = 3_000;

Deno.test("MIC restart adopts existing assignments; failover after kill -9", async (t) => {
  const env = await micEnv("mic-fo");
  try {
    const ss = env.vmss("pool");
    await env.node(`${env.ns}-n0`, ss, 0);
    await env.node(`${env.ns}-n1`, ss, 1);
    const id1 = env.uami("id1");
    await env.identity("id1", { type: 0, resourceID: id1.id, clientID: id1.clientId });
    await env.binding("b1", "id1", `app-${env.ns}`);
    const spA = env.emu.registerServicePrincipal({ displayName: "mic-a" });
    const spB = env.emu.registerServicePrincipal({ displayName: "mic-b" });
    const spC = env.emu.registerServicePrincipal({ displayName: "mic-c" });
    const key = (pod: string) => `default/${pod}-${env.ns}-id1`;

    const a = await env.startMic("mic-a", [], {}, spA);
    await waitForLog(a, /leading:/);
    for (const p of ["p0", "p1", "p2"]) await env.pod(p, `${env.ns}-n${p === "p1" ? 1 : 0}`, `app-${env.ns}`);
    await waitUntil(
      "3 Assigned",
      () => ["p0", "p1", "p2"].every((p) => env.aai(key(p))?.status?.status === "Assigned"),
    );
    assert.equal((await a.kill("SIGTERM")).code, 0);

    const b = await env.startMic("mic-b", [], {}, spB);
    await t.step("restart: the new leader adopts everything with no ARM call and no write", async () => {
      const versions = ["p0", "p1", "p2"].map((p) => env.aai(key(p))!.metadata.resourceVersion);
      // Counts are cluster-wide (other tests' objects may be there too): at least this test's three.
      const line = await waitForLog(b, /leading: \d+ bound pods, \d+ assigned identities/);
      const [, pods, assigned] = /leading: (\d+) bound pods, (\d+) assigned identities/.exec(line)!.map(
        Number,
      );
      assert.ok(pods >= 3 && assigned >= 3, line);
      await new Promise((r) => setTimeout(r, 2_000));
      assert.equal(env.emu.requests.count({ service: "arm", caller: spB.clientId }), 0);
      assert.deepEqual(["p0", "p1", "p2"].map((p) => env.aai(key(p))!.metadata.resourceVersion), versions);
    });

    await t.step(
      "failover: kill -9 the leader, the warm standby writes within the lease duration",
      async () => {
        const c = await env.startMic("mic-c", [], {}, spC);
        await waitForLog(c, /watch|lease|leader/i, 10_000).catch(() => {});
        await new Promise((r) => setTimeout(r, 1_000)); // the standby's caches are warm
        assert.ok(!c.lines.some((l) => /leading:/.test(l)), "the standby must not lead while B renews");
        await env.deletePod("p2");
        await waitUntil("B released p2", () => !env.aai(key("p2")));
        const killedAt = Date.now();
        await b.kill("SIGKILL");
        await env.pod("p3", `${env.ns}-n1`, `app-${env.ns}`);
        await env.deletePod("p1"); // the last user on n1 is p3 now; the id stays
        await waitUntil("C assigns p3", () => env.aai(key("p3"))?.status?.status === "Assigned", 15_000);
        const tookOver = Date.now() - killedAt;
        console.log(
          `standby assigned a new pod ${tookOver} ms after the leader was killed (lease ${LEASE_MS} ms)`,
        );
        // The lease must run out first (3 s), then one retry period (0.6 s) and one cycle.
        assert.ok(tookOver < LEASE_MS + 2_000, `took over after ${tookOver} ms`);
        const bCalls = env.emu.requests.list({ service: "arm", caller: spB.clientId });
        const cCalls = env.emu.requests.list({ service: "arm", caller: spC.clientId });
        const lastB = Math.max(0, ...bCalls.map((r) => Date.parse(r.time)));
        assert.ok(cCalls.every((r) => Date.parse(r.time) > lastB), "both MICs called ARM in the same period");
        assert.ok(cCalls.every((r) => Date.parse(r.time) >= killedAt));
        assert.deepEqual(env.armIds(ss), [id1.id.toLowerCase()]);
        assert.equal((await c.kill("SIGTERM")).code, 0);
      },
    );
  } finally {
    await env.close();
  }
});
