// Drift repair (off by default): with --identity-assignment-reconcile-interval, an identity in use that
// someone removes from the scale set by hand is put back; without it, MIC makes no periodic call.

import assert from "node:assert/strict";
import { ComputeManagementClient } from "@azure/arm-compute";
import { ClientSecretCredential } from "@azure/identity";
import { micEnv, waitForLog, waitUntil } from "./harness.ts";

Deno.test("MIC drift repair puts back an identity removed by hand", async () => {
  const env = await micEnv("mic-drift");
  try {
    const ss = env.vmss("pool");
    await env.node(`${env.ns}-n0`, ss, 0);
    const id1 = env.uami("id1");
    await env.identity("id1", { type: 0, resourceID: id1.id, clientID: id1.clientId });
    await env.binding("b1", "id1", `app-${env.ns}`);
    const mic = await env.startMic("mic-a", ["--identity-assignment-reconcile-interval=2s"]);
    await waitForLog(mic, /leading:/);
    await env.pod("p0", `${env.ns}-n0`, `app-${env.ns}`);
    await waitUntil("Assigned", () => env.aai(`default/p0-${env.ns}-id1`)?.status?.status === "Assigned");

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
    await compute.virtualMachineScaleSets.update(env.rg, "pool", { identity: { type: "None" } }, {
      updateIntervalInMs: 50,
    });
    assert.deepEqual(env.armIds(ss), []);
    await waitUntil("put back", () => env.armIds(ss).join() === id1.id.toLowerCase(), 15_000);
    await waitForLog(mic, /removed outside MIC; putting them back/);
  } finally {
    await env.close();
  }
});
