// Least-privilege RBAC for MIC and NMI: each rule is there because the code makes that call (the comment
// says which). Compared with the original (docs/upstream.md, "## RBAC and pod security"): MIC no longer
// has `*` on CRDs and AzureAssignedIdentities beyond CRUD, nor endpoints; NMI no longer reads every secret,
// nor the CRD definitions, and cannot write anything but events (and its own node's taint, when asked to
// remove one).

import { GROUP } from "../../lib/api/types.ts";
import type {
  ClusterRole,
  ClusterRoleBinding,
  Manifest,
  PolicyRule,
  Role,
  RoleBinding,
  ServiceAccount,
} from "./k8s.ts";
import type { ManifestOptions } from "./options.ts";

export const MIC_SERVICE_ACCOUNT = "aad-pod-id-mic-service-account";
export const NMI_SERVICE_ACCOUNT = "aad-pod-id-nmi-service-account";
export const MIC_ROLE = "aad-pod-id-mic-role";
export const NMI_ROLE = "aad-pod-id-nmi-role";
/** MIC's Lease (its --leader-election-name default) and the type-upgrade ConfigMap. */
export const MIC_LEASE = "aad-pod-identity-mic";
const TYPE_UPGRADE_CONFIGMAP = "aad-pod-identity-config";

const RBAC = "rbac.authorization.k8s.io/v1" as const;
const READ = ["get", "list", "watch"];

const rule = (
  apiGroups: string[],
  resources: string[],
  verbs: string[],
  resourceNames?: string[],
): PolicyRule => ({
  apiGroups,
  resources,
  verbs,
  ...(resourceNames ? { resourceNames } : {}),
});

function serviceAccount(name: string, namespace: string): ServiceAccount {
  return { apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace, labels: labels() } };
}

function labels(): Record<string, string> {
  return { "app.kubernetes.io/part-of": "aad-pod-identity" };
}

// The original's ClusterRoleBinding names, so an upgrade takes them over instead of leaving a second one.
const MIC_BINDING = "aad-pod-id-mic-binding";
const NMI_BINDING = "aad-pod-id-nmi-binding";

function clusterBinding(name: string, role: string, sa: string, namespace: string): ClusterRoleBinding {
  return {
    apiVersion: RBAC,
    kind: "ClusterRoleBinding",
    metadata: { name, labels: labels() },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
    subjects: [{ kind: "ServiceAccount", name: sa, namespace }],
  };
}

function roleBinding(
  name: string,
  role: string,
  roleNamespace: string,
  sa: string,
  saNamespace: string,
): RoleBinding {
  return {
    apiVersion: RBAC,
    kind: "RoleBinding",
    metadata: { name, namespace: roleNamespace, labels: labels() },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role },
    subjects: [{ kind: "ServiceAccount", name: sa, namespace: saNamespace }],
  };
}

