// ARM call budget from the emulator's request log: a burst of 200 bound pods over 20 nodes in 4 scale
// sets costs one PATCH per scale set (plus the GET before it, the LRO's polls and the SDK's final GET), and
// an idle MIC makes no call at all. Idle time is
// compressed: every watch is cut after 1 s (instead of client-go's 5-10 minutes), so 10 s of this test
// puts MIC through far more watch churn (re-lists, reconnects) than 5 real minutes would.

import assert from "node:assert/strict";
import { micEnv, waitForLog, waitUntil } from "./harness.ts";

async function inParallel<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

Deno.test("MIC ARM budget: 200 pods / 20 nodes / 4 scale sets in a burst, then idle", async (t) => {
  const env = await micEnv("mic-budget");
  try {
    const sets = [0, 1, 2, 3].map((i) => env.vmss(`pool${i}`));
    for (let n = 0; n < 20; n++) await env.node(`${env.ns}-n${n}`, sets[Math.floor(n / 5)], n % 5);
    const ids = [0, 1, 2, 3].map((i) => env.uami(`id${i}`));
    for (const [i, id] of ids.entries()) {
      await env.identity(`id${i}`, { type: 0, resourceID: id.id, clientID: id.clientId });
      await env.binding(`b${i}`, `id${i}`, `sel${i}-${env.ns}`);
    }
    const mic = await env.startMic("mic-a", ["--cycle-debounce=300ms", "--watch-timeout=1s"]);
    await waitForLog(mic, /leading:/);

    await t.step("burst: every pod Assigned with one PATCH per scale set", async () => {
      const pods = Array.from({ length: 200 }, (_, i) => i);
      // Pod i on node i % 20 with identity (i / 20) % 4: each scale set needs all four identities.
      await inParallel(
        pods,
        20,
        (i) => env.pod(`p${i}`, `${env.ns}-n${i % 20}`, `sel${Math.floor(i / 20) % 4}-${env.ns}`),
      );
      await waitUntil(
        "200 Assigned",
        () => env.aaisOfPods().filter((a) => a.status?.status === "Assigned").length === 200,
        60_000,
      );
      for (const ss of sets) {
        assert.deepEqual(env.armIds(ss), ids.map((i) => i.id.toLowerCase()).sort());
        const path = new URL(ss.id, "https://x").pathname;
        const patches = env.emu.requests.list({ route: "vmss.patch" }).filter((r) => r.path === path);
        const gets = env.emu.requests.list({ route: "vmss.get" }).filter((r) => r.path === path);
        assert.equal(patches.length, 1, `${ss.name}: ${patches.length} PATCHes`);
        // one read to compute the delta, one the SDK makes when the long-running operation ends
        assert.equal(gets.length, 2, `${ss.name}: ${gets.length} GETs`);
      }
      console.log(`ARM requests for the burst: ${env.emu.requests.routes({ service: "arm" }).join(" ")}`);
    });

    await t.step("idle: no ARM call while watches are cut every second for 10 s", async () => {
      const before = env.emu.requests.count({ service: "arm" });
      await new Promise((r) => setTimeout(r, 10_000));
      assert.equal(env.emu.requests.count({ service: "arm" }), before);
    });
  } finally {
    await env.close();
  }
});
