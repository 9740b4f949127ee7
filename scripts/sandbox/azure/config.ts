// The JSON config `main.ts` starts the emulator from (pure validation; unknown keys are errors so a typo
// does not silently start an emulator without the resource the demo expects).

import type { ComputeKind } from "./ids.ts";
import type { ComputePolicy } from "./compute_throttle.ts";
import type { MetadataHeaderCheck } from "./imds.ts";
import type { LroDuration } from "./lro.ts";
import type { BucketConfig } from "./throttle.ts";

interface IdentityConfig {
  resourceGroup: string;
  name: string;
  clientId?: string;
  principalId?: string;
  assignScopes?: string[];
  writeScopes?: string[];
}

interface ComputeConfig {
  resourceGroup: string;
  name: string;
  systemAssigned?: boolean;
  /** Identity ids, or `<resourceGroup>/<name>` of identities in this config. */
  userAssignedIdentities?: string[];
  capacity?: number;
}

interface ServicePrincipalConfig {
  clientId?: string;
  tenantId?: string;
  secret?: string;
  /** PEM file holding the RSA certificate (a private key in it is ignored). */
  certificateFile?: string;
  assignScopes?: string[];
  writeScopes?: string[];
}

interface ImdsConfig {
  /** `<resourceGroup>/<name>` of a VM in this config. */
  vm?: string;
  /** `<resourceGroup>/<name>` of a scale set in this config. */
  vmss?: string;
  instance?: number;
  hostname?: string;
  port?: number;
}

interface EmulatorConfig {
  subscriptionId?: string;
  tenantId?: string;
  location?: string;
  lroDurationMs?: LroDuration;
  lroRetryAfterSeconds?: number;
  throttle?: { reads?: BucketConfig; writes?: BucketConfig };
  imdsPropagationDelayMs?: number;
  computeThrottle?: { policies?: ComputePolicy[]; retryAfterSeconds?: number } | false;
  maxIdentitiesPerPatch?: number;
  knownResources?: string[];
  /** PEM files of CAs Azure AD trusts when fetching a federated issuer's discovery document and JWKS. */
  federationCaFiles?: string[];
  strictResources?: boolean;
  imdsMetadataHeader?: MetadataHeaderCheck;
  hostname?: string;
  armPort?: number;
  aadPort?: number;
  identities: IdentityConfig[];
  vms: ComputeConfig[];
  vmss: ComputeConfig[];
  servicePrincipals: ServicePrincipalConfig[];
  imds: ImdsConfig[];
}

type Json = Record<string, unknown>;

class ConfigError extends Error {
  constructor(path: string, message: string) {
    super(`config ${path}: ${message}`);
    this.name = "ConfigError";
  }
}

function obj(v: unknown, path: string, allowed: string[]): Json {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ConfigError(path, "must be an object");
  }
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) {
      throw new ConfigError(`${path}.${k}`, `unknown key (allowed: ${allowed.join(", ")})`);
    }
  }
  return v as Json;
}

function str(v: unknown, path: string, required: true): string;
function str(v: unknown, path: string, required?: false): string | undefined;
function str(v: unknown, path: string, required = false): string | undefined {
  if (v === undefined && !required) return undefined;
  if (typeof v !== "string" || v === "") throw new ConfigError(path, "must be a non-empty string");
  return v;
}

function num(v: unknown, path: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min) {
    throw new ConfigError(path, `must be a number >= ${min}`);
  }
  return v;
}

function bool(v: unknown, path: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") throw new ConfigError(path, "must be true or false");
  return v;
}

function strList(v: unknown, path: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw new ConfigError(path, "must be an array of strings");
  return v.map((x, i) => str(x, `${path}[${i}]`, true));
}

function list<T>(v: unknown, path: string, each: (x: unknown, p: string) => T): T[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new ConfigError(path, "must be an array");
  return v.map((x, i) => each(x, `${path}[${i}]`));
}

