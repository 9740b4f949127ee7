import assert from "node:assert/strict";
import { matchAadRoute, resolveResource } from "../../../scripts/sandbox/azure/aad.ts";
import { matchArmRoute } from "../../../scripts/sandbox/azure/arm.ts";
import { matchImdsRoute } from "../../../scripts/sandbox/azure/imds.ts";

Deno.test("ARM routes are named by resource and method, matching paths case-insensitively", () => {
  const base = "/subscriptions/s1/resourcegroups/RG";
  assert.deepEqual(
    matchArmRoute("PATCH", `${base}/providers/Microsoft.Compute/virtualMachineScaleSets/pool`),
    {
      route: "vmss.patch",
      resource: "vmss",
      subscriptionId: "s1",
      resourceGroup: "RG",
      name: "pool",
    },
  );
  assert.equal(
    matchArmRoute("GET", `${base}/providers/microsoft.compute/VIRTUALMACHINES/vm1/`).route,
    "vm.get",
  );
  assert.equal(
    matchArmRoute("PUT", `${base}/providers/Microsoft.Compute/virtualMachines/vm1`).route,
    "vm.put",
  );
  assert.deepEqual(matchArmRoute("GET", `${base}/providers/Microsoft.Compute/virtualMachines`), {
    route: "vmList.get",
    resource: "vmList",
    subscriptionId: "s1",
    resourceGroup: "RG",
    name: undefined,
  });
  assert.equal(
    matchArmRoute("GET", `${base}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id%201`).name,
    "id 1",
  );
  assert.deepEqual(
    matchArmRoute("GET", "/subscriptions/s1/providers/Microsoft.Compute/locations/eastus/operations/op1"),
    {
      route: "operation.get",
      resource: "operation",
      subscriptionId: "s1",
      location: "eastus",
      name: "op1",
    },
  );
  assert.equal(
    matchArmRoute("GET", `${base}/providers/Microsoft.Compute/virtualMachines/vm1/extensions/x`).route,
    "arm.unknown",
  );
  assert.equal(matchArmRoute("GET", "/%E0%A4%A").route, "arm.unknown");
});

Deno.test("Azure AD routes cover both token endpoints and the discovery documents", () => {
  assert.deepEqual(matchAadRoute("/t1/oauth2/v2.0/token"), {
    route: "aad.token",
    tenant: "t1",
    version: "v2",
  });
  assert.deepEqual(matchAadRoute("/t1/OAuth2/Token"), { route: "aad.token", tenant: "t1", version: "v1" });
  assert.equal(matchAadRoute("/t1/v2.0/.well-known/openid-configuration").route, "aad.discovery");
  assert.equal(matchAadRoute("/common/discovery/instance").route, "aad.instance_discovery");
  assert.equal(matchAadRoute("/t1/discovery/v2.0/keys").route, "aad.keys");
  assert.equal(matchAadRoute("/").route, "aad.unknown");
});

Deno.test("the token audience comes from resource (v1) or the single /.default scope (v2)", () => {
  const v2 = (scope: string) => resolveResource("v2", new URLSearchParams({ scope }));
  assert.deepEqual(v2("https://management.azure.com/.default"), {
    ok: true,
    resource: "https://management.azure.com",
  });
  assert.deepEqual(v2("api://app/.default offline_access openid"), { ok: true, resource: "api://app" });
  const notDefault = v2("https://graph.microsoft.com/User.Read");
  assert.ok(
    !notDefault.ok && notDefault.error.code === 1002012 && notDefault.error.error === "invalid_scope",
  );
  const two = v2("a/.default b/.default");
  assert.ok(!two.ok && two.error.code === 70011);
  const missing = resolveResource("v2", new URLSearchParams());
  assert.ok(!missing.ok && missing.error.code === 900144);
  assert.deepEqual(resolveResource("v1", new URLSearchParams({ resource: "https://x/" })), {
    ok: true,
    resource: "https://x/",
  });
  const v1Missing = resolveResource("v1", new URLSearchParams({ scope: "a/.default" }));
  assert.ok(!v1Missing.ok && v1Missing.error.description.includes("'resource'"));
});

Deno.test("IMDS routes ignore case and a trailing slash", () => {
  assert.equal(matchImdsRoute("/metadata/identity/oauth2/token/"), "imds.token");
  assert.equal(matchImdsRoute("/METADATA/Identity/OAuth2/Token"), "imds.token");
  assert.equal(matchImdsRoute("/metadata/instance/compute/name"), "imds.instance");
  assert.equal(matchImdsRoute("/metadata/identity/info"), "imds.identity_info");
  assert.equal(matchImdsRoute("/metadata/instancex"), "imds.unknown");
  assert.equal(matchImdsRoute("/metadata/identity/oauth2/tokens"), "imds.unknown");
});
