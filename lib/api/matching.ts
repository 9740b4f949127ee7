// Which pod may use which identity: the original's matching rules (docs/upstream.md, "## CRDs",
// "## Identity selection", "## MIC assignment algorithm") as pure functions, shared by MIC's planner and
// NMI's identity selection so both sides always agree. The original's bugs are fixed here on purpose: ids
// compare case-insensitively everywhere, and choices are deterministic (sorted), never "whatever order the
// informer had".

import { compareStrings } from "../compare.ts";
import {
  AzureIdentity,
  AzureIdentityBinding,
  AzurePodIdentityException,
  BEHAVIOR_ANNOTATION,
  BEHAVIOR_NAMESPACED,
  BINDING_LABEL,
  IdentityType,
} from "./types.ts";

/** The namespace every AzureAssignedIdentity of a non-namespaced identity lives in (as the original). */
const DEFAULT_ASSIGNED_NAMESPACE = "default";

/** The original's check of a user-assigned identity's ARM id (MIC drops type-0 identities failing it). */
const USER_ASSIGNED_ID =
  /^\/subscriptions\/([^/]+)\/resourcegroups\/([^/]+)\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\/([^/]+)$/i;

interface UserAssignedIdParts {
  subscription: string;
  resourceGroup: string;
  name: string;
}

export function parseUserAssignedId(id: string): UserAssignedIdParts | undefined {
  const m = USER_ASSIGNED_ID.exec(id.trim());
  return m ? { subscription: m[1], resourceGroup: m[2], name: m[3] } : undefined;
}

/** ARM ids and client ids are case-insensitive; compare them only through this. */
export function sameId(a: string | undefined, b: string | undefined): boolean {
  return !!a && !!b && a.toLowerCase() === b.toLowerCase();
}

/** Namespaced by the global flag (or FORCENAMESPACED), or by this identity's Behavior annotation. */
function isNamespacedIdentity(identity: AzureIdentity, forceNamespaced: boolean): boolean {
  return forceNamespaced || identity.metadata.annotations[BEHAVIOR_ANNOTATION] === BEHAVIOR_NAMESPACED;
}

export interface PodRef {
  name: string;
  namespace: string;
  labels: Record<string, string>;
}

/** A binding selects a pod when its selector equals the pod's `aadpodidbinding` label exactly. */
function bindingSelectsPod(binding: AzureIdentityBinding, pod: PodRef): boolean {
  const label = pod.labels[BINDING_LABEL];
  return !!label && binding.spec.selector === label;
}

/**
 * The identity a binding names: an AzureIdentity of that name in the binding's own namespace. In namespaced
 * mode (global or per identity) the pod must also be in that namespace.
 */
function bindingGrants(
  binding: AzureIdentityBinding,
  identity: AzureIdentity,
  pod: PodRef,
  forceNamespaced: boolean,
): boolean {
  if (identity.metadata.namespace !== binding.metadata.namespace) return false;
  if (identity.metadata.name !== binding.spec.azureIdentity) return false;
  if (!bindingSelectsPod(binding, pod)) return false;
  return !isNamespacedIdentity(identity, forceNamespaced) || pod.namespace === identity.metadata.namespace;
}

export interface Grant {
  binding: AzureIdentityBinding;
  identity: AzureIdentity;
}

/** Identities and bindings looked up by namespace and name. */
export interface IdentityCatalog {
  bindingsForSelector(selector: string): readonly AzureIdentityBinding[];
  identity(namespace: string, name: string): AzureIdentity | undefined;
}

function byNamespaceAndName(a: { metadata: { namespace: string; name: string } }, b: typeof a): number {
  return compareStrings(a.metadata.namespace, b.metadata.namespace) ||
    compareStrings(a.metadata.name, b.metadata.name);
}