function bucket(v: unknown, path: string): BucketConfig | undefined {
  if (v === undefined) return undefined;
  const o = obj(v, path, ["capacity", "refillPerSec"]);
  return {
    capacity: num(o.capacity, `${path}.capacity`, 1) ?? 1,
    refillPerSec: num(o.refillPerSec, `${path}.refillPerSec`, 0.001) ?? 1,
  };
}

function lroDuration(v: unknown, path: string): LroDuration | undefined {
  if (v === undefined || typeof v === "number") return num(v, path, 0);
  const o = obj(v, path, ["minMs", "maxMs"]);
  const minMs = num(o.minMs, `${path}.minMs`, 0);
  const maxMs = num(o.maxMs, `${path}.maxMs`, 0);
  if (minMs === undefined || maxMs === undefined || maxMs < minMs) {
    throw new ConfigError(path, "must be a number or {minMs, maxMs} with minMs <= maxMs");
  }
  return { minMs, maxMs };
}

const KINDS: Record<string, ComputeKind> = { vm: "virtualMachines", vmss: "virtualMachineScaleSets" };

function computeThrottle(v: unknown, path: string): EmulatorConfig["computeThrottle"] {
  if (v === undefined || v === false) return v;
  const o = obj(v, path, ["policies", "retryAfterSeconds"]);
  const policies = o.policies === undefined ? undefined : list(o.policies, `${path}.policies`, (x, p) => {
    const q = obj(x, p, ["name", "kind", "operation", "windowSeconds", "allowedRequestCount"]);
    const kind = str(q.kind, `${p}.kind`, true);
    const operation = str(q.operation, `${p}.operation`, true);
    if (!(kind in KINDS)) throw new ConfigError(`${p}.kind`, "must be vm or vmss");
    if (operation !== "read" && operation !== "write") {
      throw new ConfigError(`${p}.operation`, "must be read or write");
    }
    return {
      name: str(q.name, `${p}.name`, true),
      kind: KINDS[kind],
      operation,
      windowSeconds: num(q.windowSeconds, `${p}.windowSeconds`, 1) ?? 180,
      allowedRequestCount: num(q.allowedRequestCount, `${p}.allowedRequestCount`, 0) ?? 0,
    } satisfies ComputePolicy;
  });
  return { policies, retryAfterSeconds: num(o.retryAfterSeconds, `${path}.retryAfterSeconds`, 0) };
}

function compute(v: unknown, path: string): ComputeConfig {
  const o = obj(v, path, ["resourceGroup", "name", "systemAssigned", "userAssignedIdentities", "capacity"]);
  return {
    resourceGroup: str(o.resourceGroup, `${path}.resourceGroup`, true),
    name: str(o.name, `${path}.name`, true),
    systemAssigned: bool(o.systemAssigned, `${path}.systemAssigned`),
    userAssignedIdentities: strList(o.userAssignedIdentities, `${path}.userAssignedIdentities`),
    capacity: num(o.capacity, `${path}.capacity`, 1),
  };
}

function metadataHeader(v: unknown, path: string): MetadataHeaderCheck | undefined {
  if (v === undefined) return undefined;
  if (v !== "exact" && v !== "case-insensitive") {
    throw new ConfigError(path, "must be exact or case-insensitive");
  }
  return v;
}

function identity(x: unknown, p: string): IdentityConfig {
  const i = obj(x, p, ["resourceGroup", "name", "clientId", "principalId", "assignScopes", "writeScopes"]);
  return {
    resourceGroup: str(i.resourceGroup, `${p}.resourceGroup`, true),
    name: str(i.name, `${p}.name`, true),
    clientId: str(i.clientId, `${p}.clientId`),
    principalId: str(i.principalId, `${p}.principalId`),
    assignScopes: strList(i.assignScopes, `${p}.assignScopes`),
    writeScopes: strList(i.writeScopes, `${p}.writeScopes`),
  };
}

