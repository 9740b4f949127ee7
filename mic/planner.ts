// MIC's decision (pure, no I/O): observed state -> the AzureAssignedIdentities that should exist and, per
// VM or scale set, the identity ids to add and to remove. The original's rules (upstream 2.3, 5.2, 5.3):
// names `<pod>-<podns>-<identity>`, namespace `default` unless namespaced, an id leaves a VM / scale set only
// when no pod on it still uses it and it is not immutable, service principals need no ARM change.
// Fixed on purpose: ids compare case-insensitively, order is deterministic, two identities of the same name
// in different namespaces no longer collide, and an identity only counts as "on the VM" once an
// AzureAssignedIdentity says Assigned, so nothing is re-PATCHed while it is already there.

import {
  assignedIdentityName,
  assignedIdentityNamespace,
  grantsForPod,
  type IdentityCatalog,
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
import type { ComputeTarget } from "../lib/azure/provider_id.ts";

export const POD_NAME_LABEL = "podname";
export const POD_NAMESPACE_LABEL = "podnamespace";
/** Longest object name the apiserver accepts (DNS subdomain). */
const MAX_NAME = 253;
/** Longest label value; a selector longer than this can never equal a pod's label. */
const MAX_LABEL_VALUE = 63;

export interface BoundPod {
  name: string;
  namespace: string;
  nodeName: string;
  labels: Record<string, string>;
}

export interface ObservedState {
  /** Scheduled, not finished pods carrying the `aadpodidbinding` label. */
  pods: readonly BoundPod[];
  /** Node name -> its VM / scale set; undefined when the node is known but not an Azure machine. */
  nodes: ReadonlyMap<string, ComputeTarget | undefined>;
  /** Nodes that are gone but whose VM / scale set is remembered, so their identities can be cleaned up. */
  goneNodes?: ReadonlyMap<string, ComputeTarget>;
  identities: readonly AzureIdentity[];
  bindings: readonly AzureIdentityBinding[];
  assigned: readonly AzureAssignedIdentity[];
}

export interface PlannerOptions {
  forceNamespaced: boolean;
  /** Client ids never removed from a VM / scale set (`--immutable-user-msis`, the cluster's own identity). */
  immutableClientIds: readonly string[];
  /**
   * Drift repair: ask ARM again for every id an Assigned object vouches for, so one removed by hand is put
   * back (the executor's GET finds it missing and PATCHes only that).
   */
  repairDrift?: boolean;
}

export interface ObjectRef {
  kind: string;
  namespace: string;
  name: string;
  uid?: string;
  resourceVersion?: string;
}

/** Something wrong with a user's object: becomes one Warning event on it and one log line. */
export interface Problem {
  object: ObjectRef;
  reason: string;
  message: string;
}

export interface AssignedUpdate {
  /** The object as it is now (its resourceVersion makes the write conditional). */
  current: AzureAssignedIdentity;
  next: AzureAssignedIdentity;
}

/** ARM work on one VM / scale set, and the AzureAssignedIdentities whose state depends on it. */
export interface TargetPlan {
  target: ComputeTarget;
  /** Resource ids to attach, de-duplicated case-insensitively, sorted. */
  add: string[];
  /** Resource ids to detach (no pod on this VM / scale set uses them, not immutable), sorted. */
  remove: string[];
  /** Keys (`ns/name`) of AzureAssignedIdentities to mark Assigned once their id is attached. */
  assign: { key: string; resourceId: string }[];
  /** AzureAssignedIdentities to mark Unassigned and delete once their id is detached (or kept in use). */
  release: { key: string; resourceId: string; detach: boolean }[];
}

export interface Plan {
  /** New AzureAssignedIdentities (status Created). */
  create: AzureAssignedIdentity[];
  update: AssignedUpdate[];
  /**
   * Keys of AzureAssignedIdentities to mark Assigned with no ARM call: service principals, and ids another
   * Assigned object already vouches for on the same VM / scale set.
   */
  assignWithoutArm: { key: string; targetKey?: string }[];
  /**
   * AzureAssignedIdentities to delete with no ARM call (service principals, never Assigned, gone machines);
   * `targetKey` names the VM / scale set it was on, so the executor can wait for a PATCH in flight there.
   */
  releaseWithoutArm: { key: string; targetKey?: string }[];
  /** Per VM / scale set, sorted by resource id. */
  targets: TargetPlan[];
  problems: Problem[];
}

export function keyOf(o: { metadata: { namespace: string; name: string } }): string {
  return `${o.metadata.namespace}/${o.metadata.name}`;
}

export function ref(o: AzureIdentity | AzureIdentityBinding | AzureAssignedIdentity): ObjectRef {
  const m = o.metadata;
  return {
    kind: o.kind,
    namespace: m.namespace,
    name: m.name,
    ...(m.uid ? { uid: m.uid } : {}),
    ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
  };
}

/** FNV-1a, for short stable name suffixes. */
function shortHash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

/** The original's name; too long for the apiserver -> cut and made unique with a hash. */
export function boundedName(name: string): string {
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
  return memo(i, () => JSON.stringify([i.metadata.namespace, i.metadata.name, i.metadata.uid ?? "", i.spec]));
}

function bindingFingerprint(b: AzureIdentityBinding): string {
  return memo(b, () => JSON.stringify([b.metadata.namespace, b.metadata.name, b.metadata.uid ?? "", b.spec]));
}

function fingerprint(a: AzureAssignedIdentity): string {
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

/** A valid user-assigned identity that ARM can attach, or undefined. */
function armId(identity: AzureIdentity): string | undefined {
  if (!needsArmAssignment(identity)) return undefined;
  return parseUserAssignedId(identity.spec.resourceID) ? identity.spec.resourceID.trim() : undefined;
}

function isAssigned(a: AzureAssignedIdentity): boolean {
  // "" is an object written before v1.5; the original treats it as Assigned.
  return a.status.status === AssignedIdentityState.Assigned || a.status.status === "";
}

interface Desired {
  key: string;
  object: AzureAssignedIdentity;
  /** The lower-cased resource id when ARM must attach it. */
  armKey?: string;
  resourceId?: string;
}

/** Binding and identity problems that make them grant nothing; reported once per object. */
function validateCatalog(
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

export function plan(state: ObservedState, opts: PlannerOptions): Plan {
  const problems: Problem[] = [];
  const immutable = new Set(opts.immutableClientIds.map((c) => c.trim().toLowerCase()).filter(Boolean));
  const { catalog, usable } = validateCatalog(state.identities, state.bindings, problems);
  const targetOf = (node: string): ComputeTarget | undefined =>
    state.nodes.get(node) ?? state.goneNodes?.get(node);

  // 1. Desired objects, in a stable order (pods sorted, grants sorted by binding).
  const pods = [...state.pods].sort((a, b) =>
    a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name)
  );
  const desired = new Map<string, Desired>();
  for (const pod of pods) {
    if (!pod.nodeName || !pod.labels[BINDING_LABEL]) continue;
    // A pod on a node this MIC has never seen is not assigned yet: its node (and its VM) is unknown.
    if (!state.nodes.has(pod.nodeName)) continue;
    for (const { binding, identity } of grantsForPod(pod, catalog, opts.forceNamespaced)) {
      if (!usable(identity)) continue;
      const namespace = assignedIdentityNamespace(identity, opts.forceNamespaced);
      let name = boundedName(assignedIdentityName(pod.name, pod.namespace, identity.metadata.name));
      // Same identity name in two namespaces: the first (by binding order) keeps the original's name.
      if (desired.has(`${namespace}/${name}`)) {
        const first = desired.get(`${namespace}/${name}`)!.object.spec.azureIdentityRef;
        if (first.metadata.namespace === identity.metadata.namespace) continue; // two bindings, one identity
        name = boundedName(`${name}-${identity.metadata.namespace}`);
        if (desired.has(`${namespace}/${name}`)) continue;
      }
      const key = `${namespace}/${name}`;
      const resourceId = armId(identity);
      desired.set(key, {
        key,
        object: desiredObject(name, namespace, pod, identity, binding),
        ...(resourceId ? { resourceId, armKey: resourceId.toLowerCase() } : {}),
      });
    }
  }

  // 2. Ids in use per VM / scale set: every desired user-assigned identity on any node of it.
  const inUse = new Map<string, Set<string>>();
  for (const d of desired.values()) {
    const t = targetOf(d.object.spec.nodeName);
    if (!t || !d.armKey) continue;
    let set = inUse.get(t.key);
    if (!set) inUse.set(t.key, set = new Set());
    set.add(d.armKey);
  }

  // Ids an Assigned object says are on each VM / scale set. MIC only detaches ids no desired object uses,
  // so a new pod needing one of these is Assigned without asking ARM (upstream spent a GET on it).
  const attached = new Map<string, Set<string>>();
  for (const a of state.assigned) {
    const id = armId(a.spec.azureIdentityRef);
    const t = targetOf(a.spec.nodeName);
    if (!id || !t || !isAssigned(a) || a.metadata.deletionTimestamp) continue;
    let set = attached.get(t.key);
    if (!set) attached.set(t.key, set = new Set());
    set.add(id.toLowerCase());
  }

  const targets = new Map<string, TargetPlan>();
  const targetPlan = (t: ComputeTarget): TargetPlan => {
    let p = targets.get(t.key);
    if (!p) targets.set(t.key, p = { target: t, add: [], remove: [], assign: [], release: [] });
    return p;
  };
  const create: AzureAssignedIdentity[] = [];
  const update: AssignedUpdate[] = [];
  const assignWithoutArm: { key: string; targetKey?: string }[] = [];
  const releaseWithoutArm: { key: string; targetKey?: string }[] = [];

  /** What to do with an existing object that no longer describes a wanted assignment (or its old half). */
  const release = (a: AzureAssignedIdentity, key: string | undefined) => {
    const identity = a.spec.azureIdentityRef;
    const resourceId = armId(identity);
    const t = targetOf(a.spec.nodeName);
    const detach = !!resourceId && !!t && isAssigned(a) &&
      !inUse.get(t.key)?.has(resourceId.toLowerCase()) &&
      !immutable.has(identity.spec.clientID.toLowerCase());
    if (key === undefined) {
      if (detach) targetPlan(t!).remove.push(resourceId!);
      return;
    }
    if (!resourceId || !t || !isAssigned(a)) {
      // Nothing was attached on our account (service principal, never Assigned) or the machine is gone.
      releaseWithoutArm.push(t ? { key, targetKey: t.key } : { key });
      return;
    }
    const p = targetPlan(t);
    if (detach) p.remove.push(resourceId);
    p.release.push({ key, resourceId, detach });
  };

  /** A desired object whose identity is not known to be attached to its node's machine yet. */
  const needAssign = (d: Desired) => {
    if (!d.resourceId) {
      assignWithoutArm.push({ key: d.key });
      return;
    }
    const t = targetOf(d.object.spec.nodeName);
    if (!t) {
      problems.push({
        object: ref(d.object.spec.azureBindingRef),
        reason: "NodeNotOnAzure",
        message: `node ${d.object.spec.nodeName} has no Azure VM or scale-set providerID; identity ` +
          `${keyOf(d.object.spec.azureIdentityRef)} cannot be assigned to pod ` +
          `${d.object.spec.podNamespace}/${d.object.spec.pod}`,
      });
      return;
    }
    if (attached.get(t.key)?.has(d.armKey!)) {
      // `targetKey`: a job in flight on that machine may be detaching it; the executor waits for it.
      assignWithoutArm.push({ key: d.key, targetKey: t.key });
      return;
    }
    const p = targetPlan(t);
    p.add.push(d.resourceId);
    p.assign.push({ key: d.key, resourceId: d.resourceId });
  };

  // 3. Compare with what exists.
  const existing = new Map(state.assigned.map((a) => [keyOf(a), a]));
  for (const d of desired.values()) {
    const cur = existing.get(d.key);
    if (!cur || cur.metadata.deletionTimestamp) {
      if (cur) continue; // being deleted: recreated once the delete completes
      create.push(d.object);
      needAssign(d);
      continue;
    }
    if (fingerprint(cur) === fingerprint(d.object)) {
      if (!isAssigned(cur)) needAssign(d);
      continue;
    }
    // Changed binding, identity or node: the same object now describes a different assignment.
    const oldTarget = targetOf(cur.spec.nodeName);
    const newTarget = targetOf(d.object.spec.nodeName);
    const oldId = armId(cur.spec.azureIdentityRef)?.toLowerCase();
    const sameAttachment = isAssigned(cur) && oldId === d.armKey && oldTarget?.key === newTarget?.key;
    const next: AzureAssignedIdentity = {
      ...d.object,
      metadata: { ...cur.metadata, labels: { ...cur.metadata.labels, ...d.object.metadata.labels } },
      status: sameAttachment ? cur.status : { status: AssignedIdentityState.Created, availableReplicas: 1 },
    };
    update.push({ current: cur, next });
    if (!sameAttachment) {
      release(cur, undefined);
      needAssign(d);
    }
  }
  for (const [key, cur] of existing) {
    if (desired.has(key)) continue;
    if (cur.metadata.deletionTimestamp && !cur.metadata.finalizers.includes(ASSIGNED_IDENTITY_FINALIZER)) {
      continue; // someone else's finalizer holds it; nothing of ours to do
    }
    release(cur, key);
  }

  if (opts.repairDrift) {
    for (const [key, ids] of attached) {
      const t = [...state.nodes.values(), ...(state.goneNodes?.values() ?? [])].find((n) => n?.key === key);
      if (!t) continue;
      const p = targetPlan(t);
      for (const d of desired.values()) {
        if (d.armKey && ids.has(d.armKey) && targetOf(d.object.spec.nodeName)?.key === key) {
          p.add.push(d.resourceId!);
        }
      }
    }
  }

  const sorted = [...targets.values()]
    .map((p) => ({
      ...p,
      add: uniqueSorted(p.add),
      remove: uniqueSorted(p.remove),
    }))
    .filter((p) => p.add.length || p.remove.length || p.assign.length || p.release.length)
    .sort((a, b) => a.target.key.localeCompare(b.target.key));
  return { create, update, assignWithoutArm, releaseWithoutArm, targets: sorted, problems };
}

function uniqueSorted(ids: string[]): string[] {
  const m = new Map<string, string>();
  for (const id of ids) if (!m.has(id.toLowerCase())) m.set(id.toLowerCase(), id);
  return [...m.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, v]) => v);
}
