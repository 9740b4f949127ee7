// ARM's refusals, over plain HTTP: each asserts the status, the error code and that nothing changed.

import assert from "node:assert/strict";
import { arm, armErrorOf, computePath, type Harness, startHarness, tokenFor } from "./helpers.ts";

async function expectArmError(
  p: Promise<{ status: number; headers: Headers; body: Record<string, unknown> }>,
  status: number,
  code: string,
): Promise<{ message: string; headers: Headers }> {
  const res = await p;
  const err = armErrorOf(res.body);
  assert.deepEqual([res.status, err.code], [status, code], err.message);
  assert.ok(res.headers.get("x-ms-request-id"), "ARM always sends a request id");
  return { message: err.message, headers: res.headers };
}

Deno.test("ARM refuses requests without a valid bearer token from the subscription's tenant", async () => {
  const h = await startHarness();
  const expiring = await startHarness({ tokenLifetimeSeconds: 0 });
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    const foreign = h.emu.registerServicePrincipal({
      secret: "s",
      tenantId: "99999999-0000-0000-0000-000000000000",
    });
    h.emu.addVm({ resourceGroup: "rg", name: "vm" });
    const path = computePath(h, "rg", "virtualMachines", "vm");

    const missing = await expectArmError(arm(h, undefined, "GET", path), 401, "AuthenticationFailed");
    assert.match(missing.message, /'Authorization' header is missing/);
    assert.match(
      missing.headers.get("www-authenticate") ?? "",
      /^Bearer authorization_uri="https:\/\/127\.0\.0\.1:\d+\//,
    );
    const basic = await h.fetch(new URL(`${path}?api-version=2026-04-01`, h.emu.armEndpoint).toString(), {
      headers: { authorization: "Basic dXNlcjpwYXNz" },
    });
    assert.equal(basic.status, 401);
    assert.equal(armErrorOf(await basic.json()).code, "AuthenticationFailed");

    const good = await tokenFor(h, sp);
    const [head, payload, signature] = good.split(".");
    const forged = `${head}.${payload}.${signature.slice(0, -4)}AAAA`;
    await expectArmError(arm(h, forged, "GET", path), 401, "InvalidAuthenticationToken");
    await expectArmError(arm(h, "not-a-jwt", "GET", path), 401, "InvalidAuthenticationToken");

    const expSp = expiring.emu.registerServicePrincipal({ secret: "s" });
    // A token of another emulator is signed by a key this ARM does not trust.
    await expectArmError(
      arm(h, await tokenFor(expiring, expSp), "GET", path),
      401,
      "InvalidAuthenticationToken",
    );
    const expiredPath = computePath(expiring, "rg", "virtualMachines", "vm");
    expiring.emu.addVm({ resourceGroup: "rg", name: "vm" });
    const expired = await expectArmError(
      arm(expiring, await tokenFor(expiring, expSp), "GET", expiredPath),
      401,
      "ExpiredAuthenticationToken",
    );
    assert.match(expired.message, /is earlier than current UTC time/);

    const wrongAudience = await expectArmError(
      arm(h, await tokenFor(h, sp, "https://vault.azure.net"), "GET", path),
      401,
      "InvalidAuthenticationTokenAudience",
    );
    assert.match(wrongAudience.message, /'https:\/\/vault\.azure\.net'/);
    await expectArmError(
      arm(h, await tokenFor(h, foreign), "GET", path),
      401,
      "InvalidAuthenticationTokenTenant",
    );

    // The ARM audiences Azure accepts, and the endpoint's own URL (custom-cloud clients derive it).
    for (
      const aud of [
        "https://management.core.windows.net/",
        "https://management.azure.com/",
        h.emu.armEndpoint,
      ]
    ) {
      const res = await arm(h, await tokenFor(h, sp, aud.replace(/\/$/, "")), "GET", path);
      assert.equal(res.status, 200, aud);
    }
    assert.equal(h.emu.requests.count({ service: "arm", status: 401 }), 7);
  } finally {
    await expiring.close();
    await h.close();
  }
});

