// What real Azure does that a naive emulator would not: IMDS learning of an attach late, the Compute RP's own
// throttling, request limits, operations that fail, RBAC on the VM / scale set itself, deleted identities
// left on a machine, the exact Metadata header check and Azure AD's refusal of unknown resources.

import assert from "node:assert/strict";
import {
  COMPUTE_DEFAULT_POLICIES,
  DEFAULT_IMDS_PROPAGATION_DELAY_MS,
  MAX_IDENTITIES_PER_PATCH,
} from "../../../scripts/sandbox/azure/emulator.ts";
import { arm, armErrorOf, computePath, type Harness, sleep, startHarness, tokenFor } from "./helpers.ts";

type Json = Record<string, unknown>;

const VAULT = "https://vault.azure.net";

async function imdsToken(
  base: string,
  query: string,
  headers: Record<string, string> = { Metadata: "true" },
) {
  const res = await fetch(`${base}/metadata/identity/oauth2/token?api-version=2018-02-01&${query}`, {
    headers,
  });
  return { status: res.status, body: await res.json() as Json };
}

/** Polls the operation a PATCH started until it leaves InProgress; returns its final status body. */
async function finish(h: Harness, token: string, patched: { headers: Headers }): Promise<Json> {
  const op = new URL(patched.headers.get("azure-asyncoperation")!);
  for (;;) {
    const res = await arm(h, token, "GET", op.pathname, { apiVersion: op.searchParams.get("api-version") });
    if (res.body.status !== "InProgress") return res.body;
    await sleep(20);
  }
}

const attach = (ids: string[]) => ({
  identity: { type: "UserAssigned", userAssignedIdentities: Object.fromEntries(ids.map((id) => [id, {}])) },
});

Deno.test("IMDS answers Identity not found for imdsPropagationDelayMs after the attach succeeds, per identity and machine", async () => {
  const h = await startHarness({ lroDurationMs: 50, imdsPropagationDelayMs: 400 });
  try {
    const token = await tokenFor(h, h.emu.registerServicePrincipal({ secret: "s" }));
    const id1 = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "id1" });
    const id2 = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "id2" });
    const old = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "old" });
    h.emu.addVmss({ resourceGroup: "MC", name: "pool", userAssignedIdentities: [old.id] });
    const vmss = h.emu.addVmss({ resourceGroup: "MC", name: "pool2" });
    const a = await h.emu.startImds({
      vmssResourceId: computePath(h, "MC", "virtualMachineScaleSets", "pool"),
      instance: 0,
    });
    const b = await h.emu.startImds({ vmssResourceId: vmss.id, instance: 0 });
    const status = async (
      base: string,
      clientId: string,
    ) => (await imdsToken(base, `resource=${VAULT}&client_id=${clientId}`));

    const patched = await arm(h, token, "PATCH", computePath(h, "MC", "virtualMachineScaleSets", "pool"), {
      body: attach([id1.id]),
    });
    assert.equal((await finish(h, token, patched)).status, "Succeeded");
    const succeededAt = performance.now();
    const early = await status(a.url, id1.clientId);
    assert.equal(early.status, 400);
    assert.deepEqual(early.body, { error: "invalid_request", error_description: "Identity not found" });
    // An identity attached long ago is unaffected by another one's propagation.
    assert.equal((await status(a.url, old.clientId)).status, 200);

    // The same identity attached to another scale set later has its own clock there.
    await sleep(200);
    const second = await arm(h, token, "PATCH", computePath(h, "MC", "virtualMachineScaleSets", "pool2"), {
      body: attach([id1.id, id2.id]),
    });
    assert.equal((await finish(h, token, second)).status, "Succeeded");

    await sleep(Math.max(0, 400 - (performance.now() - succeededAt)) + 30);
    assert.equal((await status(a.url, id1.clientId)).status, 200, "served once the delay has passed");
    assert.equal((await status(b.url, id1.clientId)).status, 400, "pool2's attach is more recent");
    await sleep(250);
    assert.equal((await status(b.url, id1.clientId)).status, 200);
    assert.equal((await status(b.url, id2.clientId)).status, 200);
    await Promise.all([a.stop(), b.stop()]);
  } finally {
    await h.close();
  }
});

