// The AzureAssignedIdentities that should exist (pure): the original's names `<pod>-<podns>-<identity>` in
// namespace `default` unless namespaced (docs/upstream.md, "## MIC assignment algorithm"), cut to the
// apiserver's limit with a hash, and the identities and bindings that cannot grant anything reported.

import { compareStrings } from "../lib/compare.ts";
import {
  assignedIdentityName,
  assignedIdentityNamespace,
  FEDERATED_ANNOTATION,
  grantsForPod,
  type IdentityCatalog,
  isFederatedIdentity,
  needsArmAssignment,
  parseUserAssignedId,
} from "../lib/api/matching.ts";
import {
  API_VERSION,
  ASSIGNED_IDENTITY_FINALIZER,
  AssignedIdentityState,
  type AzureAssignedIdentity,
  type AzureIdentity,
  type AzureIdentityBinding,
  BINDING_LABEL,
  NODE_NAME_LABEL,
} from "../lib/api/types.ts";
import { type BoundPod, keyOf, type ObservedState, type Problem, ref } from "./plan_types.ts";

const POD_NAME_LABEL = "podname";
const POD_NAMESPACE_LABEL = "podnamespace";
/** Longest object name the apiserver accepts (DNS subdomain). */
const MAX_NAME = 253;
/** Longest label value; a selector longer than this can never equal a pod's label. */
const MAX_LABEL_VALUE = 63;

/** FNV-1a, for short stable name suffixes. */
function shortHash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

/** The original's name; too long for the apiserver -> cut and made unique with a hash. */
function boundedName(name: string): string {
  if (name.length <= MAX_NAME) return name;
  return `${name.slice(0, MAX_NAME - 9).replace(/[-.]+$/, "")}-${shortHash(name)}`;
}

// Objects are immutable once observed (the snapshot memoises them per cached version), so their
// fingerprints are computed once, not once per cycle: this is most of a steady-state plan's cost.
const fingerprints = new WeakMap<object, string>();
function memo<T extends object>(o: T, f: (o: T) => string): string {
  let v = fingerprints.get(o);
  if (v === undefined) fingerprints.set(o, v = f(o));
  return v;
}

/** Identity fields an AzureAssignedIdentity carries that NMI and ARM act on; other edits need no write. */
function identityFingerprint(i: AzureIdentity): string {
  // The federated annotation decides whether ARM attaches the identity: a change reassigns.
  return memo(i, () =>
    JSON.stringify([
      i.metadata.namespace,
      i.metadata.name,
      i.metadata.uid ?? "",
      i.spec,
      i.metadata.annotations?.[FEDERATED_ANNOTATION] ?? "",
    ]));
}

function bindingFingerprint(b: AzureIdentityBinding): string {
  return memo(b, () => JSON.stringify([b.metadata.namespace, b.metadata.name, b.metadata.uid ?? "", b.spec]));
}

export function fingerprint(a: AzureAssignedIdentity): string {
  return memo(a, fingerprintOf);
}

function fingerprintOf(a: AzureAssignedIdentity): string {
  return JSON.stringify([
    identityFingerprint(a.spec.azureIdentityRef),
    bindingFingerprint(a.spec.azureBindingRef),
    a.spec.pod,
    a.spec.podNamespace,
    a.spec.nodeName,
    a.metadata.labels[NODE_NAME_LABEL] ?? "",
    a.metadata.labels[POD_NAME_LABEL] ?? "",
    a.metadata.labels[POD_NAMESPACE_LABEL] ?? "",
  ]);
}

const embedded = new WeakMap<object, AzureIdentity | AzureIdentityBinding>();

/**
 * The embedded copy keeps what identifies the object; status and managed fields are noise there. One copy
 * per observed object, shared by every AzureAssignedIdentity that embeds it (never mutated).
 */
function embedMeta<T extends AzureIdentity | AzureIdentityBinding>(o: T): T {
  let e = embedded.get(o) as T | undefined;
  if (!e) embedded.set(o, e = embedCopy(o));
  return e;
}

function embedCopy<T extends AzureIdentity | AzureIdentityBinding>(o: T): T {
  const m = o.metadata;
  return {
    ...o,
    metadata: {
      name: m.name,
      namespace: m.namespace,
      ...(m.uid ? { uid: m.uid } : {}),
      ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
      labels: {},
      annotations: { ...m.annotations },
      finalizers: [],
    },
  };
}

function desiredObject(
  name: string,
  namespace: string,
  pod: BoundPod,
  identity: AzureIdentity,
  binding: AzureIdentityBinding,
): AzureAssignedIdentity {
  return {
    apiVersion: API_VERSION,
    kind: "AzureAssignedIdentity",
    metadata: {
      name,
      namespace,
      labels: {
        [NODE_NAME_LABEL]: pod.nodeName,
        [POD_NAME_LABEL]: pod.name,
        [POD_NAMESPACE_LABEL]: pod.namespace,
      },
      annotations: {},
      finalizers: [ASSIGNED_IDENTITY_FINALIZER],
    },
    spec: {
      azureIdentityRef: embedMeta(identity),
      azureBindingRef: embedMeta(binding),
      pod: pod.name,
      podNamespace: pod.namespace,
      nodeName: pod.nodeName,
    },
    status: { status: AssignedIdentityState.Created, availableReplicas: 1 },
  };
}

/** A valid user-assigned identity that ARM must attach (not federated), or undefined. */
export function armId(identity: AzureIdentity, federatedByDefault: boolean): string | undefined {
  if (!needsArmAssignment(identity) || isFederatedIdentity(identity, federatedByDefault)) return undefined;
  return parseUserAssignedId(identity.spec.resourceID) ? identity.spec.resourceID.trim() : undefined;
}

