// The few Kubernetes object shapes the manifests are built from, typed so that a misspelt field is a type
// error rather than a field the apiserver silently prunes. Only what deploy/ uses is declared.

interface Meta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

interface Subject {
  kind: "ServiceAccount";
  name: string;
  namespace: string;
}

interface RoleRef {
  apiGroup: "rbac.authorization.k8s.io";
  kind: "ClusterRole" | "Role";
  name: string;
}

export type Namespace = { apiVersion: "v1"; kind: "Namespace"; metadata: Meta };
export type ServiceAccount = { apiVersion: "v1"; kind: "ServiceAccount"; metadata: Meta };
export type ClusterRole = {
  apiVersion: "rbac.authorization.k8s.io/v1";
  kind: "ClusterRole";
  metadata: Meta;
  rules: PolicyRule[];
};
export type Role = {
  apiVersion: "rbac.authorization.k8s.io/v1";
  kind: "Role";
  metadata: Meta;
  rules: PolicyRule[];
};
export type ClusterRoleBinding = {
  apiVersion: "rbac.authorization.k8s.io/v1";
  kind: "ClusterRoleBinding";
  metadata: Meta;
  roleRef: RoleRef;
  subjects: Subject[];
};
export type RoleBinding = {
  apiVersion: "rbac.authorization.k8s.io/v1";
  kind: "RoleBinding";
  metadata: Meta;
  roleRef: RoleRef;
  subjects: Subject[];
};

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?:
    | { fieldRef: { fieldPath: string } }
    | { secretKeyRef: { name: string; key: string; optional?: boolean } };
}

export interface Probe {
  httpGet: { path: string; port: number; host?: string };
  initialDelaySeconds?: number;
  periodSeconds: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
}

export interface SecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: "RuntimeDefault" };
}

export interface Container {
  name: string;
  image: string;
  imagePullPolicy?: "IfNotPresent" | "Always";
  args: string[];
  env?: EnvVar[];
  ports?: { name: string; containerPort: number; protocol: "TCP" }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources: { requests: { cpu: string; memory: string }; limits: { cpu?: string; memory: string } };
  securityContext: SecurityContext;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

export interface Volume {
  name: string;
  hostPath?: { path: string; type: "File" | "FileOrCreate" | "Directory" | "DirectoryOrCreate" };
  emptyDir?: { medium?: "Memory"; sizeLimit?: string };
}

interface PodSpec {
  serviceAccountName: string;
  automountServiceAccountToken?: boolean;
  hostNetwork?: boolean;
  dnsPolicy?: "ClusterFirstWithHostNet" | "ClusterFirst";
  securityContext?: { runAsNonRoot?: boolean; seccompProfile?: { type: "RuntimeDefault" } };
  containers: Container[];
  volumes?: Volume[];
  nodeSelector?: Record<string, string>;
  tolerations?: { operator: "Exists"; effect?: string; key?: string }[];
  priorityClassName?: string;
  terminationGracePeriodSeconds?: number;
  affinity?: Record<string, unknown>;
}

interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}

export type Deployment = {
  apiVersion: "apps/v1";
  kind: "Deployment";
  metadata: Meta;
  spec: {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    strategy?: { type: "RollingUpdate"; rollingUpdate: { maxUnavailable: number; maxSurge: number } };
    template: PodTemplate;
  };
};

export type DaemonSet = {
  apiVersion: "apps/v1";
  kind: "DaemonSet";
  metadata: Meta;
  spec: {
    selector: { matchLabels: Record<string, string> };
    updateStrategy: { type: "RollingUpdate"; rollingUpdate: { maxUnavailable: number | string } };
    template: PodTemplate;
  };
};

export type Exception = {
  apiVersion: "aadpodidentity.k8s.io/v1";
  kind: "AzurePodIdentityException";
  metadata: Meta;
  spec: { podLabels: Record<string, string> };
};

export type Manifest =
  | Namespace
  | ServiceAccount
  | ClusterRole
  | Role
  | ClusterRoleBinding
  | RoleBinding
  | Deployment
  | DaemonSet
  | Exception
  | Secret;

type Secret = {
  apiVersion: "v1";
  kind: "Secret";
  metadata: Meta;
  type?: "Opaque";
  data: Record<string, string>;
};
