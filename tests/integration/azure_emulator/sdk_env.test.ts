// The SDKs configured purely by environment, as in a pod or on a controller: ManagedIdentityCredential
// finds the emulated IMDS through AZURE_POD_IDENTITY_AUTHORITY_HOST (MSAL caches the IMDS endpoint per
// process, hence a child process), and node:https trusts the sandbox CA through NODE_EXTRA_CA_CERTS.

import assert from "node:assert/strict";
import { type Harness, startHarness } from "./helpers.ts";

async function runClient(
  h: Harness,
  imdsUrl: string,
  plan: unknown,
): Promise<Record<string, Record<string, unknown>>> {
  const env = Deno.env.toObject();
  for (const k of Object.keys(env)) if (k.startsWith("AZURE_") || k === "DENO_CERT") delete env[k];
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./clients/sdk_env_client.ts", import.meta.url).pathname,
      JSON.stringify(plan),
    ],
    clearEnv: true,
    env: { ...env, NODE_EXTRA_CA_CERTS: h.emu.caCertPath, AZURE_POD_IDENTITY_AUTHORITY_HOST: imdsUrl },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) throw new Error(`client failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(stdout.split("\n").at(-1)!);
}

Deno.test("ManagedIdentityCredential gets tokens from a node's IMDS only for identities on its scale set", async () => {
  const h = await startHarness();
  try {
    const id1 = h.emu.addUserAssignedIdentity({ resourceGroup: "identities", name: "web" });
    const id2 = h.emu.addUserAssignedIdentity({ resourceGroup: "identities", name: "worker" });
    const elsewhere = h.emu.addUserAssignedIdentity({ resourceGroup: "identities", name: "elsewhere" });
    const vmss = h.emu.addVmss({
      resourceGroup: "MC_cluster",
      name: "pool",
      systemAssigned: true,
      userAssignedIdentities: [id1.id, id2.id],
    });
    h.emu.addVm({ resourceGroup: "MC_cluster", name: "other-node", userAssignedIdentities: [elsewhere.id] });
    const sp = h.emu.registerServicePrincipal({ secret: "env-secret" });
    const imds = await h.emu.startImds({ vmssResourceId: vmss.id, instance: 1 });

    const results = await runClient(h, imds.url, {
      publicKeyPem: h.emu.publicKeyPem,
      scope: "https://vault.azure.net/.default",
      managedIdentity: [
        { label: "byClientId", clientId: id1.clientId },
        { label: "byResourceId", resourceId: id2.id },
        { label: "byObjectId", objectId: id1.principalId },
        { label: "systemAssigned" },
        { label: "notOnThisNode", clientId: elsewhere.clientId },
      ],
      arm: {
        tenantId: sp.tenantId,
        clientId: sp.clientId,
        secret: sp.secret,
        authorityHost: h.emu.authorityHost,
        armEndpoint: h.emu.armEndpoint,
        subscriptionId: h.emu.subscriptionId,
        resourceGroup: "MC_cluster",
        scaleSet: "pool",
      },
    });

    const echoed = (id: string) => id.replace("/resourceGroups/", "/resourcegroups/");
    assert.deepEqual(results.byClientId, {
      ok: true,
      appid: id1.clientId,
      oid: id1.principalId,
      xms_mirid: echoed(id1.id),
      aud: "https://vault.azure.net",
      expiresInSeconds: results.byClientId.expiresInSeconds,
    });
    assert.ok((results.byClientId.expiresInSeconds as number) > 86000);
    assert.equal(results.byResourceId.appid, id2.clientId);
    assert.equal(results.byObjectId.oid, id1.principalId);
    assert.equal(results.systemAssigned.oid, h.emu.getIdentities(vmss.id).principalId);
    assert.equal(results.systemAssigned.xms_mirid, echoed(vmss.id));
    assert.equal(results.notOnThisNode.ok, false);
    assert.match(String(results.notOnThisNode.error), /Identity not found|400/);
    assert.deepEqual(results.arm, { ok: true, identityType: "SystemAssigned, UserAssigned" });

    // Every IMDS call the SDK made was logged against this instance, with the identity it named.
    const imdsCalls = h.emu.requests.list({ route: "imds.token" });
    assert.equal(imdsCalls.length, 5);
    assert.ok(imdsCalls.every((c) => c.instance === `${vmss.id}/virtualMachines/1` && c.method === "GET"));
    assert.deepEqual(imdsCalls.map((c) => c.status), [200, 200, 200, 200, 400]);
    assert.equal(imdsCalls[1].query.msi_res_id ?? imdsCalls[1].query.mi_res_id, id2.id);
    await imds.stop();
  } finally {
    await h.close();
  }
});