Deno.test("ARM validates api-version, subscription, resource group and resource", async () => {
  const h = await startHarness();
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    const token = await tokenFor(h, sp);
    h.emu.addVm({ resourceGroup: "rg", name: "vm" });
    h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "id1" });
    const vm = computePath(h, "rg", "virtualMachines", "vm");
    const idPath =
      `/subscriptions/${h.emu.subscriptionId}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1`;

    await expectArmError(arm(h, token, "GET", vm, { apiVersion: null }), 400, "MissingApiVersionParameter");
    const old = await expectArmError(
      arm(h, token, "GET", vm, { apiVersion: "2017-12-01" }),
      400,
      "NoRegisteredProviderFound",
    );
    assert.match(old.message, /2026-04-01/);
    // Older versions clients still send (aad-pod-identity used 2019-12-01 and 2018-11-30).
    assert.equal((await arm(h, token, "GET", vm, { apiVersion: "2019-12-01" })).status, 200);
    assert.equal((await arm(h, token, "GET", idPath, { apiVersion: "2018-11-30" })).status, 200);
    await expectArmError(
      arm(h, token, "GET", idPath, { apiVersion: "2026-04-01" }),
      400,
      "NoRegisteredProviderFound",
    );

    await expectArmError(
      arm(h, token, "GET", vm.replace(h.emu.subscriptionId, "11111111-1111-1111-1111-111111111111")),
      404,
      "SubscriptionNotFound",
    );
    await expectArmError(
      arm(h, token, "GET", computePath(h, "nope", "virtualMachines", "vm")),
      404,
      "ResourceGroupNotFound",
    );
    const missingVm = await expectArmError(
      arm(h, token, "GET", computePath(h, "rg", "virtualMachines", "ghost")),
      404,
      "ResourceNotFound",
    );
    assert.match(missingVm.message, /Microsoft\.Compute\/virtualMachines\/ghost/);
    await expectArmError(
      arm(h, token, "GET", computePath(h, "rg", "virtualMachineScaleSets", "vm")),
      404,
      "ResourceNotFound",
    );
    await expectArmError(
      arm(h, token, "GET", idPath.replace("id1", "id2"), { apiVersion: "2024-11-30" }),
      404,
      "ResourceNotFound",
    );
    await expectArmError(
      arm(
        h,
        token,
        "GET",
        `/subscriptions/${h.emu.subscriptionId}/providers/Microsoft.Compute/locations/eastus/operations/x`,
      ),
      404,
      "OperationNotFound",
    );
    await expectArmError(arm(h, token, "GET", `${vm}/extensions/ext`), 404, "InvalidResourceType");
    const put = await expectArmError(arm(h, token, "PUT", vm, { body: {} }), 405, "MethodNotAllowed");
    assert.equal(put.headers.get("allow"), "GET, PATCH");
  } finally {
    await h.close();
  }
});

function assertUnchanged(h: Harness, id: string): void {
  assert.deepEqual(h.emu.getIdentities(id), { type: "None" });
  assert.equal(
    (h.emu.getResource(id).properties as { provisioningState: string }).provisioningState,
    "Succeeded",
  );
}

