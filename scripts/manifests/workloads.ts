// MIC's Deployment, NMI's DaemonSet and the default exceptions.
// MIC: 2 replicas with Lease election, read-only root filesystem, no capabilities; root only to read the
// node's root-only azure.json (as the original), non-root when configured from a Secret.
// NMI: hostNetwork (it serves the node's 127.0.0.1:2579 and rewrites the node's nat table), root with only
// NET_ADMIN and NET_RAW (iptables-restore, conntrack), the host's xtables lock so it takes turns with
// kube-proxy and the CNI, probes on a port that serves only /healthz, /readyz and /metrics.
// /metrics is also on the original's ports (MIC 8888, NMI 9090), where its scrape configs look.

import { API_VERSION } from "../../lib/api/types.ts";
import type {
  Container,
  DaemonSet,
  Deployment,
  EnvVar,
  Exception,
  Manifest,
  Namespace,
  Probe,
  SecurityContext,
  Volume,
} from "./k8s.ts";
import { type AzureConfigSource, DEFAULT_AZURE_JSON, type ManifestOptions } from "./options.ts";
import { MIC_LEASE, MIC_SERVICE_ACCOUNT, NMI_SERVICE_ACCOUNT } from "./rbac.ts";

const MIC_PROBE_PORT = 8080;
const NMI_PROBE_PORT = 8085;
/** The original's --prometheus-port defaults. */
const MIC_METRICS_PORT = 8888;
const NMI_METRICS_PORT = 9090;
/** The env vars MIC reads without azure.json and the original's Secret keys they came from. */
const ADMIN_SECRET_KEYS: readonly { env: string; key: string; optional?: boolean }[] = [
  { env: "CLOUD", key: "Cloud" },
  { env: "SUBSCRIPTION_ID", key: "SubscriptionID" },
  { env: "RESOURCE_GROUP", key: "ResourceGroup" },
  { env: "VM_TYPE", key: "VMType" },
  { env: "TENANT_ID", key: "TenantID" },
  { env: "CLIENT_ID", key: "ClientID" },
  { env: "CLIENT_SECRET", key: "ClientSecret" },
  { env: "USE_MSI", key: "UseMSI", optional: true },
  { env: "USER_ASSIGNED_MSI_CLIENT_ID", key: "UserAssignedMSIClientID", optional: true },
];
export const MIC_LABELS = { app: "mic", component: "mic" };
const NMI_LABELS = { app: "nmi", component: "nmi" };
/** The nodes' kubelet settings, read by NMI for its kubenet check. */
const KUBELET_DEFAULTS_DIR = "/etc/default";

function image(o: ManifestOptions, name: "mic" | "nmi"): string {
  return `${o.imageRepository}/${name}:${o.version}`;
}

function probe(path: string, port: number, periodSeconds: number): Probe {
  return { httpGet: { path, port }, periodSeconds, timeoutSeconds: 2, failureThreshold: 3 };
}

const dropAll = { drop: ["ALL"] };

function namespaceObject(o: ManifestOptions): Namespace[] {
  if (o.namespace === "default" || o.namespace === "kube-system") return [];
  return [{ apiVersion: "v1", kind: "Namespace", metadata: { name: o.namespace } }];
}

function azureSource(o: ManifestOptions): AzureConfigSource {
  return o.azureConfig ?? { source: "hostPath", path: DEFAULT_AZURE_JSON };
}

