// Microsoft.Resources' tenant-level reads that clients call right after getting a token: the subscriptions
// and tenants the caller can see (`az login --identity` lists subscriptions and fails without one).
// Wire shape: azure-rest-api-specs, specification/resources/resource-manager/Microsoft.Resources/stable/
// 2022-12-01/subscriptions.json (Subscriptions_List, Subscriptions_Get, Tenants_List),
// https://github.com/Azure/azure-rest-api-specs/blob/main/specification/resources/resource-manager/Microsoft.Resources/stable/2022-12-01/subscriptions.json

import { type ArmError, armError, subscriptionNotFound } from "./arm_errors.ts";
import type { Principal } from "./directory.ts";
import { isWithinScope } from "./ids.ts";

/** api-versions of the subscriptions API (Microsoft.Resources, tenant level). */
const SUBSCRIPTIONS_API_VERSIONS = [
  "2014-04-01-preview",
  "2015-01-01",
  "2016-06-01",
  "2018-06-01",
  "2019-06-01",
  "2019-11-01",
  "2020-01-01",
  "2021-01-01",
  "2022-12-01",
];

export type SubscriptionsResource = "subscriptionList" | "subscription" | "tenantList";

/** Which tenant-level route `path` (decoded) is, or undefined. */
export function matchSubscriptionsPath(
  path: string,
): { resource: SubscriptionsResource; subscriptionId?: string } | undefined {
  if (/^\/subscriptions\/?$/i.test(path)) return { resource: "subscriptionList" };
  if (/^\/tenants\/?$/i.test(path)) return { resource: "tenantList" };
  const one = /^\/subscriptions\/([^/]+)\/?$/i.exec(path);
  return one ? { resource: "subscription", subscriptionId: one[1] } : undefined;
}

/** ARM's answer to a missing or unknown api-version on these routes (Microsoft.Resources' wording). */
export function subscriptionsApiVersionError(version: string | null): ArmError | undefined {
  if (version === null || version === "") {
    return armError(
      400,
      "MissingApiVersionParameter",
      "The api-version query parameter (?api-version=) is required for all requests.",
    );
  }
  if (SUBSCRIPTIONS_API_VERSIONS.includes(version)) return undefined;
  return armError(
    400,
    "InvalidApiVersionParameter",
    `The api-version '${version}' is invalid. The supported versions are '${
      SUBSCRIPTIONS_API_VERSIONS.join(",")
    }'.`,
  );
}

interface TenantView {
  subscriptionId: string;
  tenantId: string;
}

/** A caller sees a subscription when it holds a role anywhere in it (as Azure's RBAC lists them). */
export function canSee(caller: Principal | undefined, subscriptionId: string): boolean {
  const sub = `/subscriptions/${subscriptionId}`;
  return !!caller && [...caller.writeScopes, ...caller.assignScopes].some((s) => isWithinScope(s, sub));
}

function subscriptionToJson(v: TenantView): Record<string, unknown> {
  return {
    id: `/subscriptions/${v.subscriptionId}`,
    authorizationSource: "RoleBased",
    managedByTenants: [],
    subscriptionId: v.subscriptionId,
    tenantId: v.tenantId,
    displayName: "Azure emulator subscription",
    state: "Enabled",
    subscriptionPolicies: {
      locationPlacementId: "Public_2014-09-01",
      quotaId: "PayAsYouGo_2014-09-01",
      spendingLimit: "Off",
    },
  };
}

function tenantToJson(tenantId: string): Record<string, unknown> {
  return {
    id: `/tenants/${tenantId}`,
    tenantId,
    countryCode: "US",
    displayName: "Azure emulator tenant",
    domains: ["emulator.onmicrosoft.com"],
    defaultDomain: "emulator.onmicrosoft.com",
    tenantCategory: "Home",
    tenantType: "AAD",
  };
}

/** The body (or error) of a GET on one of these routes, for `caller` (pure). */
export function subscriptionsAnswer(
  resource: SubscriptionsResource,
  requested: string | undefined,
  caller: Principal | undefined,
  v: TenantView,
): { ok: true; body: Record<string, unknown> } | { ok: false; error: ArmError } {
  const visible = canSee(caller, v.subscriptionId);
  if (resource === "tenantList") {
    const value = caller ? [tenantToJson(v.tenantId)] : [];
    return { ok: true, body: { value, count: { type: "Total", value: value.length } } };
  }
  if (resource === "subscriptionList") {
    const value = visible ? [subscriptionToJson(v)] : [];
    return { ok: true, body: { value, count: { type: "Total", value: value.length } } };
  }
  if (!visible || requested?.toLowerCase() !== v.subscriptionId.toLowerCase()) {
    return { ok: false, error: subscriptionNotFound(requested ?? "") };
  }
  return { ok: true, body: subscriptionToJson(v) };
}
