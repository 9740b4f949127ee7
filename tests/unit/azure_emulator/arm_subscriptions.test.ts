import assert from "node:assert/strict";
import { matchArmRoute } from "../../../scripts/sandbox/azure/arm.ts";
import {
  canSee,
  subscriptionsAnswer,
  subscriptionsApiVersionError,
} from "../../../scripts/sandbox/azure/arm_subscriptions.ts";
import type { Principal } from "../../../scripts/sandbox/azure/directory.ts";

const SUB = "11111111-2222-3333-4444-555555555555";
const view = { subscriptionId: SUB, tenantId: "tid" };

function identity(writeScopes: string[], assignScopes: string[] = []): Principal {
  return {
    kind: "managedIdentity",
    clientId: "c",
    objectId: "o",
    tenantId: "tid",
    resourceId:
      `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/i`,
    writeScopes,
    assignScopes,
  };
}

Deno.test("tenant-level routes are named apart from the subscription-scoped ones", () => {
  assert.deepEqual(matchArmRoute("GET", "/subscriptions"), {
    route: "subscriptionList.get",
    resource: "subscriptionList",
  });
  assert.deepEqual(matchArmRoute("GET", "/Tenants/"), { route: "tenantList.get", resource: "tenantList" });
  assert.deepEqual(matchArmRoute("GET", `/subscriptions/${SUB}`), {
    route: "subscription.get",
    resource: "subscription",
    subscriptionId: SUB,
  });
  assert.equal(matchArmRoute("GET", `/subscriptions/${SUB}/resourcegroups`).route, "arm.unknown");
});

Deno.test("a subscription is visible to a principal holding a role at or below it", () => {
  assert.ok(canSee(identity([`/subscriptions/${SUB}`]), SUB));
  assert.ok(canSee(identity([], [`/subscriptions/${SUB}/resourceGroups/rg`]), SUB));
  assert.ok(!canSee(identity(["/subscriptions/other"]), SUB));
  assert.ok(!canSee(identity([]), SUB));
  assert.ok(!canSee(undefined, SUB));
});

Deno.test("answers: the list, one subscription, the tenants; nothing for a caller without a role", () => {
  const seen = subscriptionsAnswer("subscriptionList", undefined, identity([`/subscriptions/${SUB}`]), view);
  assert.ok(seen.ok);
  assert.deepEqual((seen.body.value as { subscriptionId: string }[]).map((s) => s.subscriptionId), [SUB]);
  const none = subscriptionsAnswer("subscriptionList", undefined, identity([]), view);
  assert.ok(none.ok);
  assert.deepEqual(none.body, { value: [], count: { type: "Total", value: 0 } });
  const one = subscriptionsAnswer(
    "subscription",
    SUB.toUpperCase(),
    identity([`/subscriptions/${SUB}`]),
    view,
  );
  assert.ok(one.ok && one.body.subscriptionId === SUB);
  const hidden = subscriptionsAnswer("subscription", SUB, identity([]), view);
  assert.ok(!hidden.ok && hidden.error.code === "SubscriptionNotFound");
  const tenants = subscriptionsAnswer("tenantList", undefined, identity([]), view);
  assert.ok(tenants.ok && (tenants.body.value as { tenantId: string }[])[0].tenantId === "tid");
});

Deno.test("api-version: required, and one of Microsoft.Resources' own", () => {
  assert.equal(subscriptionsApiVersionError(null)?.code, "MissingApiVersionParameter");
  assert.equal(subscriptionsApiVersionError("")?.code, "MissingApiVersionParameter");
  assert.equal(subscriptionsApiVersionError("2026-04-01")?.code, "InvalidApiVersionParameter");
  assert.equal(subscriptionsApiVersionError("2022-12-01"), undefined);
});