/** How MIC gets its Azure settings: args, env, mounts and volumes, and the user it must run as. */
function micAzureConfig(o: ManifestOptions): {
  args: string[];
  env: EnvVar[];
  volumeMounts: { name: string; mountPath: string; readOnly: boolean }[];
  volumes: Volume[];
  securityContext: SecurityContext;
} {
  const az = azureSource(o);
  if (az.source === "secret") {
    return {
      args: [],
      env: ADMIN_SECRET_KEYS.map(({ env, key, optional }) => ({
        name: env,
        valueFrom: { secretKeyRef: { name: az.secretName, key, ...(optional ? { optional: true } : {}) } },
      })),
      volumeMounts: [],
      volumes: [],
      securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532 },
    };
  }
  return {
    args: [`--cloudconfig=${az.path}`],
    env: [],
    volumeMounts: [{ name: "azure-json", mountPath: az.path, readOnly: true }],
    volumes: [{ name: "azure-json", hostPath: { path: az.path, type: "File" } }],
    // AKS writes azure.json root-only (0600); root reads it as its owner, with no capability.
    securityContext: { runAsNonRoot: false, runAsUser: 0, runAsGroup: 0 },
  };
}

/** The original chart's customCloud: the environment file mounted from the node and named in the env. */
function withCustomCloud(o: ManifestOptions, az: ReturnType<typeof micAzureConfig>): typeof az {
  const path = o.customCloudFile;
  if (path === undefined) return az;
  return {
    ...az,
    env: [...az.env, { name: "AZURE_ENVIRONMENT_FILEPATH", value: path }],
    volumeMounts: [...az.volumeMounts, { name: "custom-env-file", mountPath: path, readOnly: true }],
    volumes: [...az.volumes, { name: "custom-env-file", hostPath: { path, type: "File" } }],
  };
}

export function micDeployment(o: ManifestOptions): Deployment {
  const az = withCustomCloud(o, micAzureConfig(o));
  const container: Container = {
    name: "mic",
    image: image(o, "mic"),
    imagePullPolicy: "IfNotPresent",
    args: [
      ...az.args,
      "--leader-election-namespace=$(MIC_POD_NAMESPACE)",
      `--leader-election-name=${MIC_LEASE}`,
      "--leader-election-instance=$(MIC_POD_NAME)",
      `--http-probe-port=${MIC_PROBE_PORT}`,
      `--prometheus-port=${MIC_METRICS_PORT}`,
      "--log-format=json",
    ],
    env: [
      { name: "MIC_POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
      { name: "MIC_POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      ...az.env,
    ],
    ports: [
      { name: "probes", containerPort: MIC_PROBE_PORT, protocol: "TCP" },
      { name: "metrics", containerPort: MIC_METRICS_PORT, protocol: "TCP" },
    ],
    livenessProbe: probe("/healthz", MIC_PROBE_PORT, 10),
    readinessProbe: probe("/readyz", MIC_PROBE_PORT, 5),
    // From `deno task bench mic` (the README's table of it): the request near the RSS with 200 pods on 20
    // nodes, the limit with room above the RSS with 10,000 pods (the original asked 256Mi / 1024Mi).
    resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "1", memory: "512Mi" } },
    securityContext: {
      ...az.securityContext,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: dropAll,
      seccompProfile: { type: "RuntimeDefault" },
    },
    ...(az.volumeMounts.length ? { volumeMounts: az.volumeMounts } : {}),
  };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "mic", namespace: o.namespace, labels: { ...MIC_LABELS } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { ...MIC_LABELS } },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 1 } },
      template: {
        metadata: { labels: { ...MIC_LABELS } },
        spec: {
          serviceAccountName: MIC_SERVICE_ACCOUNT,
          securityContext: { seccompProfile: { type: "RuntimeDefault" } },
          containers: [container],
          ...(az.volumes.length ? { volumes: az.volumes } : {}),
          nodeSelector: { "kubernetes.io/os": "linux" },
          // Two replicas on one node would fail over together.
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [{
                weight: 100,
                podAffinityTerm: {
                  labelSelector: { matchLabels: { ...MIC_LABELS } },
                  topologyKey: "kubernetes.io/hostname",
                },
              }],
            },
          },
        },
      },
    },
  };
}

