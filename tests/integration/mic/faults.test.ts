// ARM faults with MIC as a real process: a bad identity waits alone, a failed long-running operation and a
// caller without write permission each give a Warning event and a bounded number of calls, and a 429's
// Retry-After is honoured to the millisecond (all counted from the emulator's request log).

import assert from "node:assert/strict";
import { Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { type MicEnv, micEnv, waitForLog, waitUntil } from "./harness.ts";

type CoreEvent = KubeObject & {
  reason: string;
  type: string;
  message: string;
  involvedObject: { name: string };
};

async function warnings(env: MicEnv, involved: string): Promise<CoreEvent[]> {
  const list = await env.client.list<CoreEvent>(Resources.events, { namespace: env.ns });
  return list.items.filter((e) => e.type === "Warning" && e.involvedObject.name === involved);
}

async function setup(prefix: string) {
  const env = await micEnv(prefix);
  const ss = env.vmss("pool");
  await env.node(`${env.ns}-n0`, ss, 0);
  const good = env.uami("good");
  await env.identity("good", { type: 0, resourceID: good.id, clientID: good.clientId });
  await env.binding("b-good", "good", `good-${env.ns}`);
  return { env, ss, good, key: (pod: string, id: string) => `default/${pod}-${env.ns}-${id}` };
}

Deno.test("MIC faults: an identity ARM rejects waits alone; the others on the scale set are assigned", async (t) => {
  const { env, ss, good, key } = await setup("mic-badid");
  try {
    // "denied": the caller lacks Managed Identity Operator on it (LinkedAuthorizationFailed);
    // "ghost": the AzureIdentity names an identity that does not exist (FailedIdentityOperation).
    const denied = env.uami("denied");
    const ghostId = denied.id.replace(/denied$/, "ghost");
    env.emu.setRoleScopes(env.sp.clientId, { assign: [good.id, ghostId] });
    await env.identity("denied", { type: 0, resourceID: denied.id, clientID: denied.clientId });
    await env.identity("ghost", { type: 0, resourceID: ghostId, clientID: crypto.randomUUID() });
    await env.binding("b-denied", "denied", `app-${env.ns}`);
    await env.binding("b-ghost", "ghost", `app-${env.ns}`);
    await env.binding("b-good2", "good", `app-${env.ns}`);
    const mic = await env.startMic("mic-a");
    await waitForLog(mic, /leading:/);
    await env.pod("p0", `${env.ns}-n0`, `app-${env.ns}`);

    await t.step("the valid identity is assigned despite the two bad ones", async () => {
      await waitUntil("good Assigned", () => env.aai(key("p0", "good"))?.status?.status === "Assigned");
      assert.deepEqual(env.armIds(ss), [good.id.toLowerCase()]);
      assert.equal(env.aai(key("p0", "denied"))?.status?.status, "Created");
      assert.equal(env.aai(key("p0", "ghost"))?.status?.status, "Created");
    });

    await t.step(
      "each bad identity: a Warning on its binding naming the ARM error, one log line",
      async () => {
        await waitUntil(
          "warnings",
          async () =>
            (await warnings(env, "b-denied")).length > 0 && (await warnings(env, "b-ghost")).length > 0,
        );
        const [d] = await warnings(env, "b-denied");
        assert.equal(d.reason, "binding apply error");
        assert.match(d.message, /LinkedAuthorizationFailed/);
        assert.match((await warnings(env, "b-ghost"))[0].message, /FailedIdentityOperation/);
        assert.equal(
          mic.lines.filter((l) => /identity .*denied cannot be assigned/.test(l)).length,
          1,
        );
      },
    );

    await t.step("no storm: the bad ones back off (6 s first) while nothing else changes", async () => {
      const before = env.armWrites();
      await new Promise((r) => setTimeout(r, 3_000));
      assert.equal(env.armWrites(), before);
      // good, then good+denied+ghost (403), then good+ghost (400): at most three PATCHes so far
      assert.ok(before <= 3, `PATCHes: ${before}`);
    });
  } finally {
    await env.close();
  }
});

Deno.test("MIC faults: a failed long-running operation -> Warning, backoff, then success", async () => {
  const { env, ss, good, key } = await setup("mic-lro");
  try {
    env.emu.operationFaults.inject({ resourceId: ss.id, times: 1, code: "InternalExecutionError" });
    const mic = await env.startMic("mic-a");
    await waitForLog(mic, /leading:/);
    await env.pod("p0", `${env.ns}-n0`, `good-${env.ns}`);
    await waitUntil("Warning", async () => (await warnings(env, "b-good")).length > 0);
    assert.match((await warnings(env, "b-good"))[0].message, /InternalExecutionError|Failed/);
    assert.equal(env.aai(key("p0", "good"))?.status?.status, "Created");
    await waitUntil(
      "Assigned after backoff",
      () => env.aai(key("p0", "good"))?.status?.status === "Assigned",
    );
    assert.deepEqual(env.armIds(ss), [good.id.toLowerCase()]);
    assert.equal(env.armWrites(), 2);
  } finally {
    await env.close();
  }
});

Deno.test("MIC faults: no write permission (403 AuthorizationFailed) -> one Warning per binding, backoff, no storm", async () => {
  const { env, ss, good, key } = await setup("mic-authz");
  try {
    env.emu.setRoleScopes(env.sp.clientId, { write: [] });
    const mic = await env.startMic("mic-a");
    await waitForLog(mic, /leading:/);
    await env.pod("p0", `${env.ns}-n0`, `good-${env.ns}`);
    await env.pod("p1", `${env.ns}-n0`, `good-${env.ns}`);
    await waitUntil("Warning", async () => (await warnings(env, "b-good")).length > 0);
    assert.match((await warnings(env, "b-good"))[0].message, /AuthorizationFailed/);
    const start = env.armWrites();
    await new Promise((r) => setTimeout(r, 5_000));
    // backoff 1 s, 2 s, 4 s (+20% jitter): at most 3 more attempts in 5 s, not one per event or per pod
    assert.ok(env.armWrites() - start <= 3, `PATCHes in 5 s: ${env.armWrites() - start}`);
    env.emu.setRoleScopes(env.sp.clientId, { write: [`/subscriptions/${env.emu.subscriptionId}`] });
    await waitUntil(
      "Assigned once allowed",
      () =>
        env.aai(key("p0", "good"))?.status?.status === "Assigned" &&
        env.aai(key("p1", "good"))?.status?.status === "Assigned",
      30_000,
    );
    assert.deepEqual(env.armIds(ss), [good.id.toLowerCase()]);
  } finally {
    await env.close();
  }
});

Deno.test("MIC faults: 429 Retry-After on a write and on a read: no call before it expires", async () => {
  const { env, key } = await setup("mic-429");
  try {
    env.emu.faults.inject({ route: "vmss.patch", status: 429, retryAfterSeconds: 3, times: 1 });
    const mic = await env.startMic("mic-a");
    await waitForLog(mic, /leading:/);
    await env.pod("p0", `${env.ns}-n0`, `good-${env.ns}`);
    await waitUntil("Assigned", () => env.aai(key("p0", "good"))?.status?.status === "Assigned", 30_000);
    // (an injected fault answers before authentication, so its entry has no caller; this emulator is ours alone)
    const patches = env.emu.requests.list({ route: "vmss.patch" });
    assert.equal(patches.length, 2);
    assert.equal(patches[0].status, 429);
    const gap = Date.parse(patches[1].time) - Date.parse(patches[0].time);
    assert.ok(gap >= 3_000, `second PATCH ${gap} ms after the 429`);

    env.emu.faults.inject({ route: "vmss.get", status: 429, retryAfterSeconds: 2, times: 1 });
    await env.pod("p1", `${env.ns}-n0`, `good-${env.ns}`);
    const other = env.uami("other");
    await env.identity("other", { type: 0, resourceID: other.id, clientID: other.clientId });
    await env.binding("b-other", "other", `good-${env.ns}`);
    await waitUntil(
      "other Assigned",
      () => env.aai(key("p0", "other"))?.status?.status === "Assigned",
      30_000,
    );
    const gets = env.emu.requests.list({ route: "vmss.get" });
    const i = gets.findIndex((g) => g.status === 429);
    assert.ok(i >= 0 && gets[i + 1], "a GET after the throttled one");
    assert.ok(Date.parse(gets[i + 1].time) - Date.parse(gets[i].time) >= 2_000);
  } finally {
    await env.close();
  }
});
