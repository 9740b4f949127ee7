// lib/azure/arm_client.ts against the emulator's ARM: ARM's Retry-After is a subscription-wide deadline
// (docs/protocols.md, "## Throttling"), so a write it throttles holds the writes to every VM and scale set
// until it passes, without holding reads; and the PATCH answers the identity block, client ids included.

import assert from "node:assert/strict";
import { ArmError, createArmClient, ThrottledLocally } from "../../../lib/azure/arm_client.ts";
import { parseProviderId } from "../../../lib/azure/provider_id.ts";
import { sdkClients, sleep, startHarness } from "./helpers.ts";

Deno.test("ARM client: a Retry-After on one write holds writes to every scale set until it passes, not reads", async () => {
  const h = await startHarness({ lroDurationMs: 0 });
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "mic-secret" });
    const id = h.emu.addUserAssignedIdentity({ resourceGroup: "ids", name: "id1" });
    const a = parseProviderId(
      `azure://${h.emu.addVmss({ resourceGroup: "mc", name: "a" }).id}/virtualMachines/0`,
    )!;
    const b = parseProviderId(
      `azure://${h.emu.addVmss({ resourceGroup: "mc", name: "b" }).id}/virtualMachines/0`,
    )!;
    const arm = createArmClient({
      credential: sdkClients(h, sp).credential,
      endpoint: h.emu.armEndpoint,
      audience: "https://management.azure.com/",
      pollIntervalMs: 20,
    });
    const body = { type: "UserAssigned" as const, userAssignedIdentities: { [id.id]: {} } };
    h.emu.faults.inject({ route: "vmss.patch", status: 429, retryAfterSeconds: 2, times: 1 });
    await assert.rejects(arm.patchIdentity(a, body), (e) => e instanceof ArmError && e.status === 429);
    const { writeUntil, readUntil } = arm.deadlines();
    assert.ok(writeUntil > Date.now() + 1_000, "the write deadline is ARM's 2 s");
    assert.equal(readUntil, 0);

    // Another scale set: held here, never sent (ARM's limit is the subscription's, not the scale set's).
    await assert.rejects(arm.patchIdentity(b, body), ThrottledLocally);
    assert.equal(h.emu.requests.count({ route: "vmss.patch" }), 1);
    const read = await arm.getIdentity(b);
    assert.deepEqual(read?.userAssigned, []);

    await sleep(writeUntil - Date.now() + 50);
    const after = await arm.patchIdentity(b, body);
    assert.equal(h.emu.requests.count({ route: "vmss.patch" }), 2);
    assert.deepEqual(
      after?.userAssigned.map((u) => ({ ...u, id: u.id.toLowerCase() })),
      [{ id: id.id.toLowerCase(), resolved: true, clientId: id.clientId }],
    );
  } finally {
    await h.close();
  }
});
