// Small builders for NMI's pure tests: CRD objects through the real normaliser, so tests see exactly what
// the watch caches hold.

import {
  normalizeAzureAssignedIdentity,
  normalizeAzureIdentity,
  normalizeAzureIdentityBinding,
  normalizeAzurePodIdentityException,
} from "../../../lib/api/normalize.ts";
import type {
  AzureAssignedIdentity,
  AzureIdentity,
  AzureIdentityBinding,
  AzurePodIdentityException,
} from "../../../lib/api/types.ts";

let n = 0;
const guid = () => `00000000-0000-4000-8000-${(++n).toString(16).padStart(12, "0")}`;

export function identity(
  namespace: string,
  name: string,
  spec: Record<string, unknown> = {},
  annotations: Record<string, string> = {},
): AzureIdentity {
  return normalizeAzureIdentity({
    apiVersion: "aadpodidentity.k8s.io/v1",
    kind: "AzureIdentity",
    metadata: { namespace, name, uid: `uid-${name}`, annotations },
    spec: {
      type: 0,
      clientID: guid(),
      resourceID:
        `/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`,
      ...spec,
    },
  });
}

export function binding(
  namespace: string,
  name: string,
  azureIdentity: string,
  selector: string,
  weight = 0,
): AzureIdentityBinding {
  return normalizeAzureIdentityBinding({
    apiVersion: "aadpodidentity.k8s.io/v1",
    kind: "AzureIdentityBinding",
    metadata: { namespace, name },
    spec: { azureIdentity, selector, weight },
  });
}

export function assigned(
  id: AzureIdentity,
  b: AzureIdentityBinding,
  pod: { name: string; namespace: string },
  node: string,
  status: string,
): AzureAssignedIdentity {
  return normalizeAzureAssignedIdentity({
    apiVersion: "aadpodidentity.k8s.io/v1",
    kind: "AzureAssignedIdentity",
    metadata: {
      namespace: "default",
      name: `${pod.name}-${pod.namespace}-${id.metadata.name}`,
      labels: { nodename: node },
    },
    spec: {
      azureIdentityRef: { metadata: id.metadata, spec: id.spec },
      azureBindingRef: { metadata: b.metadata, spec: b.spec },
      pod: pod.name,
      podNamespace: pod.namespace,
      nodename: node,
    },
    status: { status },
  });
}

export function exception(namespace: string, podLabels: Record<string, string>): AzurePodIdentityException {
  return normalizeAzurePodIdentityException({
    apiVersion: "aadpodidentity.k8s.io/v1",
    kind: "AzurePodIdentityException",
    metadata: { namespace, name: `ex-${++n}` },
    spec: { podLabels },
  });
}
