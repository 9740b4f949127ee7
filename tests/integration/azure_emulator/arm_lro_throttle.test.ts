// Long-running operations and throttling on the wire: what a client polling Azure-AsyncOperation sees,
// preemption of a running update, and 429s with Retry-After from separate read and write buckets.

import assert from "node:assert/strict";
import { arm, armErrorOf, computePath, sdkClients, sleep, startHarness, tokenFor } from "./helpers.ts";

type Json = Record<string, unknown>;
const provisioning = (body: Json) => (body.properties as { provisioningState: string }).provisioningState;

Deno.test("a PATCH starts an operation: Updating until it succeeds, polled through Azure-AsyncOperation", async () => {
  const h = await startHarness({ lroDurationMs: 300 });
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    const token = await tokenFor(h, sp);
    const id1 = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "id1" });
    h.emu.addVm({ resourceGroup: "rg", name: "vm" });
    const path = computePath(h, "rg", "virtualMachines", "vm");

    const patched = await arm(h, token, "PATCH", path, {
      body: { identity: { type: "UserAssigned", userAssignedIdentities: { [id1.id]: {} } } },
    });
    assert.equal(patched.status, 200);
    assert.equal(provisioning(patched.body), "Updating");
    const asyncOp = new URL(patched.headers.get("azure-asyncoperation")!);
    assert.equal(asyncOp.origin, h.emu.armEndpoint);
    assert.equal(asyncOp.searchParams.get("api-version"), "2026-04-01");
    assert.match(
      asyncOp.pathname,
      /\/providers\/Microsoft\.Compute\/locations\/eastus\/operations\/[0-9a-f-]{36}$/,
    );
    assert.ok(patched.headers.get("x-ms-ratelimit-remaining-subscription-writes"));

    const opPath = asyncOp.pathname + asyncOp.search;
    const running = await arm(h, token, "GET", opPath, { apiVersion: "2026-04-01" });
    assert.equal(running.body.status, "InProgress");
    assert.equal(running.body.endTime, undefined);
    assert.equal(provisioning((await arm(h, token, "GET", path)).body), "Updating");

    await sleep(350);
    const done = await arm(h, token, "GET", opPath, { apiVersion: "2026-04-01" });
    assert.equal(done.body.status, "Succeeded");
    assert.ok(Date.parse(String(done.body.endTime)) >= Date.parse(String(done.body.startTime)) + 300);
    const after = await arm(h, token, "GET", path);
    assert.equal(provisioning(after.body), "Succeeded");
    assert.equal((after.body.identity as Json).type, "UserAssigned");
  } finally {
    await h.close();
  }
});

Deno.test("a configured Retry-After paces the SDK's polling of a running operation", async () => {
  const h = await startHarness({ lroDurationMs: 600, lroRetryAfterSeconds: 1 });
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    h.emu.addVmss({ resourceGroup: "MC", name: "pool" });
    const { compute } = sdkClients(h, sp);
    const started = performance.now();
    // The client asks for 50 ms polls: it polls once at that pace, then the Retry-After: 1 of the
    // still-running operation takes over, so a 600 ms operation costs two polls and a second.
    await compute.virtualMachineScaleSets.update("MC", "pool", { tags: { k: "v" } }, {
      updateIntervalInMs: 50,
    });
    assert.ok(performance.now() - started >= 900);
    assert.equal(h.emu.requests.count({ route: "operation.get" }), 2);

    const token = await tokenFor(h, sp);
    const patched = await arm(h, token, "PATCH", computePath(h, "MC", "virtualMachineScaleSets", "pool"), {
      body: { tags: {} },
    });
    assert.equal(patched.headers.get("retry-after"), "1");
    const op = new URL(patched.headers.get("azure-asyncoperation")!);
    const running = await arm(h, token, "GET", op.pathname + op.search, { apiVersion: "2026-04-01" });
    assert.equal(running.headers.get("retry-after"), "1");
    await sleep(650);
    const done = await arm(h, token, "GET", op.pathname + op.search, { apiVersion: "2026-04-01" });
    assert.equal(done.body.status, "Succeeded");
    assert.equal(done.headers.get("retry-after"), null);
  } finally {
    await h.close();
  }
});

