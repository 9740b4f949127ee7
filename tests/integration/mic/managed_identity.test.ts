// MIC authenticating with a managed identity (azure.json useManagedIdentityExtension +
// userAssignedIdentityID), as on AKS: its token comes from the IMDS of the node it runs on (the emulator's,
// reached the way @azure/identity allows: AZURE_POD_IDENTITY_AUTHORITY_HOST). Its own identity is
// immutable: MIC never detaches it. And with a service principal certificate, whose client assertion MIC
// signs itself (lib/azure/certificate_assertion.ts; @azure/identity's certificate credential fails in Deno).

import assert from "node:assert/strict";
import { createClientCertificate } from "../../../scripts/sandbox/azure/client_certificate.ts";
import { micEnv, waitForLog, waitUntil } from "./harness.ts";

Deno.test("MIC with a user-assigned managed identity from IMDS", async () => {
  const env = await micEnv("mic-msi");
  const sub = `/subscriptions/${env.emu.subscriptionId}`;
  const micId = env.emu.addUserAssignedIdentity({
    resourceGroup: `ids-${env.ns}`,
    name: "mic",
    assignScopes: [sub],
  });
  const pool = env.emu.addVmss({ resourceGroup: env.rg, name: "pool", userAssignedIdentities: [micId.id] });
  const imds = await env.emu.startImds({ vmssResourceId: pool.id, instance: 0 });
  try {
    await env.node(`${env.ns}-n0`, pool, 0);
    const id1 = env.uami("id1");
    await env.identity("id1", { type: 0, resourceID: id1.id, clientID: id1.clientId });
    await env.binding("b1", "id1", `app-${env.ns}`);
    const mic = await env.startMic("mic-a", [], { AZURE_POD_IDENTITY_AUTHORITY_HOST: imds.url }, undefined, {
      cloud: "AzureStackCloud",
      subscriptionId: env.emu.subscriptionId,
      useManagedIdentityExtension: true,
      userAssignedIdentityID: micId.clientId,
    });
    await waitForLog(mic, /leading:/);
    await env.pod("p0", `${env.ns}-n0`, `app-${env.ns}`);
    await waitUntil("Assigned", () => env.aai(`default/p0-${env.ns}-id1`)?.status?.status === "Assigned");
    assert.deepEqual(env.armIds(pool), [id1.id.toLowerCase(), micId.id.toLowerCase()].sort());
    assert.ok(env.emu.requests.count({ route: "imds.token" }) >= 1);
    assert.ok(env.emu.requests.count({ route: "vmss.patch", caller: micId.clientId }) === 1);
    await env.deletePod("p0");
    await waitUntil(
      "id1 detached, MIC's own identity kept",
      () => env.armIds(pool).join() === micId.id.toLowerCase(),
    );
  } finally {
    await imds.stop();
    await env.close();
  }
});

Deno.test("MIC with a service principal certificate (azure.json aadClientCertPath, assertion signed in Deno)", async () => {
  const env = await micEnv("mic-cert");
  const dir = await Deno.makeTempDir({ prefix: "mic-cert-" });
  try {
    const cert = await createClientCertificate(dir, "mic");
    const sp = env.emu.registerServicePrincipal({
      certificatePem: cert.certificatePem,
      displayName: "mic-cert",
    });
    const ss = env.vmss("pool");
    await env.node(`${env.ns}-n0`, ss, 0);
    const id1 = env.uami("id1");
    await env.identity("id1", { type: 0, resourceID: id1.id, clientID: id1.clientId });
    await env.binding("b1", "id1", `app-${env.ns}`);
    const mic = await env.startMic("mic-a", [], {}, undefined, {
      cloud: "AzureStackCloud",
      tenantId: sp.tenantId,
      subscriptionId: env.emu.subscriptionId,
      aadClientId: sp.clientId,
      aadClientCertPath: cert.combinedPath,
    });
    await waitForLog(mic, /leading:/);
    await env.pod("p0", `${env.ns}-n0`, `app-${env.ns}`);
    await waitUntil("Assigned", () => env.aai(`default/p0-${env.ns}-id1`)?.status?.status === "Assigned");
    assert.equal(env.emu.requests.count({ route: "vmss.patch", caller: sp.clientId }), 1);
  } finally {
    await env.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
