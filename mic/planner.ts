// MIC's decision (pure, no I/O): observed state -> the AzureAssignedIdentities that should exist and, per
// VM or scale set, the identity ids to add and to remove. The original's rules (docs/upstream.md,
// "## MIC assignment algorithm"): an id leaves a VM / scale set only when no pod on it still uses it and it
// is not immutable; service principals need no ARM change.
// Fixed on purpose: ids compare case-insensitively, order is deterministic, two identities of the same name
// in different namespaces no longer collide, and an identity only counts as "on the VM" once an
// AzureAssignedIdentity says Assigned, so nothing is re-PATCHed while it is already there.
// Three phases, each a named step: what should exist (desired.ts), which ids each VM / scale set holds
// and needs, and the comparison with what exists (PlanBuilder).

import { compareStrings } from "../lib/compare.ts";
import {
  ASSIGNED_IDENTITY_FINALIZER,
  AssignedIdentityState,
  type AzureAssignedIdentity,
} from "../lib/api/types.ts";
import type { ComputeTarget } from "../lib/azure/provider_id.ts";
import {
  armId,
  type Desired,
  desiredAssignments,
  fingerprint,
  isAssigned,
  validateCatalog,
  vouchKey,
} from "./desired.ts";
import {
  type AssignedUpdate,
  keyOf,
  type ObservedState,
  type Plan,
  type PlannerOptions,
  type Problem,
  ref,
  type TargetPlan,
} from "./plan_types.ts";

/** Per VM / scale set key: a set of strings. */
type PerTarget = Map<string, Set<string>>;

function addTo(m: PerTarget, targetKey: string, value: string): void {
  let set = m.get(targetKey);
  if (!set) m.set(targetKey, set = new Set());
  set.add(value);
}

/** Phase 2a: ids in use per VM / scale set: every desired user-assigned identity on any node of it. */
function idsInUse(desired: ReadonlyMap<string, Desired>, targetOf: TargetOf): PerTarget {
  const inUse: PerTarget = new Map();
  for (const d of desired.values()) {
    const t = targetOf(d.object.spec.nodeName);
    if (t && d.armKey) addTo(inUse, t.key, d.armKey);
  }
  return inUse;
}

/**
 * Phase 2b: what Assigned objects say is on each VM / scale set, as `vouchKey`s. MIC only detaches ids no
 * desired object uses, so a new pod needing one of these is Assigned without asking ARM (the original
 * spent a GET on it).
 */
function idsVouchedFor(
  assigned: readonly AzureAssignedIdentity[],
  targetOf: TargetOf,
  fed: boolean,
): PerTarget {
  const vouched: PerTarget = new Map();
  for (const a of assigned) {
    const identity = a.spec.azureIdentityRef;
    const id = armId(identity, fed);
    const t = targetOf(a.spec.nodeName);
    if (!id || !t || !isAssigned(a) || a.metadata.deletionTimestamp) continue;
    addTo(vouched, t.key, vouchKey(id, identity.spec.clientID));
  }
  return vouched;
}

type TargetOf = (node: string) => ComputeTarget | undefined;

/** Phase 3: the comparison of desired and existing objects, collected into a Plan. */
class PlanBuilder {
  readonly create: AzureAssignedIdentity[] = [];
  readonly update: AssignedUpdate[] = [];
  readonly assignWithoutArm: Plan["assignWithoutArm"] = [];
  readonly releaseWithoutArm: Plan["releaseWithoutArm"] = [];
  readonly #targets = new Map<string, TargetPlan>();
  readonly #immutable: Set<string>;

  constructor(
    readonly problems: Problem[],
    private readonly targetOf: TargetOf,
    private readonly inUse: PerTarget,
    private readonly vouched: PerTarget,
    private readonly opts: PlannerOptions,
  ) {
    this.#immutable = new Set(opts.immutableClientIds.map((c) => c.trim().toLowerCase()).filter(Boolean));
  }

