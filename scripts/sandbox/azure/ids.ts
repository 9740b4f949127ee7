// ARM resource ids: building, parsing and comparing them.
// ARM treats ids case-insensitively and echoes them back with inconsistent casing (notably
// `resourcegroups`), so every lookup in the emulator goes through `idKey`.

export type ComputeKind = "virtualMachines" | "virtualMachineScaleSets";

interface ParsedResourceId {
  subscriptionId: string;
  resourceGroup: string;
  /** Provider namespace as written, e.g. `Microsoft.Compute`. */
  provider: string;
  /** Resource type as written, e.g. `virtualMachines`. */
  type: string;
  name: string;
}

const RESOURCE_ID =
  /^\/subscriptions\/([^/]+)\/resourcegroups\/([^/]+)\/providers\/([^/]+)\/([^/]+)\/([^/]+)\/?$/i;

/** Parses a top-level resource id; returns undefined for anything else (child resources, garbage). */
export function parseResourceId(id: string): ParsedResourceId | undefined {
  const m = RESOURCE_ID.exec(id);
  if (!m) return undefined;
  return { subscriptionId: m[1], resourceGroup: m[2], provider: m[3], type: m[4], name: m[5] };
}

/** The map key for a resource id: lower-cased, without a trailing slash. */
export function idKey(id: string): string {
  return id.replace(/\/+$/, "").toLowerCase();
}

export function sameId(a: string, b: string): boolean {
  return idKey(a) === idKey(b);
}

export function computeId(
  subscriptionId: string,
  resourceGroup: string,
  kind: ComputeKind,
  name: string,
): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Compute/${kind}/${name}`;
}

export function userAssignedIdentityId(subscriptionId: string, resourceGroup: string, name: string): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;
}

/**
 * How ARM spells an id inside `identity.userAssignedIdentities` and in `xms_mirid`: with a lower-case
 * `resourcegroups` segment. Clients that compare ids case-sensitively break on this, as they do in Azure.
 */
export function armEchoedId(id: string): string {
  return id.replace(/\/resourceGroups\//i, "/resourcegroups/");
}

/** True when `id` is `scope` or lies below it (RBAC scope semantics, case-insensitive, segment-aligned). */
export function isWithinScope(id: string, scope: string): boolean {
  const i = idKey(id);
  const s = idKey(scope);
  return s === "" || i === s || i.startsWith(s + "/");
}

/** True for the `Microsoft.ManagedIdentity/userAssignedIdentities` resource type. */
export function isUserAssignedIdentityId(id: string): boolean {
  const p = parseResourceId(id);
  return p !== undefined && p.provider.toLowerCase() === "microsoft.managedidentity" &&
    p.type.toLowerCase() === "userassignedidentities";
}
