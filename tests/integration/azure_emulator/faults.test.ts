// Fault injection per route: injected statuses in each service's error shape, latency, dropped
// connections, and how the real SDK's retry policy rides over them.

import assert from "node:assert/strict";
import { arm, armErrorOf, computePath, sdkClients, startHarness, tokenFor } from "./helpers.ts";

Deno.test("an injected 5xx on one route applies the given number of times; the SDK retries through it", async () => {
  const h = await startHarness();
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    h.emu.addVmss({ resourceGroup: "MC", name: "pool" });
    h.emu.addVm({ resourceGroup: "MC", name: "vm" });
    h.emu.faults.inject({ route: "vmss.get", status: 503, times: 1, retryAfterSeconds: 0 });

    const token = await tokenFor(h, sp);
    const vmPath = computePath(h, "MC", "virtualMachines", "vm");
    assert.equal((await arm(h, token, "GET", vmPath)).status, 200, "other routes are untouched");

    const { compute } = sdkClients(h, sp);
    const got = await compute.virtualMachineScaleSets.get("MC", "pool");
    assert.equal(got.name, "pool");
    assert.deepEqual(h.emu.requests.list({ route: "vmss.get" }).map((r) => r.status), [503, 200]);

    h.emu.faults.inject({ route: "vmss.patch", status: 500 });
    const failed = await arm(h, token, "PATCH", computePath(h, "MC", "virtualMachineScaleSets", "pool"), {
      body: { tags: {} },
    });
    assert.equal(failed.status, 500);
    assert.equal(armErrorOf(failed.body).code, "InternalServerError");
    h.emu.faults.clear();
    assert.deepEqual(h.emu.faults.active(), []);
  } finally {
    await h.close();
  }
});

Deno.test("injected latency delays the answer, and a dropped connection gets no answer at all", async () => {
  const h = await startHarness();
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    h.emu.addVm({ resourceGroup: "rg", name: "vm" });
    const token = await tokenFor(h, sp);
    const path = computePath(h, "rg", "virtualMachines", "vm");

    h.emu.faults.inject({ route: "vm.get", latencyMs: 250, times: 1 });
    const started = performance.now();
    assert.equal((await arm(h, token, "GET", path)).status, 200);
    assert.ok(performance.now() - started >= 240);

    h.emu.faults.inject({ route: "vm.get", drop: true, times: 1 });
    await assert.rejects(arm(h, token, "GET", path), TypeError);
    assert.equal((await arm(h, token, "GET", path)).status, 200);
    const entries = h.emu.requests.list({ route: "vm.get" });
    assert.deepEqual(entries.map((e) => e.dropped ?? false), [false, true, false]);
    assert.ok(entries[0].durationMs >= 240);
  } finally {
    await h.close();
  }
});

Deno.test("Azure AD and IMDS faults use their own error shapes", async () => {
  const h = await startHarness();
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    const id1 = h.emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "id1" });
    const vm = h.emu.addVm({ resourceGroup: "rg", name: "vm", userAssignedIdentities: [id1.id] });
    const imds = await h.emu.startImds({ vmResourceId: vm.id });

    h.emu.faults.inject({ route: "aad.token", status: 503, times: 1 });
    await assert.rejects(tokenFor(h, sp), /503 .*temporarily_unavailable.*AADSTS90033/);
    assert.ok(await tokenFor(h, sp));

    h.emu.faults.inject({ route: "imds.token", status: 500, times: 1 });
    const url =
      `${imds.url}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net`;
    const failed = await fetch(url, { headers: { Metadata: "true" } });
    assert.equal(failed.status, 500);
    assert.deepEqual(Object.keys(await failed.json()), ["error", "error_description"]);
    const ok = await fetch(url, { headers: { Metadata: "true" } });
    assert.equal(ok.status, 200);
    await ok.body?.cancel();

    // A stalled IMDS token request still answers probes (no Metadata header) at once.
    h.emu.faults.inject({ route: "imds.token", latencyMs: 400, times: 1 });
    const slow = fetch(url, { headers: { Metadata: "true" } });
    const t0 = performance.now();
    const probe = await fetch(`${imds.url}/metadata/identity/oauth2/token`);
    assert.equal(probe.status, 400);
    await probe.body?.cancel();
    assert.ok(performance.now() - t0 < 300);
    const slowRes = await slow;
    assert.equal(slowRes.status, 200);
    await slowRes.body?.cancel();
    await imds.stop();
  } finally {
    await h.close();
  }
});

Deno.test("stopping the emulator does not wait for an injected delay to run out", async () => {
  const h = await startHarness();
  h.emu.addVm({ resourceGroup: "rg", name: "vm" });
  const sp = h.emu.registerServicePrincipal({ secret: "s" });
  const token = await tokenFor(h, sp);
  h.emu.faults.inject({ route: "vm.get", latencyMs: 30_000 });
  const pending = arm(h, token, "GET", computePath(h, "rg", "virtualMachines", "vm")).catch((e) => e);
  await new Promise((r) => setTimeout(r, 150));
  const t0 = performance.now();
  await h.close();
  assert.ok(performance.now() - t0 < 2000);
  assert.ok((await pending) instanceof Error);
});
