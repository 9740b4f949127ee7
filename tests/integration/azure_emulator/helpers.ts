// Shared setup for the emulator's integration tests: an emulator, an HTTP client that trusts its CA
// (so tests do not depend on DENO_CERT being set), and helpers for tokens and ARM URLs.

import { ClientSecretCredential } from "@azure/identity";
import { ComputeManagementClient } from "@azure/arm-compute";
import { ManagedServiceIdentityClient } from "@azure/arm-msi";
import {
  type AzureEmulator,
  type AzureEmulatorOptions,
  startAzureEmulator,
} from "../../../scripts/sandbox/azure/emulator.ts";

export interface Harness {
  emu: AzureEmulator;
  /** PEM of the CA that signs the emulator's HTTPS certificate. */
  ca: string;
  /** fetch that trusts the emulator's CA; callers must consume or cancel every body. */
  fetch(url: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

export async function startHarness(options: AzureEmulatorOptions = {}): Promise<Harness> {
  const emu = await startAzureEmulator({ lroDurationMs: 200, imdsPropagationDelayMs: 0, ...options });
  const ca = await Deno.readTextFile(emu.caCertPath);
  const client = Deno.createHttpClient({ caCerts: [ca] });
  return {
    emu,
    ca,
    fetch: (url, init) => fetch(url, { ...init, client }),
    async close() {
      client.close();
      await emu.stop();
    },
  };
}

/** `{ tlsOptions: { ca } }` for Azure SDK clients, which use node:https and ignore DENO_CERT. */
export function sdkTls(h: Harness): { tlsOptions: { ca: string } } {
  return { tlsOptions: { ca: h.ca } };
}

/** The ARM SDK clients and their credential, set up as a user sets them for a custom cloud. */
export function sdkClients(h: Harness, sp: { clientId: string; tenantId: string; secret?: string }) {
  const credential = new ClientSecretCredential(sp.tenantId, sp.clientId, sp.secret!, {
    authorityHost: h.emu.authorityHost,
    // MSAL validates unknown authority hosts against login.microsoftonline.com, which a private cloud
    // (and this sandbox) cannot reach; Azure Stack users set the same option.
    disableInstanceDiscovery: true,
    ...sdkTls(h),
  });
  const compute = new ComputeManagementClient(credential, h.emu.subscriptionId, {
    endpoint: h.emu.armEndpoint,
    ...sdkTls(h),
  });
  const msi = new ManagedServiceIdentityClient(credential, h.emu.subscriptionId, {
    endpoint: h.emu.armEndpoint,
    ...sdkTls(h),
  });
  return { credential, compute, msi };
}

interface SecretPrincipal {
  clientId: string;
  tenantId: string;
  secret?: string;
}

/** Client-credentials token from the emulated Azure AD (v2 endpoint), as plain HTTP. */
export async function tokenFor(
  h: Harness,
  sp: SecretPrincipal,
  resource = "https://management.azure.com",
): Promise<string> {
  const res = await h.fetch(`${h.emu.authorityHost}/${sp.tenantId}/oauth2/v2.0/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: sp.clientId,
      client_secret: sp.secret ?? "",
      scope: `${resource}/.default`,
    }),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

const COMPUTE_API = "2026-04-01";

export function computePath(
  h: Harness,
  rg: string,
  kind: "virtualMachines" | "virtualMachineScaleSets",
  name: string,
) {
  return `/subscriptions/${h.emu.subscriptionId}/resourceGroups/${rg}/providers/Microsoft.Compute/${kind}/${name}`;
}

/** An ARM request with a bearer token; returns status, headers and the parsed JSON body. */
export async function arm(
  h: Harness,
  token: string | undefined,
  method: string,
  path: string,
  opts: { apiVersion?: string | null; body?: unknown; contentType?: string; rawBody?: string } = {},
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const url = new URL(path, h.emu.armEndpoint);
  const version = opts.apiVersion === undefined ? COMPUTE_API : opts.apiVersion;
  if (version !== null) url.searchParams.set("api-version", version);
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (opts.rawBody !== undefined || opts.body !== undefined) {
    headers["content-type"] = opts.contentType ?? "application/json";
    body = opts.rawBody ?? JSON.stringify(opts.body);
  }
  const res = await h.fetch(url.toString(), { method, headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : {} };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The `error` object of an ARM error body. */
export function armErrorOf(body: Record<string, unknown>): { code: string; message: string } {
  const error = body.error as { code?: unknown; message?: unknown } | undefined;
  if (!error || typeof error.code !== "string" || typeof error.message !== "string") {
    throw new Error(`not an ARM error body: ${JSON.stringify(body)}`);
  }
  return { code: error.code, message: error.message };
}