export function isAssigned(a: AzureAssignedIdentity): boolean {
  // "" is an object written before v1.5; the original treats it as Assigned.
  return a.status.status === AssignedIdentityState.Assigned || a.status.status === "";
}

export interface Desired {
  key: string;
  object: AzureAssignedIdentity;
  /** The lower-cased resource id when ARM must attach it. */
  armKey?: string;
  resourceId?: string;
}

/**
 * What an Assigned object vouches for on its VM / scale set: this resource id under this client id. An
 * identity naming the same resource id with another client id is not vouched for: ARM must confirm it.
 */
export function vouchKey(resourceId: string, clientId: string): string {
  return `${resourceId.toLowerCase()}|${clientId.trim().toLowerCase()}`;
}

/** Binding and identity problems that make them grant nothing; reported once per object. */
export function validateCatalog(
  identities: readonly AzureIdentity[],
  bindings: readonly AzureIdentityBinding[],
  problems: Problem[],
): { catalog: IdentityCatalog; usable: (i: AzureIdentity) => boolean } {
  const byKey = new Map(identities.map((i) => [keyOf(i), i]));
  const invalid = new Set<string>();
  for (const i of identities) {
    if (needsArmAssignment(i) && !parseUserAssignedId(i.spec.resourceID)) {
      invalid.add(keyOf(i));
      problems.push({
        object: ref(i),
        reason: "InvalidIdentity",
        message:
          `AzureIdentity ${keyOf(i)}: spec.resourceID ${
            JSON.stringify(i.spec.resourceID.slice(0, 300))
          } is not a user-assigned identity id (/subscriptions/<sub>/resourcegroups/<rg>/providers/` +
          `Microsoft.ManagedIdentity/userAssignedIdentities/<name>); no pod gets it`,
      });
    }
  }
  const bySelector = new Map<string, AzureIdentityBinding[]>();
  for (const b of bindings) {
    const sel = b.spec.selector;
    if (!sel) {
      problems.push({
        object: ref(b),
        reason: "InvalidBinding",
        message: `AzureIdentityBinding ${keyOf(b)}: spec.selector is empty; it selects no pod`,
      });
      continue;
    }
    if (sel.length > MAX_LABEL_VALUE) {
      problems.push({
        object: ref(b),
        reason: "InvalidBinding",
        message:
          `AzureIdentityBinding ${keyOf(b)}: spec.selector is ${sel.length} characters; a label value ` +
          `has at most ${MAX_LABEL_VALUE}, so it selects no pod`,
      });
      continue;
    }
    if (!byKey.has(`${b.metadata.namespace}/${b.spec.azureIdentity}`)) {
      problems.push({
        object: ref(b),
        reason: "IdentityNotFound",
        message: `AzureIdentityBinding ${keyOf(b)}: AzureIdentity ${
          JSON.stringify(b.spec.azureIdentity)
        } does not exist in namespace ${b.metadata.namespace}`,
      });
      continue;
    }
    const list = bySelector.get(sel);
    if (list) list.push(b);
    else bySelector.set(sel, [b]);
  }
  return {
    catalog: {
      bindingsForSelector: (s) => bySelector.get(s) ?? [],
      identity: (ns, name) => byKey.get(`${ns}/${name}`),
    },
    usable: (i) => !invalid.has(keyOf(i)),
  };
}

/**
 * Phase 1 of a plan: the objects that should exist, keyed `ns/name`, in a stable order (pods sorted,
 * grants sorted by binding). A pod on a node MIC has never seen waits: its VM is unknown.
 */
export function desiredAssignments(
  state: ObservedState,
  catalog: IdentityCatalog,
  usable: (i: AzureIdentity) => boolean,
  opts: { forceNamespaced: boolean; federatedByDefault: boolean },
): Map<string, Desired> {
  const pods = [...state.pods].sort((a, b) =>
    compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name)
  );
  const desired = new Map<string, Desired>();
  for (const pod of pods) {
    if (!pod.nodeName || !pod.labels[BINDING_LABEL] || !state.nodes.has(pod.nodeName)) continue;
    for (const { binding, identity } of grantsForPod(pod, catalog, opts.forceNamespaced)) {
      if (!usable(identity)) continue;
      const namespace = assignedIdentityNamespace(identity, opts.forceNamespaced);
      const name = uniqueName(desired, namespace, pod, identity);
      if (name === undefined) continue;
      const key = `${namespace}/${name}`;
      const resourceId = armId(identity, opts.federatedByDefault);
      desired.set(key, {
        key,
        object: desiredObject(name, namespace, pod, identity, binding),
        ...(resourceId ? { resourceId, armKey: resourceId.toLowerCase() } : {}),
      });
    }
  }
  return desired;
}

/**
 * The original's name, or (same identity name in two namespaces) the second one's with `-<namespace>`;
 * undefined when this identity already has its object for the pod (two bindings, one identity).
 */
function uniqueName(
  desired: ReadonlyMap<string, Desired>,
  namespace: string,
  pod: BoundPod,
  identity: AzureIdentity,
): string | undefined {
  const name = boundedName(assignedIdentityName(pod.name, pod.namespace, identity.metadata.name));
  const first = desired.get(`${namespace}/${name}`)?.object.spec.azureIdentityRef;
  if (!first) return name;
  if (first.metadata.namespace === identity.metadata.namespace) return undefined;
  const second = boundedName(`${name}-${identity.metadata.namespace}`);
  return desired.has(`${namespace}/${second}`) ? undefined : second;
}