  targetPlan(t: ComputeTarget): TargetPlan {
    let p = this.#targets.get(t.key);
    if (!p) this.#targets.set(t.key, p = { target: t, add: [], remove: [], assign: [], release: [] });
    return p;
  }

  #armId(a: AzureAssignedIdentity): string | undefined {
    return armId(a.spec.azureIdentityRef, this.opts.federatedByDefault ?? false);
  }

  /** Whether `a`'s id may leave its VM / scale set: it was attached for it, and nothing else needs it. */
  #detachable(a: AzureAssignedIdentity): { resourceId: string; target: ComputeTarget } | undefined {
    const resourceId = this.#armId(a);
    const target = this.targetOf(a.spec.nodeName);
    if (!resourceId || !target || !isAssigned(a)) return undefined;
    if (this.inUse.get(target.key)?.has(resourceId.toLowerCase())) return undefined;
    if (this.#immutable.has(a.spec.azureIdentityRef.spec.clientID.toLowerCase())) return undefined;
    return { resourceId, target };
  }

  /** An object that now describes another assignment: its old id leaves the old machine if unused. */
  releaseOldAttachment(a: AzureAssignedIdentity): void {
    const d = this.#detachable(a);
    if (d) this.targetPlan(d.target).remove.push(d.resourceId);
  }

  /** An object no longer wanted: deleted, after its id is detached when nothing else uses it. */
  releaseObject(a: AzureAssignedIdentity, key: string): void {
    const resourceId = this.#armId(a);
    const t = this.targetOf(a.spec.nodeName);
    if (!resourceId || !t || !isAssigned(a)) {
      // Nothing was attached on our account (service principal, never Assigned) or the machine is gone.
      this.releaseWithoutArm.push(t ? { key, targetKey: t.key } : { key });
      return;
    }
    const detach = !!this.#detachable(a);
    const p = this.targetPlan(t);
    if (detach) p.remove.push(resourceId);
    p.release.push({ key, resourceId, detach });
  }

  /** A desired object whose identity is not known to be attached to its node's machine yet. */
  needAssign(d: Desired): void {
    if (!d.resourceId) {
      this.assignWithoutArm.push({ key: d.key });
      return;
    }
    const spec = d.object.spec;
    const t = this.targetOf(spec.nodeName);
    if (!t) {
      this.problems.push({
        object: ref(spec.azureBindingRef),
        reason: "NodeNotOnAzure",
        message: `node ${spec.nodeName} has no Azure VM or scale-set providerID; identity ` +
          `${keyOf(spec.azureIdentityRef)} cannot be assigned to pod ${spec.podNamespace}/${spec.pod}`,
      });
      return;
    }
    const clientId = spec.azureIdentityRef.spec.clientID;
    if (this.vouched.get(t.key)?.has(vouchKey(d.resourceId, clientId))) {
      // `targetKey`: a job in flight on that machine may be detaching it; the executor waits for it.
      this.assignWithoutArm.push({ key: d.key, targetKey: t.key });
      return;
    }
    const p = this.targetPlan(t);
    p.add.push(d.resourceId);
    p.assign.push({ key: d.key, resourceId: d.resourceId, clientId });
  }

  /** A desired object that exists with other content: updated in place, re-assigned if it moved. */
  changed(cur: AzureAssignedIdentity, d: Desired): void {
    const oldTarget = this.targetOf(cur.spec.nodeName);
    const newTarget = this.targetOf(d.object.spec.nodeName);
    const sameAttachment = isAssigned(cur) && this.#armId(cur)?.toLowerCase() === d.armKey &&
      oldTarget?.key === newTarget?.key;
    const next: AzureAssignedIdentity = {
      ...d.object,
      metadata: { ...cur.metadata, labels: { ...cur.metadata.labels, ...d.object.metadata.labels } },
      status: sameAttachment ? cur.status : { status: AssignedIdentityState.Created, availableReplicas: 1 },
    };
    this.update.push({ current: cur, next });
    if (!sameAttachment) {
      this.releaseOldAttachment(cur);
      this.needAssign(d);
    }
  }

  /**
   * Drift repair: every vouched-for id still desired on its machine is asked of ARM again (on the machines
   * in `only`, when given).
   */
  repairDrift(desired: ReadonlyMap<string, Desired>, only?: ReadonlySet<string>): void {
    for (const d of desired.values()) {
      const t = d.armKey ? this.targetOf(d.object.spec.nodeName) : undefined;
      if (!t || !this.vouched.has(t.key) || (only && !only.has(t.key))) continue;
      const key = vouchKey(d.resourceId!, d.object.spec.azureIdentityRef.spec.clientID);
      if (this.vouched.get(t.key)!.has(key)) this.targetPlan(t).add.push(d.resourceId!);
    }
  }

  build(): Plan {
    const targets = [...this.#targets.values()]
      .map((p) => ({ ...p, add: uniqueSorted(p.add), remove: uniqueSorted(p.remove) }))
      .filter((p) => p.add.length || p.remove.length || p.assign.length || p.release.length)
      .sort((a, b) => compareStrings(a.target.key, b.target.key));
    const { create, update, assignWithoutArm, releaseWithoutArm, problems } = this;
    return { create, update, assignWithoutArm, releaseWithoutArm, targets, problems };
  }
}