Deno.test("the default IMDS propagation delay is a realistic 10 s, so a just-attached identity is not served yet", async () => {
  assert.equal(DEFAULT_IMDS_PROPAGATION_DELAY_MS, 10_000);
  const h = await startHarness({ lroDurationMs: 0, imdsPropagationDelayMs: undefined });
  try {
    const token = await tokenFor(h, h.emu.registerServicePrincipal({ secret: "s" }));
    const id1 = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "id1" });
    const vm = h.emu.addVm({ resourceGroup: "MC", name: "node" });
    const imds = await h.emu.startImds({ vmResourceId: vm.id });
    const patched = await arm(h, token, "PATCH", computePath(h, "MC", "virtualMachines", "node"), {
      body: attach([id1.id]),
    });
    assert.equal((await finish(h, token, patched)).status, "Succeeded");
    assert.equal((await imdsToken(imds.url, `resource=${VAULT}&client_id=${id1.clientId}`)).status, 400);
    // Tests that want the delay gone (or longer) change it at run time.
    h.emu.setImdsPropagationDelayMs(0);
    const id2 = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "id2" });
    const again = await arm(h, token, "PATCH", computePath(h, "MC", "virtualMachines", "node"), {
      body: attach([id2.id]),
    });
    await finish(h, token, again);
    assert.equal((await imdsToken(imds.url, `resource=${VAULT}&client_id=${id2.clientId}`)).status, 200);
    assert.equal((await imdsToken(imds.url, `resource=${VAULT}&client_id=${id1.clientId}`)).status, 400);
    await imds.stop();
  } finally {
    await h.close();
  }
});

Deno.test("Compute's per-resource write policy answers 429 OperationNotAllowed and refuses again until Retry-After", async () => {
  const h = await startHarness({
    lroDurationMs: 0,
    computeThrottle: {
      policies: [{
        name: "PutVMScaleSet3Min",
        kind: "virtualMachineScaleSets",
        operation: "write",
        windowSeconds: 1,
        allowedRequestCount: 2,
      }],
      retryAfterSeconds: 2,
    },
  });
  try {
    const token = await tokenFor(h, h.emu.registerServicePrincipal({ secret: "s" }));
    h.emu.addVmss({ resourceGroup: "MC", name: "pool" });
    h.emu.addVmss({ resourceGroup: "MC", name: "other" });
    const path = computePath(h, "MC", "virtualMachineScaleSets", "pool");
    const patch = (p = path) => arm(h, token, "PATCH", p, { body: { tags: { k: "v" } } });

    const first = await patch();
    assert.equal(first.status, 200);
    assert.equal(
      first.headers.get("x-ms-ratelimit-remaining-resource"),
      "Microsoft.Compute/PutVMScaleSet3Min;1",
    );
    assert.equal(
      (await patch()).headers.get("x-ms-ratelimit-remaining-resource"),
      "Microsoft.Compute/PutVMScaleSet3Min;0",
    );
    const refused = await patch();
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get("retry-after"), "2");
    assert.equal(
      refused.headers.get("x-ms-ratelimit-remaining-resource"),
      "Microsoft.Compute/PutVMScaleSet3Min;0",
    );
    const error = refused.body.error as {
      code: string;
      details: { code: string; target: string; message: string }[];
    };
    assert.equal(error.code, "OperationNotAllowed");
    assert.equal(error.details.length, 1);
    assert.equal(error.details[0].code, "TooManyRequests");
    assert.equal(error.details[0].target, "PutVMScaleSet3Min");
    const detail = JSON.parse(error.details[0].message);
    assert.equal(detail.operationGroup, "PutVMScaleSet3Min");
    assert.equal(detail.allowedRequestCount, 2);
    assert.equal(detail.measuredRequestCount, 3);
    assert.ok(Date.parse(detail.endTime) - Date.parse(detail.startTime) === 1000);

    // The policy counts per scale set, and reads are not in a write policy.
    assert.equal((await patch(computePath(h, "MC", "virtualMachineScaleSets", "other"))).status, 200);
    assert.equal((await arm(h, token, "GET", path)).status, 200);

    // The 1 s window has rolled over, but a request before Retry-After ran out is refused again.
    await sleep(1100);
    const tooSoon = await patch();
    assert.equal(tooSoon.status, 429);
    assert.ok(Number(tooSoon.headers.get("retry-after")) >= 1);
    await sleep(1000);
    assert.equal((await patch()).status, 200);
  } finally {
    await h.close();
  }
});

