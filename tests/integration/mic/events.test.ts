// The original's Events that a dashboard or an alert may key on (docs/upstream.md, "## Events"):
// `binding remove error` when an identity cannot be taken off the scale set, and client-go's leader-election
// events (`LeaderElection`, "<identity> became leader" / "<identity> stopped leading") on the lock object,
// here the Lease.

import assert from "node:assert/strict";
import type { CoreEvent } from "../../../lib/kube/events.ts";
import { Resources } from "../../../lib/kube/rest.ts";
import { type MicEnv, micEnv, waitForLog, waitUntil } from "./harness.ts";

const events = async (env: MicEnv, reason: string) =>
  (await env.client.list<CoreEvent>(Resources.events, { namespace: env.ns })).items.filter((e) =>
    e.reason === reason
  );

Deno.test("MIC events: LeaderElection on the Lease; binding remove error when the detach fails", async () => {
  const env = await micEnv("mic-events");
  try {
    const ss = env.vmss("pool");
    await env.node(`${env.ns}-n0`, ss, 0);
    const id = env.uami("id1");
    await env.identity("id1", { type: 0, resourceID: id.id, clientID: id.clientId });
    await env.binding("b1", "id1", `app-${env.ns}`);
    const mic = await env.startMic("mic-a");
    await waitForLog(mic, /leading:/);
    await waitUntil("became leader", async () => (await events(env, "LeaderElection")).length === 1);
    const [elected] = await events(env, "LeaderElection");
    assert.equal(elected.type, "Normal");
    assert.equal(elected.message, "mic-a became leader");
    assert.deepEqual(
      [elected.involvedObject.kind, elected.involvedObject.name, elected.involvedObject.namespace],
      ["Lease", env.lease, env.ns],
    );

    await env.pod("p0", `${env.ns}-n0`, `app-${env.ns}`);
    const key = `default/p0-${env.ns}-id1`;
    await waitUntil("Assigned", () => env.aai(key)?.status?.status === "Assigned");
    env.emu.faults.inject({ route: "vmss.patch", status: 500, times: 1 });
    await env.deletePod("p0");
    await waitUntil(
      "binding remove error",
      async () => (await events(env, "binding remove error")).length > 0,
    );
    const [removeError] = await events(env, "binding remove error");
    assert.equal(removeError.type, "Warning");
    assert.deepEqual([removeError.involvedObject.kind, removeError.involvedObject.name], [
      "AzureIdentityBinding",
      "b1",
    ]);
    // After its backoff the detach goes through and the object is removed.
    await waitUntil("released", () => env.aai(key) === undefined, 15_000);
    assert.deepEqual(env.armIds(ss), []);
    // Its Event is posted after the delete, so it may land a moment after the object is gone.
    await waitUntil("binding removed", async () => (await events(env, "binding removed")).length >= 1);

    await mic.kill("SIGTERM");
    const stopped = await events(env, "LeaderElection");
    assert.ok(
      stopped.some((e) => e.message === "mic-a stopped leading"),
      JSON.stringify(stopped.map((e) => e.message)),
    );
  } finally {
    await env.close();
  }
});
