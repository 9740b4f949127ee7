// Which API resource a request names, and the URL paths it lives at: core kinds and our CRDs share one URL
// scheme, so a ResourceType descriptor is all a caller names.

export interface ResourceType {
  /** "" for the core group. */
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
  kind: string;
}

function core(plural: string, kind: string, namespaced: boolean): ResourceType {
  return { group: "", version: "v1", plural, kind, namespaced };
}
function aad(plural: string, kind: string): ResourceType {
  return { group: "aadpodidentity.k8s.io", version: "v1", plural, kind, namespaced: true };
}

export const Resources = {
  pods: core("pods", "Pod", true),
  nodes: core("nodes", "Node", false),
  namespaces: core("namespaces", "Namespace", false),
  configMaps: core("configmaps", "ConfigMap", true),
  secrets: core("secrets", "Secret", true),
  events: core("events", "Event", true),
  serviceAccounts: core("serviceaccounts", "ServiceAccount", true),
  leases: { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true },
  customResourceDefinitions: {
    group: "apiextensions.k8s.io",
    version: "v1",
    plural: "customresourcedefinitions",
    kind: "CustomResourceDefinition",
    namespaced: false,
  },
  azureIdentities: aad("azureidentities", "AzureIdentity"),
  azureIdentityBindings: aad("azureidentitybindings", "AzureIdentityBinding"),
  azureAssignedIdentities: aad("azureassignedidentities", "AzureAssignedIdentity"),
  azurePodIdentityExceptions: aad("azurepodidentityexceptions", "AzurePodIdentityException"),
} as const satisfies Record<string, ResourceType>;

/** `pods`, `leases.coordination.k8s.io`: how kubectl and the apiserver name a resource in messages. */
export function resourceName(rt: ResourceType): string {
  return rt.group ? `${rt.plural}.${rt.group}` : rt.plural;
}

export function apiVersionOf(rt: ResourceType): string {
  return rt.group ? `${rt.group}/${rt.version}` : rt.version;
}

/** The collection URL path: `/api/v1/namespaces/ns/pods`, `/apis/g/v/plural`. */
export function collectionPath(rt: ResourceType, namespace?: string): string {
  const base = rt.group ? `/apis/${rt.group}/${rt.version}` : `/api/${rt.version}`;
  if (rt.namespaced && namespace) return `${base}/namespaces/${encodeURIComponent(namespace)}/${rt.plural}`;
  if (!rt.namespaced && namespace) {
    throw new Error(`${resourceName(rt)} is cluster-scoped; no namespace allowed`);
  }
  return `${base}/${rt.plural}`;
}

export function objectPath(rt: ResourceType, name: string, namespace?: string, subresource?: string): string {
  if (rt.namespaced && !namespace) throw new Error(`${resourceName(rt)} ${name}: namespace required`);
  const p = `${collectionPath(rt, namespace)}/${encodeURIComponent(name)}`;
  return subresource ? `${p}/${subresource}` : p;
}