Deno.test("realistic Compute policies by default: remaining counts on every response, Retry-After up to the window's end", async () => {
  const h = await startHarness({ lroDurationMs: 0 });
  try {
    const token = await tokenFor(h, h.emu.registerServicePrincipal({ secret: "s" }));
    h.emu.addVm({ resourceGroup: "MC", name: "node" });
    const path = computePath(h, "MC", "virtualMachines", "node");
    const got = await arm(h, token, "GET", path);
    assert.equal(
      got.headers.get("x-ms-ratelimit-remaining-resource"),
      "Microsoft.Compute/LowCostGet3Min;3999,Microsoft.Compute/LowCostGet30Min;31999",
    );
    const patched = await arm(h, token, "PATCH", path, { body: { tags: {} } });
    assert.equal(
      patched.headers.get("x-ms-ratelimit-remaining-resource"),
      "Microsoft.Compute/PutVM3Min;239,Microsoft.Compute/PutVM30Min;1199",
    );
    assert.ok(COMPUTE_DEFAULT_POLICIES.some((p) => p.name === "PutVMScaleSet30Min"));
  } finally {
    await h.close();
  }
  // Without a configured Retry-After, a 30-minute policy sends the client away for the rest of its window.
  const slow = await startHarness({
    lroDurationMs: 0,
    computeThrottle: {
      policies: [{
        name: "PutVM30Min",
        kind: "virtualMachines",
        operation: "write",
        windowSeconds: 1800,
        allowedRequestCount: 0,
      }],
    },
  });
  try {
    const token = await tokenFor(slow, slow.emu.registerServicePrincipal({ secret: "s" }));
    slow.emu.addVm({ resourceGroup: "MC", name: "node" });
    const refused = await arm(slow, token, "PATCH", computePath(slow, "MC", "virtualMachines", "node"), {
      body: { tags: {} },
    });
    assert.equal(refused.status, 429);
    const retryAfter = Number(refused.headers.get("retry-after"));
    assert.ok(retryAfter >= 1799 && retryAfter <= 1800, String(retryAfter));
  } finally {
    await slow.close();
  }
});

