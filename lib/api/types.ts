// The four aadpodidentity.k8s.io/v1 kinds in the one internal shape every component works with.
// Objects arrive from the API in either field casing (see normalize.ts); nothing past normalisation ever
// sees the difference.

import type { ObjectMeta as KubeObjectMeta, OwnerReference } from "../kube/types.ts";

export const GROUP = "aadpodidentity.k8s.io";
export const VERSION = "v1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Pod label whose value selects an AzureIdentityBinding (`spec.selector`), exactly as the original. */
export const BINDING_LABEL = "aadpodidbinding";
/** Label on every AzureAssignedIdentity naming the node, so NMI can watch only its own. */
export const NODE_NAME_LABEL = "nodename";
export const ASSIGNED_IDENTITY_FINALIZER = "azureassignedidentity.finalizers.aadpodidentity.k8s.io";
/** `aadpodidentity.k8s.io/Behavior: namespaced` makes one identity namespaced without the global flag. */
export const BEHAVIOR_ANNOTATION = "aadpodidentity.k8s.io/Behavior";
export const BEHAVIOR_NAMESPACED = "namespaced";

export const IdentityType = {
  UserAssignedMSI: 0,
  ServicePrincipal: 1,
  ServicePrincipalCertificate: 2,
} as const;
export type IdentityType = typeof IdentityType[keyof typeof IdentityType];

export const AssignedIdentityState = {
  Created: "Created",
  Assigned: "Assigned",
  Unassigned: "Unassigned",
} as const;
/** "" is what AzureAssignedIdentities written before v1.5 carry; the original treats it like Assigned. */
export type AssignedIdentityState = typeof AssignedIdentityState[keyof typeof AssignedIdentityState] | "";

/** Names an object that owns this one (garbage collection); the original's Go types carry it in ObjectMeta. */
export type { OwnerReference };

/**
 * The parts of Kubernetes ObjectMeta that a read-modify-write must carry back unchanged, with the fields every
 * object of these kinds has made required. managedFields is left out: the apiserver keeps it itself when an
 * update omits it. `generateName` is kept so an update does not drop what the creator wrote.
 */
export interface ObjectMeta extends Omit<KubeObjectMeta, RequiredMeta> {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  finalizers: string[];
}

type RequiredMeta = "name" | "namespace" | "labels" | "annotations" | "finalizers";

/**
 * The original embeds an (always empty) ObjectMeta as `metadata` in every spec and status, which its Go
 * encoder writes as `{"creationTimestamp": null}`. Nothing reads it; it is carried as it was found.
 */
export type EmbeddedObjectMeta = Record<string, unknown>;

/** `status` of AzureIdentity and AzureIdentityBinding: unused by the original, but stored and kept. */
export interface ReplicaStatus {
  availableReplicas: number;
  metadata?: EmbeddedObjectMeta;
}

export interface SecretReference {
  name: string;
  namespace: string;
}

export interface AzureIdentity {
  apiVersion: typeof API_VERSION;
  kind: "AzureIdentity";
  metadata: ObjectMeta;
  spec: {
    metadata?: EmbeddedObjectMeta;
    type: IdentityType;
    /** ARM id of a user-assigned identity (type 0); "" otherwise. */
    resourceID: string;
    clientID: string;
    /** Secret holding the service principal's secret (type 1) or certificate and password (type 2). */
    clientPassword?: SecretReference;
    tenantID: string;
    auxiliaryTenantIDs: string[];
    adResourceID: string;
    adEndpoint: string;
    /** Unused by the original (`*int32`); kept so updates do not drop it. */
    replicas?: number;
  };
  status?: ReplicaStatus;
}

export interface AzureIdentityBinding {
  apiVersion: typeof API_VERSION;
  kind: "AzureIdentityBinding";
  metadata: ObjectMeta;
  spec: {
    metadata?: EmbeddedObjectMeta;
    /** Name of an AzureIdentity in the binding's namespace. */
    azureIdentity: string;
    /** Matches pods whose `aadpodidbinding` label equals this value exactly. */
    selector: string;
    weight: number;
  };
  status?: ReplicaStatus;
}

export interface AzureAssignedIdentity {
  apiVersion: typeof API_VERSION;
  kind: "AzureAssignedIdentity";
  metadata: ObjectMeta;
  spec: {
    metadata?: EmbeddedObjectMeta;
    azureIdentityRef: AzureIdentity;
    azureBindingRef: AzureIdentityBinding;
    pod: string;
    podNamespace: string;
    nodeName: string;
    /** Unused by the original (`*int32`); kept so updates do not drop it. */
    replicas?: number;
  };
  status: {
    metadata?: EmbeddedObjectMeta;
    status: AssignedIdentityState;
    availableReplicas: number;
  };
}

export interface AzurePodIdentityException {
  apiVersion: typeof API_VERSION;
  kind: "AzurePodIdentityException";
  metadata: ObjectMeta;
  spec: {
    metadata?: EmbeddedObjectMeta;
    podLabels: Record<string, string>;
  };
  /** Unused by the original; kept so updates do not drop it. */
  status?: { status: string; metadata?: EmbeddedObjectMeta };
}

export type AadPodIdentityObject =
  | AzureIdentity
  | AzureIdentityBinding
  | AzureAssignedIdentity
  | AzurePodIdentityException;

export type Kind = AadPodIdentityObject["kind"];

/**
 * Reason of the Warning Event NMI writes on an AzureAssignedIdentity when IMDS keeps answering "Identity
 * not found" for it past the propagation window: MIC re-checks that VM / scale set at once.
 */
export const IDENTITY_NOT_FOUND_ON_NODE = "IdentityNotFoundOnNode";