export function nmiDaemonSet(o: ManifestOptions): DaemonSet {
  const args = [
    "--node=$(NODE_NAME)",
    `--http-probe-port=${NMI_PROBE_PORT}`,
    // Both ports serve nothing but /healthz, /readyz and /metrics; 9090 is where the original's scrapes look.
    `--prometheus-port=${NMI_METRICS_PORT}`,
    "--metadata-header-required=true",
    `--MICNamespace=${o.namespace}`,
    `--kubelet-config=${KUBELET_DEFAULTS_DIR}/kubelet`,
    "--log-format=json",
  ];
  if (o.mode === "managed") args.push("--operation-mode=managed", "--forceNamespaced=true");
  if (o.removeNodeTaint) args.push(`--remove-node-taint=${o.removeNodeTaint}`);
  const container: Container = {
    name: "nmi",
    image: image(o, "nmi"),
    imagePullPolicy: "IfNotPresent",
    args,
    env: [{ name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } }],
    ports: [
      { name: "probes", containerPort: NMI_PROBE_PORT, protocol: "TCP" },
      { name: "metrics", containerPort: NMI_METRICS_PORT, protocol: "TCP" },
    ],
    livenessProbe: probe("/healthz", NMI_PROBE_PORT, 10),
    readinessProbe: probe("/readyz", NMI_PROBE_PORT, 5),
    // From `deno task bench nmi` (README "NMI's cost"): 73-80 MiB idle with 501 pods on the node, 83-91 MiB
    // right after ~100k token requests; the limit leaves room for a node with thousands of pods and identities.
    resources: { requests: { cpu: "100m", memory: "96Mi" }, limits: { cpu: "500m", memory: "256Mi" } },
    securityContext: {
      runAsUser: 0,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ["ALL"], add: ["NET_ADMIN", "NET_RAW"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    volumeMounts: [
      { name: "xtables-lock", mountPath: "/run/xtables.lock" },
      { name: "kubelet-defaults", mountPath: KUBELET_DEFAULTS_DIR, readOnly: true },
    ],
  };
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: "nmi", namespace: o.namespace, labels: { ...NMI_LABELS } },
    spec: {
      selector: { matchLabels: { ...NMI_LABELS } },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: { labels: { ...NMI_LABELS } },
        spec: {
          serviceAccountName: NMI_SERVICE_ACCOUNT,
          hostNetwork: true,
          dnsPolicy: "ClusterFirstWithHostNet",
          containers: [container],
          volumes: [
            { name: "xtables-lock", hostPath: { path: "/run/xtables.lock", type: "FileOrCreate" } },
            { name: "kubelet-defaults", hostPath: { path: KUBELET_DEFAULTS_DIR, type: "DirectoryOrCreate" } },
          ],
          nodeSelector: { "kubernetes.io/os": "linux" },
          // Every node needs NMI, tainted or not: a pod on a node without it would reach IMDS directly.
          tolerations: [{ operator: "Exists" }],
          terminationGracePeriodSeconds: 10,
        },
      },
    },
  };
}

/**
 * The original's shipped exceptions, less its mic-exception: NMI recognises MIC's pods by MIC's service
 * account (--mic-service-account), and an exception on MIC's labels let any pod labelled like MIC in its
 * namespace pose as MIC (issue 19 item 3). The AKS add-ons in kube-system stay.
 */
export function defaultExceptions(_o: ManifestOptions): Exception[] {
  const out: Exception[] = [];
  out.push({
    apiVersion: API_VERSION,
    kind: "AzurePodIdentityException",
    metadata: { name: "aks-addon-exception", namespace: "kube-system" },
    spec: { podLabels: { "kubernetes.azure.com/managedby": "aks" } },
  });
  return out;
}

/** Every object of one installation, in apply order (namespace, RBAC, workloads, exceptions). */
export function installation(o: ManifestOptions, rbac: { mic: Manifest[]; nmi: Manifest[] }): Manifest[] {
  return [
    ...namespaceObject(o),
    ...(o.mode === "standard" ? rbac.mic : []),
    ...rbac.nmi,
    ...(o.mode === "standard" ? [micDeployment(o)] : []),
    nmiDaemonSet(o),
    ...defaultExceptions(o),
  ];
}
