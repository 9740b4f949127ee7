// The real Azure SDKs (@azure/identity, @azure/arm-compute, @azure/arm-msi) against the emulator, with
// the options a user sets for a custom cloud: an ARM endpoint, an authority host, and trust for the CA.

import assert from "node:assert/strict";
import type { UserAssignedIdentitiesValue } from "@azure/arm-compute";
import { sdkClients, sleep, startHarness } from "./helpers.ts";

/** ARM removes an identity on `null`; the SDK's type does not admit it, the wire format requires it. */
const REMOVE = null as unknown as UserAssignedIdentitiesValue;

const lower = (ids: string[]) => ids.map((id) => id.toLowerCase()).sort();

Deno.test("arm-compute updates a scale set's identities through an LRO and reads them back", async () => {
  const h = await startHarness({ lroDurationMs: 400 });
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "controller-secret" });
    const id1 = h.emu.addUserAssignedIdentity({ resourceGroup: "identities", name: "id1" });
    const id2 = h.emu.addUserAssignedIdentity({ resourceGroup: "identities", name: "id2" });
    const vmss = h.emu.addVmss({ resourceGroup: "MC_cluster", name: "aks-pool" });
    const imds = await h.emu.startImds({ vmssResourceId: vmss.id, instance: 0 });
    const { compute } = sdkClients(h, sp);

    const poller = compute.virtualMachineScaleSets.update("MC_cluster", "aks-pool", {
      identity: { type: "UserAssigned", userAssignedIdentities: { [id1.id]: {}, [id2.id]: {} } },
    }, { updateIntervalInMs: 50 });
    while (h.emu.requests.count({ route: "vmss.patch" }) === 0) await sleep(10);
    // While the operation runs ARM already returns the new identities, Updating, and IMDS does not serve them.
    const during = h.emu.getResource(vmss.id) as { properties: { provisioningState: string } };
    assert.equal(during.properties.provisioningState, "Updating");
    assert.deepEqual(
      lower(Object.keys(h.emu.getIdentities(vmss.id).userAssignedIdentities ?? {})),
      lower([id1.id, id2.id]),
    );
    const early = await fetch(
      `${imds.url}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net&client_id=${id1.clientId}`,
      { headers: { Metadata: "true" } },
    );
    assert.equal(early.status, 400);
    await early.body?.cancel();

    const result = await poller;
    assert.equal(result.provisioningState, "Succeeded");
    assert.equal(result.identity?.type, "UserAssigned");
    const read = await compute.virtualMachineScaleSets.get("MC_cluster", "aks-pool");
    const entries = read.identity?.userAssignedIdentities ?? {};
    assert.deepEqual(lower(Object.keys(entries)), lower([id1.id, id2.id]));
    const byId = new Map(Object.entries(entries).map(([k, v]) => [k.toLowerCase(), v]));
    assert.equal(byId.get(id1.id.toLowerCase())?.clientId, id1.clientId);
    assert.equal(byId.get(id2.id.toLowerCase())?.principalId, id2.principalId);

    const late = await fetch(
      `${imds.url}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net&client_id=${id1.clientId}`,
      { headers: { Metadata: "true" } },
    );
    assert.equal(late.status, 200);
    await late.body?.cancel();

    // The request log holds exactly what the SDK sent: one token, one PATCH, polls, the final GET and ours.
    assert.equal(h.emu.requests.count({ route: "aad.token" }), 1);
    assert.equal(h.emu.requests.count({ method: "PATCH", route: "vmss.patch" }), 1);
    assert.equal(h.emu.requests.count({ method: "GET", route: "vmss.get" }), 2);
    assert.ok(h.emu.requests.count({ route: "operation.get" }) >= 2);
    const armCalls = h.emu.requests.list({ service: "arm" });
    assert.ok(armCalls.every((r) => r.caller === sp.clientId && r.status === 200));
    assert.equal(armCalls[0].route, "vmss.patch");
    assert.equal(armCalls.at(-1)?.route, "vmss.get");

    // Remove one (by a differently cased id), then the last one with type None.
    await compute.virtualMachineScaleSets.update("MC_cluster", "aks-pool", {
      identity: { type: "UserAssigned", userAssignedIdentities: { [id1.id.toLowerCase()]: REMOVE } },
    }, { updateIntervalInMs: 50 });
    assert.deepEqual(
      lower(Object.keys(h.emu.getIdentities(vmss.id).userAssignedIdentities ?? {})),
      lower([id2.id]),
    );
    const cleared = await compute.virtualMachineScaleSets.update("MC_cluster", "aks-pool", {
      identity: { type: "None" },
    }, { updateIntervalInMs: 50 });
    assert.equal(cleared.identity, undefined);
    assert.deepEqual(h.emu.getIdentities(vmss.id), { type: "None" });
    await imds.stop();
  } finally {
    await h.close();
  }
});