Deno.test("more than 150 identities in one PATCH, or one id twice in different case, is refused and changes nothing", async () => {
  assert.equal(MAX_IDENTITIES_PER_PATCH, 150);
  const h = await startHarness({ lroDurationMs: 0 });
  try {
    const token = await tokenFor(h, h.emu.registerServicePrincipal({ secret: "s" }));
    const ids = Array.from(
      { length: 151 },
      (_, i) => h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: `id${i}` }).id,
    );
    const vmss = h.emu.addVmss({ resourceGroup: "MC", name: "pool" });
    const path = computePath(h, "MC", "virtualMachineScaleSets", "pool");

    const tooMany = await arm(h, token, "PATCH", path, { body: attach(ids) });
    assert.equal(tooMany.status, 400);
    const err = armErrorOf(tooMany.body);
    assert.equal(err.code, "FailedIdentityOperation");
    assert.ok(
      err.message.includes("User Assigned Identities Number '151' Assign exceed limit '150' in one request."),
      err.message,
    );
    assert.deepEqual(h.emu.getIdentities(vmss.id), { type: "None" });

    const upper = ids[0].replace("/resourceGroups/rg/", "/resourceGroups/RG/").toUpperCase();
    const dup = await arm(h, token, "PATCH", path, {
      body: { identity: { type: "UserAssigned", userAssignedIdentities: { [ids[0]]: {}, [upper]: {} } } },
    });
    assert.equal(dup.status, 400);
    const dupErr = dup.body.error as { code: string; message: string; target: string };
    assert.equal(dupErr.code, "InvalidParameter");
    assert.equal(dupErr.target, "resourceIdentity.identityIds");
    assert.match(dupErr.message, /cannot be duplicated in the provided identityIds list/);
    assert.deepEqual(h.emu.getIdentities(vmss.id), { type: "None" });

    const exactly150 = await arm(h, token, "PATCH", path, { body: attach(ids.slice(0, 150)) });
    assert.equal(exactly150.status, 200);
  } finally {
    await h.close();
  }
  const lenient = await startHarness({ lroDurationMs: 0, maxIdentitiesPerPatch: 2 });
  try {
    const token = await tokenFor(lenient, lenient.emu.registerServicePrincipal({ secret: "s" }));
    const ids = ["a", "b", "c"].map((n) =>
      lenient.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: n }).id
    );
    lenient.emu.addVm({ resourceGroup: "MC", name: "node" });
    const res = await arm(lenient, token, "PATCH", computePath(lenient, "MC", "virtualMachines", "node"), {
      body: attach(ids),
    });
    assert.match(armErrorOf(res.body).message, /Number '3' Assign exceed limit '2'/);
  } finally {
    await lenient.close();
  }
});

Deno.test("an operation made to fail ends Failed with its error and applies none of its identities", async () => {
  const h = await startHarness({ lroDurationMs: 50 });
  try {
    const token = await tokenFor(h, h.emu.registerServicePrincipal({ secret: "s" }));
    const id1 = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "id1" });
    const vmss = h.emu.addVmss({ resourceGroup: "MC", name: "pool" });
    const imds = await h.emu.startImds({ vmssResourceId: vmss.id, instance: 0 });
    const path = computePath(h, "MC", "virtualMachineScaleSets", "pool");
    h.emu.operationFaults.inject({
      resourceId: vmss.id.toUpperCase(),
      code: "AllocationFailed",
      message: "no room",
      times: 1,
    });

    const patched = await arm(h, token, "PATCH", path, { body: attach([id1.id]) });
    assert.equal(patched.status, 200, "the PATCH itself is accepted");
    const status = await finish(h, token, patched);
    assert.equal(status.status, "Failed");
    assert.deepEqual(status.error, { code: "AllocationFailed", message: "no room" });
    assert.ok(status.endTime);
    const after = await arm(h, token, "GET", path);
    assert.equal((after.body.properties as Json).provisioningState, "Failed");
    assert.equal(after.body.identity, undefined, "the requested identity was not applied");
    assert.equal((await imdsToken(imds.url, `resource=${VAULT}&client_id=${id1.clientId}`)).status, 400);

    // The fault was for one operation; the retry succeeds.
    const retried = await arm(h, token, "PATCH", path, { body: attach([id1.id]) });
    assert.equal((await finish(h, token, retried)).status, "Succeeded");
    assert.equal((await imdsToken(imds.url, `resource=${VAULT}&client_id=${id1.clientId}`)).status, 200);

    // Without a code the failure is Compute's generic one.
    h.emu.operationFaults.inject({ times: 1 });
    const generic = await finish(h, token, await arm(h, token, "PATCH", path, { body: { tags: {} } }));
    assert.equal((generic.error as Json).code, "InternalExecutionError");
    await imds.stop();
  } finally {
    await h.close();
  }
});

