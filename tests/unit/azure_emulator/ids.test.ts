import assert from "node:assert/strict";
import {
  armEchoedId,
  idKey,
  isUserAssignedIdentityId,
  isWithinScope,
  parseResourceId,
  sameId,
} from "../../../scripts/sandbox/azure/ids.ts";

const ID =
  "/subscriptions/S/resourceGroups/RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities/Id1";

Deno.test("resource ids parse case-insensitively and compare without casing", () => {
  assert.deepEqual(parseResourceId(ID.replace("resourceGroups", "resourcegroups")), {
    subscriptionId: "S",
    resourceGroup: "RG",
    provider: "Microsoft.ManagedIdentity",
    type: "userAssignedIdentities",
    name: "Id1",
  });
  assert.equal(parseResourceId("/subscriptions/S/resourceGroups/RG"), undefined);
  assert.ok(sameId(ID, ID.toLowerCase() + "/"));
  assert.equal(idKey(ID + "/"), ID.toLowerCase());
  assert.ok(isUserAssignedIdentityId(ID));
  assert.ok(!isUserAssignedIdentityId(ID.replace("userAssignedIdentities", "virtualMachines")));
  assert.equal(armEchoedId(ID), ID.replace("resourceGroups", "resourcegroups"));
});

Deno.test("RBAC scopes contain their descendants only at segment boundaries", () => {
  assert.ok(isWithinScope(ID, "/subscriptions/s"));
  assert.ok(isWithinScope(ID, "/subscriptions/S/resourceGroups/rg/"));
  assert.ok(isWithinScope(ID, ID.toUpperCase()));
  assert.ok(!isWithinScope(ID, "/subscriptions/S/resourceGroups/R"));
  assert.ok(!isWithinScope(ID, "/subscriptions/other"));
});