Deno.test("a second PATCH preempts the running operation; both changes land", async () => {
  const h = await startHarness({ lroDurationMs: 200 });
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    const token = await tokenFor(h, sp);
    const id1 = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "id1" });
    const id2 = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "id2" });
    const vmss = h.emu.addVmss({ resourceGroup: "MC", name: "pool" });
    const path = computePath(h, "MC", "virtualMachineScaleSets", "pool");
    const add = (id: string) =>
      arm(h, token, "PATCH", path, {
        body: { identity: { type: "UserAssigned", userAssignedIdentities: { [id]: {} } } },
      });
    const first = new URL((await add(id1.id)).headers.get("azure-asyncoperation")!);
    const second = new URL((await add(id2.id)).headers.get("azure-asyncoperation")!);
    const poll = async (u: URL) =>
      (await arm(h, token, "GET", u.pathname + u.search, { apiVersion: "2026-04-01" })).body;

    const preempted = await poll(first);
    assert.equal(preempted.status, "Canceled");
    assert.equal((preempted.error as Json).code, "OperationPreempted");
    await sleep(250);
    assert.equal((await poll(second)).status, "Succeeded");
    assert.equal(Object.keys(h.emu.getIdentities(vmss.id).userAssignedIdentities ?? {}).length, 2);
  } finally {
    await h.close();
  }
});

Deno.test("reads and writes throttle separately per caller: 429 with Retry-After, then recovery", async () => {
  const h = await startHarness({
    throttle: { reads: { capacity: 3, refillPerSec: 4 }, writes: { capacity: 2, refillPerSec: 4 } },
  });
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    const other = h.emu.registerServicePrincipal({ secret: "s" });
    const token = await tokenFor(h, sp);
    h.emu.addVm({ resourceGroup: "rg", name: "vm" });
    const path = computePath(h, "rg", "virtualMachines", "vm");

    const remaining = [];
    for (let i = 0; i < 3; i++) {
      const res = await arm(h, token, "GET", path);
      assert.equal(res.status, 200);
      remaining.push(res.headers.get("x-ms-ratelimit-remaining-subscription-reads"));
    }
    assert.deepEqual(remaining, ["2", "1", "0"]);

    const throttled = await arm(h, token, "GET", path);
    assert.equal(throttled.status, 429);
    assert.equal(throttled.headers.get("retry-after"), "1");
    assert.equal(throttled.headers.get("x-ms-ratelimit-remaining-subscription-reads"), "0");
    const err = armErrorOf(throttled.body);
    assert.equal(err.code, "SubscriptionRequestsThrottled");
    assert.ok(err.message.includes(h.emu.subscriptionId) && err.message.includes(sp.objectId));

    // The write bucket and other callers are unaffected.
    const write = await arm(h, token, "PATCH", path, { body: { tags: { a: "b" } } });
    assert.equal(write.status, 200);
    assert.equal(write.headers.get("x-ms-ratelimit-remaining-subscription-writes"), "1");
    assert.equal((await arm(h, await tokenFor(h, other), "GET", path)).status, 200);

    await sleep(300);
    const recovered = await arm(h, token, "GET", path);
    assert.equal(recovered.status, 200);
    assert.equal(h.emu.requests.count({ route: "vm.get", status: 429 }), 1);
    assert.equal(h.emu.requests.count({ route: "vm.get", status: 200 }), 5);
  } finally {
    await h.close();
  }
});

Deno.test("the SDK waits out Retry-After on a throttled read and succeeds", async () => {
  const h = await startHarness({ throttle: { reads: { capacity: 1, refillPerSec: 2 } } });
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    h.emu.addVmss({ resourceGroup: "MC", name: "pool" });
    const { compute } = sdkClients(h, sp);
    await compute.virtualMachineScaleSets.get("MC", "pool");
    const started = performance.now();
    const second = await compute.virtualMachineScaleSets.get("MC", "pool");
    assert.equal(second.name, "pool");
    assert.ok(performance.now() - started >= 900, "the retry honoured Retry-After: 1");
    assert.deepEqual(h.emu.requests.list({ route: "vmss.get" }).map((r) => r.status), [200, 429, 200]);
  } finally {
    await h.close();
  }
});