Deno.test("a caller without write on the VM / scale set gets 403 AuthorizationFailed; granting it lets the PATCH through", async () => {
  const h = await startHarness({ lroDurationMs: 0 });
  try {
    const sub = `/subscriptions/${h.emu.subscriptionId}`;
    const sp = h.emu.registerServicePrincipal({
      secret: "s",
      writeScopes: [`${sub}/resourceGroups/elsewhere`],
    });
    const token = await tokenFor(h, sp);
    h.emu.addVmss({ resourceGroup: "MC", name: "pool" });
    const path = computePath(h, "MC", "virtualMachineScaleSets", "pool");

    const denied = await arm(h, token, "PATCH", path, { body: { tags: {} } });
    assert.equal(denied.status, 403);
    assert.deepEqual(denied.body, {
      error: {
        code: "AuthorizationFailed",
        message:
          `The client '${sp.objectId}' with object id '${sp.objectId}' does not have authorization to ` +
          `perform action 'Microsoft.Compute/virtualMachineScaleSets/write' over scope '${path}' or the scope is ` +
          "invalid. If access was recently granted, please refresh your credentials.",
      },
    });
    // ARM authorises before the resource provider looks the resource up.
    const missing = await arm(h, token, "PATCH", computePath(h, "MC", "virtualMachines", "ghost"), {
      body: { tags: {} },
    });
    assert.equal(armErrorOf(missing.body).code, "AuthorizationFailed");
    assert.match(armErrorOf(missing.body).message, /Microsoft\.Compute\/virtualMachines\/write/);
    assert.equal((await arm(h, token, "GET", path)).status, 200, "reading needs no write permission");

    h.emu.setRoleScopes(sp.clientId, { write: [`${sub}/resourceGroups/mc`] });
    assert.equal((await arm(h, token, "PATCH", path, { body: { tags: {} } })).status, 200);
    assert.throws(() => h.emu.setRoleScopes("nobody", { write: [] }), /no principal/);
  } finally {
    await h.close();
  }
});

Deno.test("a deleted user-assigned identity shows null principalId and clientId on the VM GET and IMDS cannot serve it", async () => {
  const h = await startHarness({ lroDurationMs: 0 });
  try {
    const token = await tokenFor(h, h.emu.registerServicePrincipal({ secret: "s" }));
    const gone = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "gone" });
    const kept = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "kept" });
    const vm = h.emu.addVm({ resourceGroup: "MC", name: "node", userAssignedIdentities: [gone.id, kept.id] });
    const imds = await h.emu.startImds({ vmResourceId: vm.id });
    assert.ok(h.emu.deleteUserAssignedIdentity(gone.id));
    // Re-created under the same name it is another principal: the VM still holds the old one.
    h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "gone" });

    const got = await arm(h, token, "GET", computePath(h, "MC", "virtualMachines", "node"));
    const users =
      (got.body.identity as { userAssignedIdentities: Record<string, Json> }).userAssignedIdentities;
    const entry = (id: string) =>
      Object.entries(users).find(([k]) => k.toLowerCase() === id.toLowerCase())?.[1];
    assert.deepEqual(entry(gone.id), { principalId: null, clientId: null });
    assert.deepEqual(entry(kept.id), { principalId: kept.principalId, clientId: kept.clientId });
    assert.deepEqual(h.emu.getIdentities(vm.id).userAssignedIdentities?.[Object.keys(users)[0]], {
      principalId: null,
      clientId: null,
    });
    const refused = await imdsToken(imds.url, `resource=${VAULT}&client_id=${gone.clientId}`);
    assert.deepEqual(refused, {
      status: 400,
      body: { error: "invalid_request", error_description: "Identity not found" },
    });
    await imds.stop();
  } finally {
    await h.close();
  }
});

