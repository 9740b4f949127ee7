// MIC's Azure settings: the cluster's azure.json (`--cloudconfig`, normally /etc/kubernetes/azure.json) or,
// without it, the original's env vars CLOUD, TENANT_ID, CLIENT_ID, ... (docs/upstream.md, "## MIC flags").
// Pure: the caller reads the file and the environment; errors name the source and the field.

import { importLazily } from "../lazy_import.ts";

export class AzureConfigError extends Error {
  override name = "AzureConfigError";
}

export interface AzureConfig {
  cloud: string;
  tenantId: string;
  subscriptionId: string;
  /** The cluster's resource group; nodes' own groups (from providerID) are what MIC patches. */
  resourceGroup: string;
  vmType: string;
  clientId: string;
  clientSecret: string;
  /** PKCS#12 or PEM certificate of the service principal (azure.json `aadClientCertPath`). */
  clientCertPath: string;
  clientCertPassword: string;
  useManagedIdentity: boolean;
  /** Client id of the managed identity MIC authenticates with (empty: system-assigned). */
  userAssignedIdentityId: string;
}

export type Credentials =
  | { kind: "secret"; tenantId: string; clientId: string; secret: string }
  | { kind: "certificate"; tenantId: string; clientId: string; certPath: string; password: string }
  | { kind: "managedIdentity"; clientId?: string };

function str(o: Record<string, unknown>, key: string, source: string): string {
  const v = o[key];
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw new AzureConfigError(`${source}: ${key} must be a string`);
  return v.trim();
}

function bool(o: Record<string, unknown>, key: string, source: string): boolean {
  const v = o[key];
  if (v === undefined || v === null || v === "") return false;
  if (typeof v === "boolean") return v;
  if (typeof v === "string" && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === "true";
  throw new AzureConfigError(`${source}: ${key} must be true or false`);
}

/**
 * azure.json is JSON; the original read it with a YAML parser, so YAML is accepted too. The YAML parser is
 * loaded only for a file that is not JSON (it costs MIC about 4 MiB of RSS when loaded at start).
 */
export async function parseAzureJson(text: string, source: string): Promise<AzureConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    try {
      const { parse } = await importLazily<typeof import("../npm/yaml.ts")>("lib/npm/yaml.ts");
      raw = parse(text);
    } catch (e) {
      throw new AzureConfigError(`${source}: not JSON (${(e as Error).message.split("\n")[0]})`);
    }
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new AzureConfigError(`${source}: must be a JSON object`);
  }
  const o = raw as Record<string, unknown>;
  const cfg: AzureConfig = {
    cloud: str(o, "cloud", source),
    tenantId: str(o, "tenantId", source),
    subscriptionId: str(o, "subscriptionId", source),
    resourceGroup: str(o, "resourceGroup", source),
    vmType: str(o, "vmType", source),
    clientId: str(o, "aadClientId", source),
    clientSecret: str(o, "aadClientSecret", source),
    clientCertPath: str(o, "aadClientCertPath", source),
    clientCertPassword: str(o, "aadClientCertPassword", source),
    useManagedIdentity: bool(o, "useManagedIdentityExtension", source),
    userAssignedIdentityId: str(o, "userAssignedIdentityID", source),
  };
  return validate(cfg, source);
}

/** The env-var alternative (the chart fills these from a Secret). */
export function azureConfigFromEnv(env: (name: string) => string | undefined): AzureConfig {
  const get = (n: string) => (env(n) ?? "").trim();
  const cfg: AzureConfig = {
    cloud: get("CLOUD"),
    tenantId: get("TENANT_ID"),
    subscriptionId: get("SUBSCRIPTION_ID"),
    resourceGroup: get("RESOURCE_GROUP"),
    vmType: get("VM_TYPE"),
    clientId: get("CLIENT_ID"),
    clientSecret: get("CLIENT_SECRET"),
    clientCertPath: get("CLIENT_CERT_PATH"),
    clientCertPassword: get("CLIENT_CERT_PASSWORD"),
    useManagedIdentity: get("USE_MSI").toLowerCase() === "true",
    userAssignedIdentityId: get("USER_ASSIGNED_MSI_CLIENT_ID"),
  };
  return validate(cfg, "environment");
}

function validate(cfg: AzureConfig, source: string): AzureConfig {
  const missing = (field: string) => new AzureConfigError(`${source}: ${field} is required`);
  if (!cfg.subscriptionId) throw missing(source === "environment" ? "SUBSCRIPTION_ID" : "subscriptionId");
  if (!cfg.useManagedIdentity) {
    if (!cfg.tenantId) throw missing(source === "environment" ? "TENANT_ID" : "tenantId");
    if (!cfg.clientId) throw missing(source === "environment" ? "CLIENT_ID" : "aadClientId");
    if (!cfg.clientSecret && !cfg.clientCertPath) {
      throw new AzureConfigError(
        `${source}: a service principal needs a client secret or a certificate (or use a managed identity)`,
      );
    }
  }
  return cfg;
}

/** How MIC authenticates to ARM: managed identity when asked, else the secret, else the certificate. */
export function credentialsOf(cfg: AzureConfig): Credentials {
  if (cfg.useManagedIdentity) {
    return cfg.userAssignedIdentityId
      ? { kind: "managedIdentity", clientId: cfg.userAssignedIdentityId }
      : { kind: "managedIdentity" };
  }
  if (cfg.clientSecret) {
    return { kind: "secret", tenantId: cfg.tenantId, clientId: cfg.clientId, secret: cfg.clientSecret };
  }
  return {
    kind: "certificate",
    tenantId: cfg.tenantId,
    clientId: cfg.clientId,
    certPath: cfg.clientCertPath,
    password: cfg.clientCertPassword,
  };
}
