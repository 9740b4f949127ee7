// Microsoft.Resources' tenant-level reads (what `az login --identity` calls after its token): the caller's
// subscriptions and tenants, strict on api-version and bearer token as the rest of the emulated ARM.

import assert from "node:assert/strict";
import { arm, armErrorOf, startHarness, tokenFor } from "./helpers.ts";

const API = "2022-12-01";

Deno.test("GET /subscriptions lists the subscription to a caller with a role in it, in ARM's shape", async () => {
  const h = await startHarness();
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    const token = await tokenFor(h, sp);
    const list = await arm(h, token, "GET", "/subscriptions", { apiVersion: API });
    assert.equal(list.status, 200, JSON.stringify(list.body));
    assert.deepEqual(list.body.count, { type: "Total", value: 1 });
    const [sub] = list.body.value as Record<string, unknown>[];
    assert.equal(sub.id, `/subscriptions/${h.emu.subscriptionId}`);
    assert.equal(sub.subscriptionId, h.emu.subscriptionId);
    assert.equal(sub.tenantId, sp.tenantId);
    assert.equal(sub.state, "Enabled");
    assert.equal(typeof sub.displayName, "string");

    const one = await arm(h, token, "GET", `/subscriptions/${h.emu.subscriptionId}`, { apiVersion: API });
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, sub);

    const tenants = await arm(h, token, "GET", "/tenants", { apiVersion: "2020-01-01" });
    assert.equal(tenants.status, 200);
    const [tenant] = tenants.body.value as Record<string, unknown>[];
    assert.deepEqual([tenant.id, tenant.tenantId], [`/tenants/${sp.tenantId}`, sp.tenantId]);
    assert.ok([...h.emu.requests].some((e) => e.route === "subscriptionList.get"));
  } finally {
    await h.close();
  }
});

Deno.test("the subscriptions routes refuse a bad api-version, a missing token, another subscription", async () => {
  const h = await startHarness();
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    const token = await tokenFor(h, sp);
    const missing = await arm(h, token, "GET", "/subscriptions", { apiVersion: null });
    assert.deepEqual([missing.status, armErrorOf(missing.body).code], [400, "MissingApiVersionParameter"]);
    // A Compute api-version is not one of Microsoft.Resources'.
    const wrong = await arm(h, token, "GET", "/subscriptions", { apiVersion: "2026-04-01" });
    assert.deepEqual([wrong.status, armErrorOf(wrong.body).code], [400, "InvalidApiVersionParameter"]);
    assert.match(armErrorOf(wrong.body).message, /2022-12-01/);
    const anonymous = await arm(h, undefined, "GET", "/subscriptions", { apiVersion: API });
    assert.deepEqual([anonymous.status, armErrorOf(anonymous.body).code], [401, "AuthenticationFailed"]);
    const graph = await tokenFor(h, sp, "https://graph.microsoft.com");
    const audience = await arm(h, graph, "GET", "/tenants", { apiVersion: API });
    assert.deepEqual(
      [audience.status, armErrorOf(audience.body).code],
      [401, "InvalidAuthenticationTokenAudience"],
    );
    const other = await arm(h, token, "GET", "/subscriptions/00000000-1111-2222-3333-444444444444", {
      apiVersion: API,
    });
    assert.deepEqual([other.status, armErrorOf(other.body).code], [404, "SubscriptionNotFound"]);
    const post = await arm(h, token, "POST", "/subscriptions", { apiVersion: API, body: {} });
    assert.equal(post.status, 405);
  } finally {
    await h.close();
  }
});

Deno.test("a caller without any role in the subscription sees an empty list and no subscription", async () => {
  const h = await startHarness();
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    h.emu.setRoleScopes(sp.clientId, { write: [], assign: [] });
    const token = await tokenFor(h, sp);
    const list = await arm(h, token, "GET", "/subscriptions", { apiVersion: API });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body, { value: [], count: { type: "Total", value: 0 } });
    const one = await arm(h, token, "GET", `/subscriptions/${h.emu.subscriptionId}`, { apiVersion: API });
    assert.deepEqual([one.status, armErrorOf(one.body).code], [404, "SubscriptionNotFound"]);
  } finally {
    await h.close();
  }
});