Deno.test("IMDS takes Metadata: true in any header-name case but only the value 'true' unless told otherwise", async () => {
  const h = await startHarness();
  try {
    const id1 = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "id1" });
    const vm = h.emu.addVm({ resourceGroup: "MC", name: "node", userAssignedIdentities: [id1.id] });
    const imds = await h.emu.startImds({ vmResourceId: vm.id });
    const q = `resource=${VAULT}`;
    assert.equal((await imdsToken(imds.url, q, { METADATA: "true" })).status, 200);
    for (const value of ["True", "TRUE", "1", "yes"]) {
      const r = await imdsToken(imds.url, q, { Metadata: value });
      assert.deepEqual(r, {
        status: 400,
        body: { error: "invalid_request", error_description: "Required metadata header not specified" },
      }, value);
    }
    await imds.stop();
  } finally {
    await h.close();
  }
  const lenient = await startHarness({ imdsMetadataHeader: "case-insensitive" });
  try {
    const id1 = lenient.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "id1" });
    const vm = lenient.emu.addVm({ resourceGroup: "MC", name: "node", userAssignedIdentities: [id1.id] });
    const imds = await lenient.emu.startImds({ vmResourceId: vm.id });
    assert.equal((await imdsToken(imds.url, `resource=${VAULT}`, { Metadata: "True" })).status, 200);
    await imds.stop();
  } finally {
    await lenient.close();
  }
});

Deno.test("Azure AD and IMDS refuse tokens for an unregistered resource with AADSTS500011 until it is registered", async () => {
  const unknown = "https://unknown.example.com";
  const h = await startHarness({ knownResources: ["https://configured.example.com"] });
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    const aad = await h.fetch(`${h.emu.authorityHost}/${sp.tenantId}/oauth2/v2.0/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: sp.clientId,
        client_secret: "s",
        scope: `${unknown}/.default`,
      }),
    });
    assert.equal(aad.status, 400);
    const body = await aad.json();
    assert.equal(body.error, "invalid_resource");
    assert.deepEqual(body.error_codes, [500011]);
    assert.ok(
      String(body.error_description).startsWith(
        `AADSTS500011: The resource principal named ${unknown} was not found in the tenant named ${sp.tenantId}.`,
      ),
      body.error_description,
    );

    const id1 = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "id1" });
    const vm = h.emu.addVm({ resourceGroup: "MC", name: "node", userAssignedIdentities: [id1.id] });
    const imds = await h.emu.startImds({ vmResourceId: vm.id });
    const viaImds = await imdsToken(imds.url, `resource=${encodeURIComponent(unknown)}`);
    assert.equal(viaImds.status, 400);
    assert.equal(viaImds.body.error, "invalid_resource");
    assert.deepEqual(viaImds.body.error_codes, [500011]);
    assert.match(String(viaImds.body.error_description), /^AADSTS500011: The resource principal named/);

    // Known: first-party resources (any trailing slash), configured ones, the emulator's ARM, app ids.
    for (
      const r of [`${VAULT}/`, "https://configured.example.com", h.emu.armEndpoint, `api://${sp.clientId}`]
    ) {
      assert.equal((await imdsToken(imds.url, `resource=${encodeURIComponent(r)}`)).status, 200, r);
    }
    assert.ok(await tokenFor(h, sp, h.emu.armEndpoint));
    h.emu.registerResource(unknown);
    assert.ok(await tokenFor(h, sp, unknown));
    assert.equal((await imdsToken(imds.url, `resource=${encodeURIComponent(unknown)}`)).status, 200);
    await imds.stop();
  } finally {
    await h.close();
  }
  const open = await startHarness({ strictResources: false });
  try {
    assert.ok(await tokenFor(open, open.emu.registerServicePrincipal({ secret: "s" }), unknown));
  } finally {
    await open.close();
  }
});
