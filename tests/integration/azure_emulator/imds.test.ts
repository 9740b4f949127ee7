// One IMDS per emulated machine, over plain HTTP: exact success and error bodies, which identity a
// request gets, that a node only gets identities attached to its own VM / scale set (read live from ARM),
// the 20 rps / 5 concurrent limits, and /metadata/instance.

import assert from "node:assert/strict";
import { arm, computePath, type Harness, sleep, startHarness, tokenFor } from "./helpers.ts";
import { assertImdsTokenFields } from "../../support/imds_token.ts";

type Json = Record<string, unknown>;

async function imdsGet(base: string, path: string, headers: Record<string, string> = { Metadata: "true" }) {
  const res = await fetch(`${base}${path}`, { headers });
  const text = await res.text();
  let body: Json | string;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body, contentType: res.headers.get("content-type") ?? "" };
}

const tokenPath = (extra = "") =>
  `/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net${extra}`;

function setup(h: Harness) {
  const web = h.emu.addUserAssignedIdentity({ resourceGroup: "identities", name: "web" });
  const worker = h.emu.addUserAssignedIdentity({ resourceGroup: "identities", name: "worker" });
  const foreign = h.emu.addUserAssignedIdentity({ resourceGroup: "identities", name: "foreign" });
  const vm = h.emu.addVm({
    resourceGroup: "MC",
    name: "node-0",
    userAssignedIdentities: [web.id, worker.id],
  });
  const other = h.emu.addVm({ resourceGroup: "MC", name: "node-1", userAssignedIdentities: [foreign.id] });
  return { web, worker, foreign, vm, other };
}

Deno.test("a token response has IMDS's exact all-string shape and names the identity", async () => {
  const h = await startHarness();
  try {
    const { web, vm } = setup(h);
    const imds = await h.emu.startImds({ vmResourceId: vm.id });
    const r = await imdsGet(imds.url, tokenPath(`&client_id=${web.clientId}`));
    assert.equal(r.status, 200);
    assert.match(r.contentType, /^application\/json/);
    const body = r.body as Json;
    assertImdsTokenFields(body);
    for (const k of ["expires_in", "expires_on", "ext_expires_in", "not_before"]) {
      assert.match(String(body[k]), /^\d+$/, k);
    }
    assert.equal(body.client_id, web.clientId);
    assert.equal(body.token_type, "Bearer");
    assert.equal(body.refresh_token, "");
    assert.equal(body.resource, "https://vault.azure.net");
    const claims = await h.emu.verifyToken(String(body.access_token), {
      audience: "https://vault.azure.net",
    });
    assert.equal(claims.appid, web.clientId);
    assert.equal(claims.oid, web.principalId);
    assert.equal(claims.xms_mirid, web.id.replace("/resourceGroups/", "/resourcegroups/"));
    assert.equal(Number(body.expires_on), claims.exp);

    const info = await imdsGet(imds.url, "/metadata/identity/info?api-version=2018-02-01");
    assert.deepEqual(info.body, { tenantId: h.emu.tenantId });
    await imds.stop();
  } finally {
    await h.close();
  }
});

Deno.test("IMDS picks the identity a request names, by client_id, object_id, msi_res_id or mi_res_id", async () => {
  const h = await startHarness();
  try {
    const { web, worker, vm } = setup(h);
    const imds = await h.emu.startImds({ vmResourceId: vm.id });
    const appid = async (extra: string) => {
      const r = await imdsGet(imds.url, tokenPath(extra));
      assert.equal(r.status, 200, extra);
      return (await h.emu.verifyToken(String((r.body as Json).access_token))).appid;
    };
    assert.equal(await appid(`&client_id=${worker.clientId.toUpperCase()}`), worker.clientId);
    assert.equal(await appid(`&object_id=${web.principalId}`), web.clientId);
    assert.equal(await appid(`&msi_res_id=${encodeURIComponent(worker.id.toLowerCase())}`), worker.clientId);
    assert.equal(await appid(`&mi_res_id=${encodeURIComponent(web.id)}`), web.clientId);
    await imds.stop();
  } finally {
    await h.close();
  }
});