Deno.test("ARM rejects bad PATCH bodies with Compute's codes and changes nothing", async () => {
  const h = await startHarness();
  try {
    const scope = `/subscriptions/${h.emu.subscriptionId}/resourceGroups/identities`;
    const sp = h.emu.registerServicePrincipal({ secret: "s", assignScopes: [scope] });
    const token = await tokenFor(h, sp);
    const mine = h.emu.addUserAssignedIdentity({ resourceGroup: "identities", name: "mine" });
    const theirs = h.emu.addUserAssignedIdentity({ resourceGroup: "secure", name: "theirs" });
    const vmss = h.emu.addVmss({ resourceGroup: "MC", name: "pool" });
    const path = computePath(h, "MC", "virtualMachineScaleSets", "pool");
    const patch = (body: unknown) => arm(h, token, "PATCH", path, { body });

    await expectArmError(
      arm(h, token, "PATCH", path, { rawBody: "{}", contentType: "text/plain" }),
      415,
      "UnsupportedMediaType",
    );
    await expectArmError(
      arm(h, token, "PATCH", path, { rawBody: '{"identity":' }),
      400,
      "InvalidRequestContent",
    );
    await expectArmError(patch([]), 400, "InvalidRequestContent");
    await expectArmError(patch({ identity: { type: "UserAssigned" } }), 400, "InvalidParameter");
    await expectArmError(
      patch({ identity: { type: "UserAssigned", userAssignedIdentities: {} } }),
      400,
      "InvalidParameter",
    );
    const sysWithIds = await expectArmError(
      patch({ identity: { type: "SystemAssigned", userAssignedIdentities: { [mine.id]: {} } } }),
      400,
      "InvalidParameter",
    );
    assert.match(sysWithIds.message, /should not be provided if the type is "SystemAssigned"/);
    await expectArmError(patch({ identity: { type: "Sometimes" } }), 400, "InvalidRequestContent");

    const ghost = mine.id.replace("/mine", "/ghost");
    const notFound = await expectArmError(
      patch({ identity: { type: "UserAssigned", userAssignedIdentities: { [mine.id]: {}, [ghost]: {} } } }),
      400,
      "FailedIdentityOperation",
    );
    assert.ok(notFound.message.includes(ghost) && notFound.message.includes(vmss.id));
    const linked = await expectArmError(
      patch({
        identity: { type: "UserAssigned", userAssignedIdentities: { [mine.id]: {}, [theirs.id]: {} } },
      }),
      403,
      "LinkedAuthorizationFailed",
    );
    assert.ok(linked.message.includes(theirs.id) && !linked.message.includes(mine.id));
    assert.ok(linked.message.includes(sp.clientId) && linked.message.includes(sp.objectId));
    assert.match(linked.message, /Microsoft\.Compute\/virtualMachineScaleSets\/write/);

    assertUnchanged(h, vmss.id);
    assert.equal(h.emu.requests.count({ route: "vmss.patch" }), 9);
    assert.equal(h.emu.requests.count({ route: "vmss.patch", status: 200 }), 0);
  } finally {
    await h.close();
  }
});

Deno.test("a managed identity's token works for ARM and needs Managed Identity Operator to assign", async () => {
  const h = await startHarness({ lroDurationMs: 0 });
  try {
    const scope = `/subscriptions/${h.emu.subscriptionId}/resourceGroups/identities`;
    const kubelet = h.emu.addUserAssignedIdentity({
      resourceGroup: "MC",
      name: "kubelet",
      assignScopes: [scope],
    });
    const plain = h.emu.addUserAssignedIdentity({ resourceGroup: "MC", name: "plain" });
    const app = h.emu.addUserAssignedIdentity({ resourceGroup: "identities", name: "app" });
    const vmss = h.emu.addVmss({
      resourceGroup: "MC",
      name: "pool",
      userAssignedIdentities: [kubelet.id, plain.id],
    });
    const imds = await h.emu.startImds({ vmssResourceId: vmss.id, instance: 0 });
    const miToken = async (clientId: string) => {
      const res = await fetch(
        `${imds.url}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/&client_id=${clientId}`,
        { headers: { Metadata: "true" } },
      );
      return (await res.json()).access_token as string;
    };
    const path = computePath(h, "MC", "virtualMachineScaleSets", "pool");
    const body = {
      identity: { type: "UserAssigned", userAssignedIdentities: { [app.id]: {} } },
    };
    await expectArmError(
      arm(h, await miToken(plain.clientId), "PATCH", path, { body }),
      403,
      "LinkedAuthorizationFailed",
    );
    const ok = await arm(h, await miToken(kubelet.clientId), "PATCH", path, { body });
    assert.equal(ok.status, 200);
    assert.equal(h.emu.requests.list({ route: "vmss.patch", status: 200 })[0].caller, kubelet.clientId);
    await imds.stop();
  } finally {
    await h.close();
  }
});
