import assert from "node:assert/strict";
import {
  type AttachedIdentities,
  instanceDocument,
  lookupMetadata,
  parseTokenQuery,
  selectIdentity,
} from "../../../scripts/sandbox/azure/imds_request.ts";

const q = (s: string) => parseTokenQuery(new URLSearchParams(s));

Deno.test("token queries need api-version (2018-02-01 or later) and resource, without duplicates", () => {
  const ok = q("api-version=2018-02-01&resource=https://vault.azure.net");
  assert.ok(ok.ok);
  assert.deepEqual(ok.value, {
    apiVersion: "2018-02-01",
    resource: "https://vault.azure.net",
    selector: { by: "default" },
  });
  const failures: [string, RegExp][] = [
    ["resource=r", /api-version/],
    ["api-version=2017-12-01&resource=r", /api-version/],
    ["api-version=1999-01-01&resource=r", /api-version/],
    ["api-version=2018-02-01", /resource/],
    ["api-version=2018-02-01&resource=r&resource=s", /Duplicate/],
    ["api-version=2018-02-01&resource=r&client_id=a&object_id=b", /Only one/],
    ["api-version=2018-02-01&resource=r&msi_res_id=a&mi_res_id=a", /Only one/],
  ];
  for (const [query, pattern] of failures) {
    const r = q(query);
    assert.ok(!r.ok, query);
    assert.equal(r.error.status, 400);
    assert.equal(r.error.body.error, "invalid_request");
    assert.match(r.error.body.error_description ?? "", pattern, query);
  }
});

Deno.test("mi_res_id is read as msi_res_id, the spelling adal sends", () => {
  const r = q("api-version=2018-02-01&resource=r&mi_res_id=/x");
  assert.ok(r.ok);
  assert.deepEqual(r.value.selector, { by: "msi_res_id", value: "/x" });
});

const system = { clientId: "sys-app", principalId: "sys-oid", resourceId: "/vm", system: true };
const u1 = {
  clientId: "C1",
  principalId: "P1",
  resourceId: "/subscriptions/s/resourceGroups/rg/x/u1",
  system: false,
};
const u2 = {
  clientId: "C2",
  principalId: "P2",
  resourceId: "/subscriptions/s/resourceGroups/rg/x/u2",
  system: false,
};

Deno.test("without an id IMDS uses the system identity, else the only user identity, else refuses", () => {
  const pick = (a: AttachedIdentities) => selectIdentity({ by: "default" }, a);
  assert.deepEqual(pick({ system, user: [u1, u2] }), { ok: true, value: system });
  assert.deepEqual(pick({ user: [u1] }), { ok: true, value: u1 });
  const several = pick({ user: [u1, u2] });
  assert.ok(!several.ok);
  assert.match(several.error.body.error_description!, /Multiple user assigned identities/);
  const none = pick({ user: [] });
  assert.ok(!none.ok);
  assert.equal(none.error.body.error_description, "Identity not found");
});

Deno.test("ids select case-insensitively, and only among identities attached here", () => {
  const attached = { system, user: [u1, u2] };
  const pick = (by: "client_id" | "object_id" | "msi_res_id", value: string) =>
    selectIdentity({ by, value }, attached);
  assert.deepEqual(pick("client_id", "c2"), { ok: true, value: u2 });
  assert.deepEqual(pick("object_id", "p1"), { ok: true, value: u1 });
  assert.deepEqual(pick("msi_res_id", u2.resourceId.toLowerCase() + "/"), { ok: true, value: u2 });
  assert.deepEqual(pick("client_id", "sys-app"), { ok: true, value: system });
  for (const [by, value] of [["client_id", "C3"], ["object_id", "nope"], ["msi_res_id", "/vm"]] as const) {
    const r = pick(by, value);
    assert.ok(!r.ok, `${by}=${value}`);
    assert.deepEqual(r.error.body, { error: "invalid_request", error_description: "Identity not found" });
  }
});

Deno.test("instance metadata paths resolve to nodes, leaves and array items", () => {
  const doc = instanceDocument({
    subscriptionId: "s",
    resourceGroup: "rg",
    location: "eastus",
    name: "pool_3",
    resourceId: "/vmss/virtualMachines/3",
    vmId: "vm-id",
    vmScaleSetName: "pool",
    privateIpAddress: "10.240.0.7",
    macAddress: "000D3A000001",
  });
  assert.equal(lookupMetadata(doc, ["compute", "name"]), "pool_3");
  assert.equal(lookupMetadata(doc, ["compute", "vmScaleSetName"]), "pool");
  assert.equal(
    lookupMetadata(doc, ["network", "interface", "0", "ipv4", "ipAddress", "0", "privateIpAddress"]),
    "10.240.0.7",
  );
  assert.equal(lookupMetadata(doc, ["network", "interface", "1"]), undefined);
  assert.equal(lookupMetadata(doc, ["compute", "name", "deeper"]), undefined);
  assert.equal(lookupMetadata(doc, ["compute", "toString"]), undefined);
});