Deno.test("IMDS errors: missing header, unknown or foreign identity, several identities, bad parameters", async () => {
  const h = await startHarness();
  try {
    const { foreign, vm } = setup(h);
    const imds = await h.emu.startImds({ vmResourceId: vm.id });
    const notFound = { error: "invalid_request", error_description: "Identity not found" };

    const probe = await imdsGet(imds.url, "/metadata/identity/oauth2/token", {});
    assert.deepEqual([probe.status, probe.body], [400, {
      error: "invalid_request",
      error_description: "Required metadata header not specified",
    }]);
    assert.equal((await imdsGet(imds.url, tokenPath(), { Metadata: "false" })).status, 400);
    assert.deepEqual(await imdsGet(imds.url, tokenPath(`&client_id=${crypto.randomUUID()}`)), {
      status: 400,
      body: notFound,
      contentType: "application/json; charset=utf-8",
    });
    // An identity attached to another VM is not served here: each node only gets its own identities.
    assert.deepEqual((await imdsGet(imds.url, tokenPath(`&client_id=${foreign.clientId}`))).body, notFound);
    const several = await imdsGet(imds.url, tokenPath());
    assert.equal(several.status, 400);
    assert.equal(
      (several.body as Json).error_description,
      "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request",
    );
    for (
      const path of [
        "/metadata/identity/oauth2/token?resource=r",
        "/metadata/identity/oauth2/token?api-version=2018-02-01",
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=r&resource=s",
        `/metadata/identity/oauth2/token?api-version=2018-02-01&resource=r&client_id=a&object_id=b`,
      ]
    ) {
      const r = await imdsGet(imds.url, path);
      assert.equal(r.status, 400, path);
      assert.equal((r.body as Json).error, "invalid_request", path);
    }
    const post = await fetch(`${imds.url}${tokenPath()}`, { method: "POST", headers: { Metadata: "true" } });
    assert.equal(post.status, 405);
    await post.body?.cancel();
    const forwarded = await imdsGet(imds.url, tokenPath(), {
      Metadata: "true",
      "X-Forwarded-For": "10.0.0.9",
    });
    assert.equal(forwarded.status, 400);
    assert.equal((await imdsGet(imds.url, "/metadata/nothing")).status, 404);
    await imds.stop();
  } finally {
    await h.close();
  }
});

Deno.test("IMDS serves the default identity: system-assigned first, else the only user-assigned one", async () => {
  const h = await startHarness();
  try {
    const id = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "only" });
    const single = h.emu.addVm({ resourceGroup: "rg", name: "single", userAssignedIdentities: [id.id] });
    const both = h.emu.addVm({
      resourceGroup: "rg",
      name: "both",
      systemAssigned: true,
      userAssignedIdentities: [id.id],
    });
    const bare = h.emu.addVm({ resourceGroup: "rg", name: "bare" });
    const a = await h.emu.startImds({ vmResourceId: single.id });
    const b = await h.emu.startImds({ vmResourceId: both.id });
    const c = await h.emu.startImds({ vmResourceId: bare.id });
    const oid = async (url: string) =>
      (await h.emu.verifyToken(String(((await imdsGet(url, tokenPath())).body as Json).access_token))).oid;
    assert.equal(await oid(a.url), id.principalId);
    assert.equal(await oid(b.url), both.systemAssigned?.principalId);
    assert.equal((await imdsGet(c.url, tokenPath())).status, 400);
    await Promise.all([a.stop(), b.stop(), c.stop()]);
  } finally {
    await h.close();
  }
});

Deno.test("IMDS follows ARM: identities appear once an assignment completes and vanish when detached or deleted", async () => {
  const h = await startHarness({ lroDurationMs: 150 });
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    const token = await tokenFor(h, sp);
    const id1 = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "id1" });
    const id2 = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "id2" });
    const vmss = h.emu.addVmss({ resourceGroup: "MC", name: "pool", userAssignedIdentities: [id2.id] });
    const imds = await h.emu.startImds({ vmssResourceId: vmss.id, instance: 3 });
    const path = computePath(h, "MC", "virtualMachineScaleSets", "pool");
    const status = async (clientId: string) =>
      (await imdsGet(imds.url, tokenPath(`&client_id=${clientId}`))).status;

    const patch = (entries: Record<string, Json | null>) =>
      arm(h, token, "PATCH", path, {
        body: { identity: { type: "UserAssigned", userAssignedIdentities: entries } },
      });
    assert.equal((await patch({ [id1.id]: {} })).status, 200);
    assert.equal(await status(id1.clientId), 400, "not served while the operation runs");
    await sleep(200);
    assert.equal(await status(id1.clientId), 200);

    assert.equal((await patch({ [id1.id]: null })).status, 200);
    await sleep(200);
    assert.equal(await status(id1.clientId), 400);

    // A deleted identity stays listed on the scale set (as in Azure) but no token is issued for it.
    assert.equal(await status(id2.clientId), 200);
    assert.ok(h.emu.deleteUserAssignedIdentity(id2.id));
    assert.equal(Object.keys(h.emu.getIdentities(vmss.id).userAssignedIdentities ?? {}).length, 1);
    assert.equal(await status(id2.clientId), 400);
    await imds.stop();
  } finally {
    await h.close();
  }
});