/** Phase 3: each desired object against the existing one, then existing objects nothing wants. */
function compare(
  b: PlanBuilder,
  desired: ReadonlyMap<string, Desired>,
  assigned: readonly AzureAssignedIdentity[],
): void {
  const existing = new Map(assigned.map((a) => [keyOf(a), a]));
  for (const d of desired.values()) {
    const cur = existing.get(d.key);
    if (cur?.metadata.deletionTimestamp) continue; // being deleted: recreated once the delete completes
    if (!cur) {
      b.create.push(d.object);
      b.needAssign(d);
    } else if (fingerprint(cur) !== fingerprint(d.object)) {
      b.changed(cur, d);
    } else if (!isAssigned(cur)) {
      b.needAssign(d);
    }
  }
  for (const [key, cur] of existing) {
    if (desired.has(key)) continue;
    if (cur.metadata.deletionTimestamp && !cur.metadata.finalizers.includes(ASSIGNED_IDENTITY_FINALIZER)) {
      continue; // someone else's finalizer holds it; nothing of ours to do
    }
    b.releaseObject(cur, key);
  }
}

export function plan(state: ObservedState, opts: PlannerOptions): Plan {
  const problems: Problem[] = [];
  const federatedByDefault = opts.federatedByDefault ?? false;
  const { catalog, usable } = validateCatalog(state.identities, state.bindings, problems);
  const targetOf: TargetOf = (node) => state.nodes.get(node) ?? state.goneNodes?.get(node);
  const desired = desiredAssignments(state, catalog, usable, {
    forceNamespaced: opts.forceNamespaced,
    federatedByDefault,
  });
  const inUse = idsInUse(desired, targetOf);
  const vouched = idsVouchedFor(state.assigned, targetOf, federatedByDefault);
  const builder = new PlanBuilder(problems, targetOf, inUse, vouched, opts);
  compare(builder, desired, state.assigned);
  if (opts.repairDrift) builder.repairDrift(desired);
  else if (opts.recheckTargets?.size) builder.repairDrift(desired, opts.recheckTargets);
  return builder.build();
}

function uniqueSorted(ids: string[]): string[] {
  const m = new Map<string, string>();
  for (const id of ids) if (!m.has(id.toLowerCase())) m.set(id.toLowerCase(), id);
  return [...m.entries()].sort(([a], [b]) => compareStrings(a, b)).map(([, v]) => v);
}
