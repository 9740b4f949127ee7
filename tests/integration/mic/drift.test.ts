// Drift repair, on by default as in the original (every 3 minutes, add-only): an identity in use that
// someone removes from the scale set is put back within one interval (shortened here by its flag), at a
// cost of one GET per VM / scale set holding assigned identities per interval while idle, and none for
// one that holds none. Faster than the interval: NMI's IdentityNotFoundOnNode Event on the assignment
// makes MIC re-check that one scale set at once (default interval, no flag).

import assert from "node:assert/strict";
import { ComputeManagementClient } from "@azure/arm-compute";
import { ClientSecretCredential } from "@azure/identity";
import { EventRecorder } from "../../../lib/kube/events.ts";
import { memoryLogger } from "../../../lib/log.ts";
import { MIC_FLAGS } from "../../../mic/flags.ts";
import { reportIdentityNotFound } from "../../../nmi/identity_not_found_event.ts";
import type { ComputeInfo } from "../../../scripts/sandbox/azure/emulator.ts";
import { type MicEnv, micEnv, waitForLog, waitUntil } from "./harness.ts";

/** Someone else (not MIC) empties the scale set's identities through ARM. */
async function removeBehindMicsBack(env: MicEnv, name: string): Promise<void> {
  const admin = env.emu.registerServicePrincipal({ displayName: "someone" });
  const ca = await Deno.readTextFile(env.emu.caCertPath);
  const credential = new ClientSecretCredential(admin.tenantId, admin.clientId, admin.secret!, {
    authorityHost: env.emu.authorityHost,
    disableInstanceDiscovery: true,
    tlsOptions: { ca },
  });
  const compute = new ComputeManagementClient(credential, env.emu.subscriptionId, {
    endpoint: env.emu.armEndpoint,
    tlsOptions: { ca },
  });
  await compute.virtualMachineScaleSets.update(env.rg, name, { identity: { type: "None" } }, {
    updateIntervalInMs: 50,
  });
}

/** One bound pod on a node of `ss`, Assigned. */
async function assignedPod(env: MicEnv, ss: ComputeInfo, node: string, idName: string) {
  const id = env.uami(idName);
  await env.node(node, ss, 0);
  await env.identity(idName, { type: 0, resourceID: id.id, clientID: id.clientId });
  await env.binding(`b-${idName}`, idName, `${idName}-${env.ns}`);
  await env.pod(`p-${idName}`, node, `${idName}-${env.ns}`);
  const key = `default/p-${idName}-${env.ns}-${idName}`;
  await waitUntil(`${key} Assigned`, () => env.aai(key)?.status?.status === "Assigned");
  return { id, key };
}

const gets = (env: MicEnv, ss: ComputeInfo) =>
  env.emu.requests.list({ route: "vmss.get", caller: env.sp.clientId }).filter((r) =>
    r.path.toLowerCase().includes(`/virtualmachinescalesets/${ss.name.toLowerCase()}`)
  ).length;

Deno.test("MIC drift repair: on by default every 3 minutes, as the original", () => {
  assert.equal(MIC_FLAGS["identity-assignment-reconcile-interval"].default, 180_000);
});

Deno.test("MIC drift repair puts back an identity removed by hand within one interval; idle costs one GET per scale set", async () => {
  const env = await micEnv("mic-drift");
  try {
    const pool = env.vmss("pool");
    const other = env.vmss("other");
    const empty = env.vmss("empty");
    await env.node(`${env.ns}-e0`, empty, 0);
    const mic = await env.startMic("mic-a", ["--identity-assignment-reconcile-interval=2s"]);
    await waitForLog(mic, /leading:/);
    const { id } = await assignedPod(env, pool, `${env.ns}-n0`, "id1");
    await assignedPod(env, other, `${env.ns}-o0`, "id2");

    // Idle: 5 intervals -> about one GET per scale set holding identities per interval, no PATCH.
    const writes = env.armWrites();
    const before = [gets(env, pool), gets(env, other), gets(env, empty)];
    await new Promise((r) => setTimeout(r, 10_000));
    const idle = [gets(env, pool) - before[0], gets(env, other) - before[1], gets(env, empty) - before[2]];
    console.log(
      `  idle 10 s at a 2 s interval: GETs per scale set ${idle.join(" / ")} (pool / other / empty)`,
    );
    assert.ok(idle[0] >= 4 && idle[0] <= 6, `GETs of pool while idle: ${idle[0]}`);
    assert.ok(idle[1] >= 4 && idle[1] <= 6, `GETs of other while idle: ${idle[1]}`);
    assert.equal(idle[2], 0, "a scale set holding no assigned identity is never read");
    assert.equal(env.armWrites(), writes);

    await removeBehindMicsBack(env, "pool");
    assert.deepEqual(env.armIds(pool), []);
    await waitUntil("put back", () => env.armIds(pool).join() === id.id.toLowerCase(), 4_000);
    await waitForLog(mic, /removed outside MIC; putting them back/);
  } finally {
    await env.close();
  }
});

Deno.test("MIC re-checks one scale set at once when NMI reports the identity not found there", async () => {
  const env = await micEnv("mic-nmi-signal");
  try {
    const pool = env.vmss("pool");
    const other = env.vmss("other");
    const mic = await env.startMic("mic-a"); // default interval: 3 minutes
    await waitForLog(mic, /leading:/);
    const { id, key } = await assignedPod(env, pool, `${env.ns}-n0`, "id1");
    await assignedPod(env, other, `${env.ns}-o0`, "id2");
    await removeBehindMicsBack(env, "pool");
    await new Promise((r) => setTimeout(r, 2_000));
    assert.deepEqual(env.armIds(pool), [], "nothing re-checks before the interval without a signal");

    const otherGets = gets(env, other);
    const recorder = new EventRecorder({ client: env.client, instance: `${env.ns}-n0`, log: memoryLogger() });
    const aai = env.aai(key)!;
    const t0 = performance.now();
    await reportIdentityNotFound(recorder, {
      namespace: aai.metadata.namespace!,
      name: aai.metadata.name!,
      uid: aai.metadata.uid,
    }, { node: `${env.ns}-n0`, clientId: id.clientId });
    await recorder.drain();
    await waitUntil(
      "put back after NMI's signal",
      () => env.armIds(pool).join() === id.id.toLowerCase(),
      5_000,
    );
    console.log(`  NMI signal -> identity back on the scale set: ${Math.round(performance.now() - t0)} ms`);
    assert.equal(gets(env, other), otherGets, "only the reported scale set is read");
    await waitForLog(mic, /NMI reports identity not found/);
  } finally {
    await env.close();
  }
});
