// What an installation may vary: namespace, mode, image and version, and the few privileges that depend
// on how the cluster uses pod identity. Everything else in deploy/ is fixed.

export const DEFAULT_IMAGE_REPOSITORY = "aad-pod-identity";
export const DEFAULT_VERSION = "1.9.0-deno";

export type Mode = "standard" | "managed";

interface SecretName {
  namespace: string;
  name: string;
}

/**
 * Where MIC reads its Azure settings. `hostPath`: the node's azure.json (on AKS root-only, 0600), so MIC runs
 * as root as the original did. `secret`: env vars from a Secret with the original's keys (its
 * deploy/infra/noazurejson), so MIC runs as a non-root user.
 */
export type AzureConfigSource =
  | { source: "hostPath"; path: string }
  | { source: "secret"; secretName: string };

export const DEFAULT_AZURE_JSON = "/etc/kubernetes/azure.json";
/** The original's Secret name in deploy/infra/noazurejson. */
export const ADMIN_SECRET = "aadpodidentity-admin-secret";

export interface ManifestOptions {
  /** Where MIC and NMI run (the original: `default`; managed mode: `kube-system`). */
  namespace: string;
  mode: Mode;
  /** Images are `<repository>/mic:<version>` and `<repository>/nmi:<version>`. */
  imageRepository: string;
  version: string;
  /**
   * Secrets of service-principal AzureIdentities NMI may read; none (the default) means NMI reads no
   * secrets at all. The original let NMI read every secret in the cluster.
   */
  servicePrincipalSecrets: SecretName[];
  /** Start-up taint NMI removes from its node once ready (gives NMI nodes get/patch); none by default. */
  removeNodeTaint?: string;
  /**
   * Federated mode allowed: NMI may create service-account tokens (RBAC), narrowed by a
   * ValidatingAdmissionPolicy to pod-bound api://AzureADTokenExchange tokens of at most an hour.
   */
  federated?: boolean;
  /** NMI may read every Secret, as the original's chart (rbac.allowAccessToSecrets) allowed. */
  nmiReadsAllSecrets?: boolean;
  /** MIC's Azure settings (default: the node's /etc/kubernetes/azure.json). */
  azureConfig?: AzureConfigSource;
  /**
   * A custom cloud's environment file on the node (Azure Stack; the original chart's
   * mic.customCloud.configPath): mounted into MIC and named by AZURE_ENVIRONMENT_FILEPATH, the file
   * go-autorest and MIC read the ARM and Azure AD endpoints from when azure.json says AzureStackCloud.
   */
  customCloudFile?: string;
}

export function defaultOptions(mode: Mode = "standard"): ManifestOptions {
  return {
    namespace: mode === "managed" ? "kube-system" : "default",
    mode,
    imageRepository: DEFAULT_IMAGE_REPOSITORY,
    version: DEFAULT_VERSION,
    servicePrincipalSecrets: [],
  };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
// A registry host (optional port) and path components, as the OCI distribution spec allows.
const REPOSITORY = /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-]|__|[-]*[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const TAINT_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Problems with the options, each naming the option; empty when they can be rendered. */
export function validateOptions(o: ManifestOptions): string[] {
  const problems: string[] = [];
  if (!DNS_LABEL.test(o.namespace)) problems.push(`namespace '${o.namespace}' is not a valid namespace name`);
  if (o.mode !== "standard" && o.mode !== "managed") {
    problems.push(`mode '${o.mode}' is not standard or managed`);
  }
  if (!REPOSITORY.test(o.imageRepository)) {
    problems.push(`image repository '${o.imageRepository}' is not a valid image repository`);
  }
  if (!TAG.test(o.version)) problems.push(`version '${o.version}' is not a valid image tag`);
  for (const s of o.servicePrincipalSecrets) {
    if (!DNS_LABEL.test(s.namespace) || !DNS_SUBDOMAIN.test(s.name)) {
      problems.push(`secret '${s.namespace}/${s.name}' is not <namespace>/<name>`);
    }
  }
  if (o.azureConfig?.source === "secret" && !DNS_SUBDOMAIN.test(o.azureConfig.secretName)) {
    problems.push(`secret '${o.azureConfig.secretName}' is not a valid Secret name`);
  }
  if (o.azureConfig?.source === "hostPath" && !o.azureConfig.path.startsWith("/")) {
    problems.push(`azure.json path '${o.azureConfig.path}' is not absolute`);
  }
  if (o.customCloudFile !== undefined && !o.customCloudFile.startsWith("/")) {
    problems.push(`custom cloud file '${o.customCloudFile}' is not absolute`);
  }
  if (o.removeNodeTaint !== undefined && !TAINT_KEY.test(o.removeNodeTaint)) {
    problems.push(`taint key '${o.removeNodeTaint}' is not a valid taint key`);
  }
  return problems;
}

/** `ns/name` -> SecretName, or undefined. */
export function parseSecretName(text: string): SecretName | undefined {
  const m = /^([^/]+)\/([^/]+)$/.exec(text);
  return m ? { namespace: m[1], name: m[2] } : undefined;
}
