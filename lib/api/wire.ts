// Internal shape -> wire JSON. Always writes the camelCase spelling (what v1.6.0+ of the original reads),
// and omits empty optional fields so written objects stay as small as users' own.

import type {
  AadPodIdentityObject,
  AzureAssignedIdentity,
  AzureIdentity,
  AzureIdentityBinding,
  AzurePodIdentityException,
  EmbeddedObjectMeta,
  ObjectMeta,
  ReplicaStatus,
} from "./types.ts";

type WireObject = Record<string, unknown>;

function compact(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(obj).filter(([, v]) =>
      v !== undefined && v !== "" &&
      !(Array.isArray(v) && v.length === 0) &&
      !(typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0)
    ),
  );
}

function metadataToWire(m: ObjectMeta): WireObject {
  return compact({
    name: m.name,
    generateName: m.generateName,
    namespace: m.namespace,
    uid: m.uid,
    resourceVersion: m.resourceVersion,
    generation: m.generation,
    creationTimestamp: m.creationTimestamp,
    deletionTimestamp: m.deletionTimestamp,
    deletionGracePeriodSeconds: m.deletionGracePeriodSeconds,
    labels: m.labels,
    annotations: m.annotations,
    finalizers: m.finalizers,
    ownerReferences: m.ownerReferences?.map((o) => ({ ...o })),
  });
}

/** apiVersion, kind and metadata, the part every kind writes alike. */
function envelope(o: AadPodIdentityObject): WireObject {
  return { apiVersion: o.apiVersion, kind: o.kind, metadata: metadataToWire(o.metadata) };
}

/** Present only when the object had a status; availableReplicas is written even when 0, as Go does. */
function replicaStatusToWire(status: ReplicaStatus | undefined): WireObject {
  return status
    ? { status: { availableReplicas: status.availableReplicas, ...embeddedToWire(status.metadata) } }
    : {};
}

/** The original's unused embedded ObjectMeta, written back as it was read. */
function embeddedToWire(metadata: EmbeddedObjectMeta | undefined): WireObject {
  return metadata === undefined ? {} : { metadata: structuredClone(metadata) };
}

/** The unused `replicas *int32`: written when set, including 0. */
function replicasToWire(replicas: number | undefined): WireObject {
  return replicas === undefined ? {} : { replicas };
}

function identityToWire(o: AzureIdentity): WireObject {
  const s = o.spec;
  return {
    ...envelope(o),
    spec: {
      type: s.type,
      ...compact({
        resourceID: s.resourceID,
        clientID: s.clientID,
        clientPassword: s.clientPassword,
        tenantID: s.tenantID,
        auxiliaryTenantIDs: s.auxiliaryTenantIDs,
        adResourceID: s.adResourceID,
        adEndpoint: s.adEndpoint,
      }),
      ...replicasToWire(s.replicas),
      ...embeddedToWire(s.metadata),
    },
    ...replicaStatusToWire(o.status),
  };
}

function bindingToWire(o: AzureIdentityBinding): WireObject {
  return {
    ...envelope(o),
    spec: {
      ...compact({
        azureIdentity: o.spec.azureIdentity,
        selector: o.spec.selector,
        weight: o.spec.weight || undefined,
      }),
      ...embeddedToWire(o.spec.metadata),
    },
    ...replicaStatusToWire(o.status),
  };
}

function assignedToWire(o: AzureAssignedIdentity): WireObject {
  return {
    ...envelope(o),
    spec: {
      azureIdentityRef: identityToWire(o.spec.azureIdentityRef),
      azureBindingRef: bindingToWire(o.spec.azureBindingRef),
      pod: o.spec.pod,
      podNamespace: o.spec.podNamespace,
      nodename: o.spec.nodeName,
      ...replicasToWire(o.spec.replicas),
      ...embeddedToWire(o.spec.metadata),
    },
    status: {
      ...compact({ status: o.status.status, availableReplicas: o.status.availableReplicas || undefined }),
      ...embeddedToWire(o.status.metadata),
    },
  };
}

function exceptionToWire(o: AzurePodIdentityException): WireObject {
  return {
    ...envelope(o),
    spec: { podLabels: o.spec.podLabels, ...embeddedToWire(o.spec.metadata) },
    ...(o.status ? { status: { status: o.status.status, ...embeddedToWire(o.status.metadata) } } : {}),
  };
}

export function toWire(o: AadPodIdentityObject): WireObject {
  switch (o.kind) {
    case "AzureIdentity":
      return identityToWire(o);
    case "AzureIdentityBinding":
      return bindingToWire(o);
    case "AzureAssignedIdentity":
      return assignedToWire(o);
    case "AzurePodIdentityException":
      return exceptionToWire(o);
  }
}
