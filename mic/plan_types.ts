// The planner's vocabulary, shared by the cache that builds its input, the planner and the controller that
// carries out its output: the observed state, the plan, and the references Warning events are written on.

import type { AzureAssignedIdentity, AzureIdentity, AzureIdentityBinding } from "../lib/api/types.ts";
import type { ComputeTarget } from "../lib/azure/provider_id.ts";

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
  /** Drift repair on these VMs / scale sets only (keys): NMI reported an identity missing there. */
  recheckTargets?: ReadonlySet<string>;
  /** Identities without the federated annotation are federated (never attached; no ARM call). */
  federatedByDefault?: boolean;
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
  /**
   * AzureAssignedIdentities to mark Assigned once their id is attached and ARM reports `clientId` for it
   * (an AzureIdentity naming another identity's client id is refused).
   */
  assign: { key: string; resourceId: string; clientId: string }[];
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