Deno.test("IMDS answers 429 above 20 identity requests per second and above 5 concurrent ones", async () => {
  const h = await startHarness();
  try {
    const { web, vm } = setup(h);
    const rate = await h.emu.startImds({ vmResourceId: vm.id });
    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) {
      statuses.push((await imdsGet(rate.url, tokenPath(`&client_id=${web.clientId}`))).status);
    }
    assert.deepEqual(statuses, [...Array(20).fill(200), 429]);
    const throttled = await imdsGet(rate.url, tokenPath(`&client_id=${web.clientId}`));
    assert.equal((throttled.body as Json).error, "too_many_requests");
    // Instance metadata is not in the identity category's budget.
    assert.equal((await imdsGet(rate.url, "/metadata/instance?api-version=2021-02-01")).status, 200);
    await sleep(1000);
    assert.equal((await imdsGet(rate.url, tokenPath(`&client_id=${web.clientId}`))).status, 200);

    const conc = await h.emu.startImds({ vmResourceId: vm.id });
    h.emu.faults.inject({ route: "imds.token", latencyMs: 300, times: 5 });
    const parallel = await Promise.all(
      Array.from({ length: 6 }, () => imdsGet(conc.url, tokenPath(`&client_id=${web.clientId}`))),
    );
    assert.deepEqual(parallel.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 429]);
    await Promise.all([rate.stop(), conc.stop()]);
  } finally {
    await h.close();
  }
});

Deno.test("/metadata/instance checks api-version and serves the machine's compute and network data", async () => {
  const h = await startHarness();
  try {
    const vmss = h.emu.addVmss({ resourceGroup: "MC", name: "pool" });
    const imds = await h.emu.startImds({ vmssResourceId: vmss.id, instance: 2 });
    const missing = await imdsGet(imds.url, "/metadata/instance");
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.body, {
      error:
        "Bad request. api-version is invalid or was not specified in the request. For more information refer to " +
        "aka.ms/azureimds",
      "newest-versions": ["2025-04-07", "2024-07-17", "2024-03-15"],
    });
    assert.equal((await imdsGet(imds.url, "/metadata/instance?api-version=2016-01-01")).status, 400);
    assert.deepEqual((await imdsGet(imds.url, "/metadata/instance?api-version=2021-02-01", {})).body, {
      error: "Bad request. Required metadata header not specified",
    });

    const doc = (await imdsGet(imds.url, "/metadata/instance?api-version=2021-02-01")).body as {
      compute: Json;
      network: Json;
    };
    assert.equal(doc.compute.name, "pool_2");
    assert.equal(doc.compute.vmScaleSetName, "pool");
    assert.equal(doc.compute.resourceId, `${vmss.id}/virtualMachines/2`);
    assert.equal(doc.compute.subscriptionId, h.emu.subscriptionId);
    const name = await imdsGet(
      imds.url,
      "/metadata/instance/compute/name?api-version=2021-02-01&format=text",
    );
    assert.deepEqual([name.status, name.body], [200, "pool_2"]);
    assert.match(name.contentType, /^text\/plain/);
    const ip = await imdsGet(
      imds.url,
      "/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress?api-version=2021-02-01&format=text",
    );
    assert.equal(ip.body, "10.240.0.6");
    assert.equal(
      (await imdsGet(imds.url, "/metadata/instance/compute/name?api-version=2021-02-01&format=json")).status,
      400,
    );
    assert.equal(
      (await imdsGet(imds.url, "/metadata/instance/compute/nope?api-version=2021-02-01")).status,
      404,
    );
    const versions = await imdsGet(imds.url, "/metadata/versions");
    assert.ok(((versions.body as Json).apiVersions as string[]).includes("2018-02-01"));
    await imds.stop();
  } finally {
    await h.close();
  }
});

Deno.test("the IMDS handler can be served by another server, and startImds binds a chosen port", async () => {
  const h = await startHarness();
  try {
    const { web, vm } = setup(h);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      h.emu.imdsHandler({ vmResourceId: vm.id }),
    );
    const r = await imdsGet(`http://127.0.0.1:${server.addr.port}`, tokenPath(`&client_id=${web.clientId}`));
    assert.equal(r.status, 200);
    await server.shutdown();

    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const imds = await h.emu.startImds({ vmResourceId: vm.id, hostname: "127.0.0.1", port });
    assert.equal(imds.url, `http://127.0.0.1:${port}`);
    assert.equal((await imdsGet(imds.url, tokenPath(`&client_id=${web.clientId}`))).status, 200);
    await imds.stop();
    await assert.rejects(h.emu.startImds({ vmResourceId: `${vm.id}-missing` }), /add it first/);
  } finally {
    await h.close();
  }
});