/** MIC: watches, AzureAssignedIdentity CRUD, the type upgrade, events, and its Lease and ConfigMap. */
export function micRbac(o: ManifestOptions): Manifest[] {
  const role: ClusterRole = {
    apiVersion: RBAC,
    kind: "ClusterRole",
    metadata: { name: MIC_ROLE, labels: labels() },
    rules: [
      // observed_cache.ts: watch caches of bound pods and of nodes (providerID -> VM / scale set).
      rule([""], ["pods", "nodes"], ["list", "watch"]),
      // observed_cache.ts watches them; type_upgrade.ts rewrites PascalCase objects in camelCase (update).
      rule([GROUP], ["azureidentities", "azureidentitybindings"], [...READ, "update"]),
      // type_upgrade.ts only: lists them once and rewrites legacy ones.
      rule([GROUP], ["azurepodidentityexceptions"], ["list", "update"]),
      // assigned_writer.ts: MIC owns these objects.
      rule([GROUP], ["azureassignedidentities"], [...READ, "create", "update", "patch", "delete"]),
      // lib/kube/events.ts: Events on bindings, in their namespaces; nmi_signals.ts watches NMI's
      // IdentityNotFoundOnNode Events (a field selector; Events carry no secrets).
      rule([""], ["events"], ["create", "patch", "list", "watch"]),
    ],
  };
  const own: Role = {
    apiVersion: RBAC,
    kind: "Role",
    metadata: { name: MIC_ROLE, namespace: o.namespace, labels: labels() },
    rules: [
      // Creating cannot be limited by name (the name is in the body); reading and writing can.
      rule(["coordination.k8s.io"], ["leases"], ["create"]),
      rule(["coordination.k8s.io"], ["leases"], ["get", "update"], [MIC_LEASE]),
      rule([""], ["configmaps"], ["create"]),
      rule([""], ["configmaps"], ["get", "update"], [TYPE_UPGRADE_CONFIGMAP]),
    ],
  };
  return [
    serviceAccount(MIC_SERVICE_ACCOUNT, o.namespace),
    role,
    clusterBinding(MIC_BINDING, MIC_ROLE, MIC_SERVICE_ACCOUNT, o.namespace),
    own,
    roleBinding(`${MIC_ROLE}-binding`, MIC_ROLE, o.namespace, MIC_SERVICE_ACCOUNT, o.namespace),
  ];
}

/** NMI: reads only; secrets only those named; its node only when it removes a start-up taint. */
export function nmiRbac(o: ManifestOptions): Manifest[] {
  const rules: PolicyRule[] = [
    // caches.ts: this node's pods (field selector spec.nodeName); caller.ts: one list by status.podIP on
    // a cache miss and a get by name.
    rule([""], ["pods"], READ),
    rule([GROUP], ["azureidentities", "azureidentitybindings", "azurepodidentityexceptions"], READ),
  ];
  // caches.ts: this node's assignments (label nodename); managed mode serves bindings directly.
  if (o.mode === "standard") rules.push(rule([GROUP], ["azureassignedidentities"], READ));
  // node_taint.ts: --remove-node-taint reads the node and patches its taints.
  if (o.removeNodeTaint) rules.push(rule([""], ["nodes"], ["get", "patch"]));
  // The original chart's rbac.allowAccessToSecrets: any secret a service-principal identity names.
  if (o.nmiReadsAllSecrets) rules.push(rule([""], ["secrets"], READ));
  rules.push(rule([""], ["events"], ["create", "patch"]));
  // federated.ts: TokenRequests for the pods it serves federated identities to (the admission policy
  // of federation_policy.ts narrows them to pod-bound exchange tokens of at most an hour).
  if (o.federated) rules.push(rule([""], ["serviceaccounts/token"], ["create"]));
  const out: Manifest[] = [
    serviceAccount(NMI_SERVICE_ACCOUNT, o.namespace),
    { apiVersion: RBAC, kind: "ClusterRole", metadata: { name: NMI_ROLE, labels: labels() }, rules },
    clusterBinding(NMI_BINDING, NMI_ROLE, NMI_SERVICE_ACCOUNT, o.namespace),
  ];
  // caches.ts: one watch per secret a service-principal identity names (field selector metadata.name),
  // which RBAC can limit by resourceNames. One Role per namespace holding such secrets.
  const byNamespace = new Map<string, string[]>();
  for (const s of o.servicePrincipalSecrets) {
    byNamespace.set(s.namespace, [...(byNamespace.get(s.namespace) ?? []), s.name]);
  }
  for (const [namespace, names] of [...byNamespace].sort(([a], [b]) => a.localeCompare(b))) {
    const name = `${NMI_ROLE}-secrets`;
    out.push({
      apiVersion: RBAC,
      kind: "Role",
      metadata: { name, namespace, labels: labels() },
      rules: [rule([""], ["secrets"], READ, [...new Set(names)].sort())],
    });
    out.push(roleBinding(`${NMI_ROLE}-secrets-binding`, name, namespace, NMI_SERVICE_ACCOUNT, o.namespace));
  }
  return out;
}
