// Internal shape -> wire JSON. Always writes the camelCase spelling (what v1.6.0+ of the original reads),
// and omits empty optional fields so written objects stay as small as users' own.

import type {
  AadPodIdentityObject,
  AzureAssignedIdentity,
  AzureIdentity,
  AzureIdentityBinding,
  AzurePodIdentityException,
  ObjectMeta,
} from "./types.ts";

export type WireObject = Record<string, unknown>;

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
    namespace: m.namespace,
    uid: m.uid,
    resourceVersion: m.resourceVersion,
    generation: m.generation,
    creationTimestamp: m.creationTimestamp,
    deletionTimestamp: m.deletionTimestamp,
    labels: m.labels,
    annotations: m.annotations,
    finalizers: m.finalizers,
  });
}

function identityToWire(o: AzureIdentity): WireObject {
  const s = o.spec;
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    metadata: metadataToWire(o.metadata),
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
    },
  };
}

function bindingToWire(o: AzureIdentityBinding): WireObject {
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    metadata: metadataToWire(o.metadata),
    spec: compact({
      azureIdentity: o.spec.azureIdentity,
      selector: o.spec.selector,
      weight: o.spec.weight || undefined,
    }),
  };
}

function assignedToWire(o: AzureAssignedIdentity): WireObject {
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    metadata: metadataToWire(o.metadata),
    spec: {
      azureIdentityRef: identityToWire(o.spec.azureIdentityRef),
      azureBindingRef: bindingToWire(o.spec.azureBindingRef),
      pod: o.spec.pod,
      podNamespace: o.spec.podNamespace,
      nodename: o.spec.nodeName,
    },
    status: compact({ status: o.status.status, availableReplicas: o.status.availableReplicas || undefined }),
  };
}

function exceptionToWire(o: AzurePodIdentityException): WireObject {
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    metadata: metadataToWire(o.metadata),
    spec: { podLabels: o.spec.podLabels },
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
