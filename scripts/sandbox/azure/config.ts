// The JSON config `main.ts` starts the emulator from (pure validation; unknown keys are errors so a typo
// does not silently start an emulator without the resource the demo expects).

import type { BucketConfig } from "./throttle.ts";

export interface IdentityConfig {
  resourceGroup: string;
  name: string;
  clientId?: string;
  principalId?: string;
  assignScopes?: string[];
}

export interface ComputeConfig {
  resourceGroup: string;
  name: string;
  systemAssigned?: boolean;
  /** Identity ids, or `<resourceGroup>/<name>` of identities in this config. */
  userAssignedIdentities?: string[];
  capacity?: number;
}

export interface ServicePrincipalConfig {
  clientId?: string;
  tenantId?: string;
  secret?: string;
  /** PEM file holding the RSA certificate (a private key in it is ignored). */
  certificateFile?: string;
  assignScopes?: string[];
}

export interface ImdsConfig {
  /** `<resourceGroup>/<name>` of a VM in this config. */
  vm?: string;
  /** `<resourceGroup>/<name>` of a scale set in this config. */
  vmss?: string;
  instance?: number;
  hostname?: string;
  port?: number;
}

export interface EmulatorConfig {
  subscriptionId?: string;
  tenantId?: string;
  location?: string;
  lroDurationMs?: number;
  lroRetryAfterSeconds?: number;
  throttle?: { reads?: BucketConfig; writes?: BucketConfig };
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

export function parseEmulatorConfig(raw: unknown): EmulatorConfig {
  const o = obj(raw, "$", [
    "subscriptionId",
    "tenantId",
    "location",
    "lroDurationMs",
    "lroRetryAfterSeconds",
    "throttle",
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
    lroDurationMs: num(o.lroDurationMs, "$.lroDurationMs", 0),
    lroRetryAfterSeconds: num(o.lroRetryAfterSeconds, "$.lroRetryAfterSeconds", 0),
    throttle: throttle && {
      reads: bucket(throttle.reads, "$.throttle.reads"),
      writes: bucket(throttle.writes, "$.throttle.writes"),
    },
    hostname: str(o.hostname, "$.hostname"),
    armPort: num(o.armPort, "$.armPort", 0),
    aadPort: num(o.aadPort, "$.aadPort", 0),
    identities: list(o.identities, "$.identities", (x, p) => {
      const i = obj(x, p, ["resourceGroup", "name", "clientId", "principalId", "assignScopes"]);
      return {
        resourceGroup: str(i.resourceGroup, `${p}.resourceGroup`, true),
        name: str(i.name, `${p}.name`, true),
        clientId: str(i.clientId, `${p}.clientId`),
        principalId: str(i.principalId, `${p}.principalId`),
        assignScopes: strList(i.assignScopes, `${p}.assignScopes`),
      };
    }),
    vms: list(o.vms, "$.vms", compute),
    vmss: list(o.vmss, "$.vmss", compute),
    servicePrincipals: list(o.servicePrincipals, "$.servicePrincipals", (x, p) => {
      const s = obj(x, p, ["clientId", "tenantId", "secret", "certificateFile", "assignScopes"]);
      const sp: ServicePrincipalConfig = {
        clientId: str(s.clientId, `${p}.clientId`),
        tenantId: str(s.tenantId, `${p}.tenantId`),
        secret: str(s.secret, `${p}.secret`),
        certificateFile: str(s.certificateFile, `${p}.certificateFile`),
        assignScopes: strList(s.assignScopes, `${p}.assignScopes`),
      };
      if (!sp.secret && !sp.certificateFile) throw new ConfigError(p, "needs a secret or a certificateFile");
      return sp;
    }),
    imds: list(o.imds, "$.imds", (x, p) => {
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
    }),
  };
  return config;
}