/** Every (binding, identity) a pod is granted, sorted by binding namespace/name: a stable order. */
export function grantsForPod(pod: PodRef, catalog: IdentityCatalog, forceNamespaced: boolean): Grant[] {
  const label = pod.labels[BINDING_LABEL];
  if (!label) return [];
  const grants: Grant[] = [];
  for (const binding of [...catalog.bindingsForSelector(label)].sort(byNamespaceAndName)) {
    const identity = catalog.identity(binding.metadata.namespace, binding.spec.azureIdentity);
    if (identity && bindingGrants(binding, identity, pod, forceNamespaced)) {
      grants.push({ binding, identity });
    }
  }
  return grants;
}

/**
 * A pod is excepted (gets the node's own identity, unchecked) when ALL labels of an exception in the pod's
 * namespace match (values compare case-insensitively, as the original).
 */
export function isPodExcepted(
  podLabels: Record<string, string>,
  exceptionsInPodNamespace: readonly AzurePodIdentityException[],
): boolean {
  return exceptionsInPodNamespace.some((ex) => {
    const wanted = Object.entries(ex.spec.podLabels);
    // Every label must match (a selector): the original matched on any one, so one common label excepted
    // pods it was never meant for. An exception with no labels excepts nothing.
    return wanted.length > 0 &&
      wanted.every(([k, v]) => podLabels[k] !== undefined && podLabels[k].toLowerCase() === v.toLowerCase());
  });
}

/** What a token request asks for; at most one is set by SDKs, and none means "the pod's identity". */
export interface IdentityRequest {
  clientId?: string;
  resourceId?: string;
  objectId?: string;
}

export function isSpecificRequest(req: IdentityRequest): boolean {
  return !!(req.clientId || req.resourceId || req.objectId);
}

/**
 * Whether an identity is the one a request names. `objectId` can only match when the caller knows the
 * identity's principal id (the CRD does not carry it), so it is compared against `principalId` if given.
 */
export function identityMatchesRequest(
  identity: AzureIdentity,
  req: IdentityRequest,
  principalId?: string,
): boolean {
  if (req.clientId && !sameId(identity.spec.clientID, req.clientId)) return false;
  if (req.resourceId && !sameId(identity.spec.resourceID, req.resourceId)) return false;
  if (req.objectId && !sameId(principalId, req.objectId)) return false;
  return isSpecificRequest(req);
}

/** Opts one AzureIdentity in ("true") or out ("false") of federated mode, whatever the cluster default. */
export const FEDERATED_ANNOTATION = "aadpodidentity.k8s.io/federated";

/**
 * Federated mode: a user-assigned identity whose tokens NMI gets by exchanging the pod's service-account
 * token at Azure AD; it is never attached to a VM. Service principals (types 1 and 2) are never federated.
 * The annotation wins; any other value than "true" / "false" means the cluster default.
 */
export function isFederatedIdentity(identity: AzureIdentity, federatedByDefault: boolean): boolean {
  if (identity.spec.type !== IdentityType.UserAssignedMSI) return false;
  const v = identity.metadata.annotations?.[FEDERATED_ANNOTATION];
  if (v === "true") return true;
  if (v === "false") return false;
  return federatedByDefault;
}

/** User-assigned identities are the only kind attached to VMs; service principals need no ARM change. */
export function needsArmAssignment(identity: AzureIdentity): boolean {
  return identity.spec.type === IdentityType.UserAssignedMSI;
}

/** `<pod>-<podns>-<identity>`, the original's AzureAssignedIdentity name. */
export function assignedIdentityName(podName: string, podNamespace: string, identityName: string): string {
  return `${podName}-${podNamespace}-${identityName}`;
}

/** The identity's namespace when namespaced, otherwise always `default` (as the original). */
export function assignedIdentityNamespace(identity: AzureIdentity, forceNamespaced: boolean): string {
  return isNamespacedIdentity(identity, forceNamespaced)
    ? identity.metadata.namespace
    : DEFAULT_ASSIGNED_NAMESPACE;
}