function servicePrincipal(x: unknown, p: string): ServicePrincipalConfig {
  const s = obj(x, p, ["clientId", "tenantId", "secret", "certificateFile", "assignScopes", "writeScopes"]);
  const sp: ServicePrincipalConfig = {
    clientId: str(s.clientId, `${p}.clientId`),
    tenantId: str(s.tenantId, `${p}.tenantId`),
    secret: str(s.secret, `${p}.secret`),
    certificateFile: str(s.certificateFile, `${p}.certificateFile`),
    assignScopes: strList(s.assignScopes, `${p}.assignScopes`),
    writeScopes: strList(s.writeScopes, `${p}.writeScopes`),
  };
  if (!sp.secret && !sp.certificateFile) throw new ConfigError(p, "needs a secret or a certificateFile");
  return sp;
}

function imdsEntry(x: unknown, p: string): ImdsConfig {
  const i = obj(x, p, ["vm", "vmss", "instance", "hostname", "port"]);
  const entry: ImdsConfig = {
    vm: str(i.vm, `${p}.vm`),
    vmss: str(i.vmss, `${p}.vmss`),
    instance: num(i.instance, `${p}.instance`, 0),
    hostname: str(i.hostname, `${p}.hostname`),
    port: num(i.port, `${p}.port`, 0),
  };
  if ((entry.vm === undefined) === (entry.vmss === undefined)) {
    throw new ConfigError(p, "needs exactly one of vm, vmss");
  }
  return entry;
}

export function parseEmulatorConfig(raw: unknown): EmulatorConfig {
  const o = obj(raw, "$", [
    "subscriptionId",
    "tenantId",
    "location",
    "lroDurationMs",
    "lroRetryAfterSeconds",
    "throttle",
    "imdsPropagationDelayMs",
    "computeThrottle",
    "maxIdentitiesPerPatch",
    "knownResources",
    "federationCaFiles",
    "strictResources",
    "imdsMetadataHeader",
    "hostname",
    "armPort",
    "aadPort",
    "identities",
    "vms",
    "vmss",
    "servicePrincipals",
    "imds",
  ]);
  const throttle = o.throttle === undefined ? undefined : obj(o.throttle, "$.throttle", ["reads", "writes"]);
  const config: EmulatorConfig = {
    subscriptionId: str(o.subscriptionId, "$.subscriptionId"),
    tenantId: str(o.tenantId, "$.tenantId"),
    location: str(o.location, "$.location"),
    lroDurationMs: lroDuration(o.lroDurationMs, "$.lroDurationMs"),
    lroRetryAfterSeconds: num(o.lroRetryAfterSeconds, "$.lroRetryAfterSeconds", 0),
    throttle: throttle && {
      reads: bucket(throttle.reads, "$.throttle.reads"),
      writes: bucket(throttle.writes, "$.throttle.writes"),
    },
    imdsPropagationDelayMs: num(o.imdsPropagationDelayMs, "$.imdsPropagationDelayMs", 0),
    computeThrottle: computeThrottle(o.computeThrottle, "$.computeThrottle"),
    maxIdentitiesPerPatch: num(o.maxIdentitiesPerPatch, "$.maxIdentitiesPerPatch", 1),
    knownResources: strList(o.knownResources, "$.knownResources"),
    federationCaFiles: strList(o.federationCaFiles, "$.federationCaFiles"),
    strictResources: bool(o.strictResources, "$.strictResources"),
    imdsMetadataHeader: metadataHeader(o.imdsMetadataHeader, "$.imdsMetadataHeader"),
    hostname: str(o.hostname, "$.hostname"),
    armPort: num(o.armPort, "$.armPort", 0),
    aadPort: num(o.aadPort, "$.aadPort", 0),
    identities: list(o.identities, "$.identities", identity),
    vms: list(o.vms, "$.vms", compute),
    vmss: list(o.vmss, "$.vmss", compute),
    servicePrincipals: list(o.servicePrincipals, "$.servicePrincipals", servicePrincipal),
    imds: list(o.imds, "$.imds", imdsEntry),
  };
  return config;
}
