import assert from "node:assert/strict";
import { identityChange, uniqueIds } from "../../../lib/azure/identity_delta.ts";
import { parseProviderId } from "../../../lib/azure/provider_id.ts";

const id = (n: string) =>
  `/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${n}`;
const on = (...names: string[]) => names.map((n) => ({ id: id(n).toLowerCase(), resolved: true }));

Deno.test("identity delta: adds {} and removes null, nothing when ARM already matches", () => {
  const c = identityChange({ type: "UserAssigned", userAssigned: on("a", "b") }, [id("c"), id("A")], [
    id("b"),
  ]);
  assert.deepEqual(c.bodies, [
    { type: "UserAssigned", userAssignedIdentities: { [id("c")]: {} } },
    { type: "UserAssigned", userAssignedIdentities: { [id("b").toLowerCase()]: null } },
  ]);
  assert.deepEqual(c.alreadyPresent, [id("A")]);
  assert.deepEqual(identityChange({ type: "UserAssigned", userAssigned: on("a") }, [id("a")], []).bodies, []);
  assert.deepEqual(
    identityChange({ type: "UserAssigned", userAssigned: on("a") }, [], [id("zz")]).bodies,
    [],
  );
});

Deno.test("identity delta: type transitions (None, SystemAssigned, last one removed)", () => {
  assert.deepEqual(
    identityChange({ type: "None", userAssigned: [] }, [id("a")], []).bodies[0].type,
    "UserAssigned",
  );
  assert.deepEqual(
    identityChange({ type: "SystemAssigned", userAssigned: [] }, [id("a")], []).bodies[0].type,
    "SystemAssigned, UserAssigned",
  );
  assert.deepEqual(
    identityChange({ type: "SystemAssigned,UserAssigned", userAssigned: on("a") }, [], [id("a")]).bodies,
    [
      { type: "SystemAssigned" },
    ],
  );
  assert.deepEqual(identityChange({ type: "UserAssigned", userAssigned: on("a") }, [], [id("a")]).bodies, [
    { type: "None" },
  ]);
});

Deno.test("identity delta: at most 150 ids per body, duplicates in any case sent once", () => {
  const many = Array.from({ length: 320 }, (_, i) => id(`x${i}`));
  const c = identityChange(
    { type: "None", userAssigned: [] },
    [...many, ...many.map((m) => m.toUpperCase())],
    [],
  );
  assert.deepEqual(c.bodies.map((b) => Object.keys(b.userAssignedIdentities!).length), [150, 150, 20]);
  assert.equal(uniqueIds(["A", "a", "b"]).length, 2);
  const all = identityChange(
    { type: "UserAssigned", userAssigned: many.map((m) => ({ id: m, resolved: true })) },
    [],
    many,
  );
  assert.deepEqual(all.bodies.map((b) => b.type), ["UserAssigned", "UserAssigned", "None"]);
});

Deno.test("identity delta: an entry ARM no longer resolves is removed, then added again", () => {
  const c = identityChange(
    { type: "UserAssigned", userAssigned: [{ id: id("a").toLowerCase(), resolved: false }] },
    [id("a")],
    [],
  );
  assert.deepEqual(c.bodies, [{ type: "None" }, {
    type: "UserAssigned",
    userAssignedIdentities: { [id("a")]: {} },
  }]);
});

Deno.test("providerID: scale-set instance -> scale set; VM -> VM; anything else -> none", () => {
  const ss = parseProviderId(
    "azure:///subscriptions/S/resourceGroups/MC_rg/providers/Microsoft.Compute/virtualMachineScaleSets/pool1/virtualMachines/3",
  )!;
  assert.equal(ss.kind, "vmss");
  assert.equal(ss.name, "pool1");
  assert.equal(ss.resourceGroup, "MC_rg");
  assert.equal(
    ss.key,
    "/subscriptions/s/resourcegroups/mc_rg/providers/microsoft.compute/virtualmachinescalesets/pool1",
  );
  const vm = parseProviderId(
    "azure:///subscriptions/S/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-0",
  )!;
  assert.equal(vm.kind, "vm");
  assert.equal(vm.name, "vm-0");
  assert.equal(parseProviderId("aws:///us-east-1a/i-123"), undefined);
  assert.equal(parseProviderId(""), undefined);
  assert.equal(parseProviderId(undefined), undefined);
});