Deno.test("arm-compute updates a VM and its system-assigned identity survives", async () => {
  const h = await startHarness({ lroDurationMs: 100 });
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    const id1 = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "id1" });
    const vm = h.emu.addVm({ resourceGroup: "rg", name: "node-0", systemAssigned: true });
    const { compute } = sdkClients(h, sp);

    const added = await compute.virtualMachines.update("rg", "node-0", {
      identity: { type: "SystemAssigned, UserAssigned", userAssignedIdentities: { [id1.id]: {} } },
    }, { updateIntervalInMs: 25 });
    assert.equal(added.identity?.type, "SystemAssigned, UserAssigned");
    assert.equal(added.identity?.principalId, vm.systemAssigned?.principalId);
    assert.equal(added.identity?.tenantId, h.emu.tenantId);

    const removed = await compute.virtualMachines.update("rg", "node-0", {
      identity: { type: "SystemAssigned" },
    }, { updateIntervalInMs: 25 });
    assert.equal(removed.identity?.type, "SystemAssigned");
    assert.equal(removed.identity?.userAssignedIdentities, undefined);
    const read = await compute.virtualMachines.get("rg", "node-0");
    assert.equal(read.identity?.principalId, vm.systemAssigned?.principalId);
    assert.equal(read.provisioningState, "Succeeded");
    assert.equal(h.emu.requests.count({ route: "vm.patch" }), 2);
  } finally {
    await h.close();
  }
});

Deno.test("arm-msi reads a user-assigned identity; a missing one is a 404 ResourceNotFound", async () => {
  const h = await startHarness();
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    const id1 = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "id1" });
    const { msi } = sdkClients(h, sp);
    const got = await msi.userAssignedIdentities.get("rg", "id1");
    assert.equal(got.clientId, id1.clientId);
    assert.equal(got.principalId, id1.principalId);
    assert.equal(got.tenantId, h.emu.tenantId);
    assert.equal(got.id?.toLowerCase(), id1.id.toLowerCase());
    await assert.rejects(
      msi.userAssignedIdentities.get("rg", "ghost"),
      (e: { statusCode?: number; code?: string }) => e.statusCode === 404 && e.code === "ResourceNotFound",
    );
    // arm-msi asks for a token scoped to the endpoint itself (custom-cloud style); ARM accepted it.
    const tokenCalls = h.emu.requests.list({ route: "aad.token" });
    assert.equal(tokenCalls.length, 1);
    assert.equal(h.emu.requests.count({ route: "identity.get", status: 200 }), 1);
    assert.equal(h.emu.requests.list({ route: "identity.get" })[0].query["api-version"], "2024-11-30");
  } finally {
    await h.close();
  }
});

Deno.test("the SDK surfaces LinkedAuthorizationFailed when the controller may not assign an identity", async () => {
  const h = await startHarness({ lroDurationMs: 50 });
  try {
    const scope = `/subscriptions/${h.emu.subscriptionId}/resourceGroups/allowed`;
    const sp = h.emu.registerServicePrincipal({ secret: "s", assignScopes: [scope] });
    const ok = h.emu.addUserAssignedIdentity({ resourceGroup: "allowed", name: "ok" });
    const denied = h.emu.addUserAssignedIdentity({ resourceGroup: "other", name: "denied" });
    const vmss = h.emu.addVmss({ resourceGroup: "MC", name: "pool" });
    const { compute } = sdkClients(h, sp);
    await assert.rejects(
      compute.virtualMachineScaleSets.update("MC", "pool", {
        identity: { type: "UserAssigned", userAssignedIdentities: { [ok.id]: {}, [denied.id]: {} } },
      }, { updateIntervalInMs: 25 }),
      (e: { statusCode?: number; code?: string; message?: string }) =>
        e.statusCode === 403 && e.code === "LinkedAuthorizationFailed" && !!e.message?.includes(denied.id) &&
        !e.message.includes(ok.id),
    );
    // Nothing changed and no operation started.
    assert.deepEqual(h.emu.getIdentities(vmss.id), { type: "None" });
    assert.equal(h.emu.requests.count({ route: "operation.get" }), 0);
    await compute.virtualMachineScaleSets.update("MC", "pool", {
      identity: { type: "UserAssigned", userAssignedIdentities: { [ok.id]: {} } },
    }, { updateIntervalInMs: 25 });
    assert.equal(h.emu.getIdentities(vmss.id).type, "UserAssigned");
  } finally {
    await h.close();
  }
});

Deno.test("arm-compute lists a resource group's VMs (VirtualMachines_List); a missing group is a 404", async () => {
  const h = await startHarness();
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "lister" });
    h.emu.addVm({ resourceGroup: "MC_cluster", name: "vm-b" });
    h.emu.addVm({ resourceGroup: "MC_cluster", name: "vm-a" });
    h.emu.addVm({ resourceGroup: "elsewhere", name: "vm-c" });
    h.emu.addVmss({ resourceGroup: "MC_cluster", name: "pool" });
    const { compute } = sdkClients(h, sp);
    const names: string[] = [];
    for await (const vm of compute.virtualMachines.list("MC_cluster")) names.push(vm.name!);
    assert.deepEqual(names.sort(), ["vm-a", "vm-b"]);
    await assert.rejects(
      async () => {
        for await (const _ of compute.virtualMachines.list("no-such-group")) { /* drain */ }
      },
      (e: { code?: string }) => e.code === "ResourceGroupNotFound",
    );
  } finally {
    await h.close();
  }
});
