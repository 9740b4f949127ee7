// Starts the Azure emulator: ARM and Azure AD over HTTPS (sandbox CA), plus one IMDS endpoint per
// emulated VM / scale-set instance on demand, all sharing one ARM model, request log and fault injector.

import { createAadHandler } from "./aad.ts";
import { createArmHandler } from "./arm.ts";
import { PUBLIC_ARM_AUDIENCES } from "./arm_auth.ts";
import { Directory, parseCertificate, type ServicePrincipal } from "./directory.ts";
import { FaultInjector } from "./faults.ts";
import { type FederatedCredential, parseFederatedCredential } from "./federated_credentials.ts";
import { type Handler, type RunningServer, serveHandler } from "./http_server.ts";
import type { IdentityJson } from "./identity_patch.ts";
import { idKey } from "./ids.ts";
import { createImdsHandler, type ImdsLimits, type ImdsSource, type MetadataHeaderCheck } from "./imds.ts";
import type { AttachedIdentities, InstanceDescription } from "./imds_request.ts";
import {
  type AccessTokenClaims,
  generateSigningKey,
  type SigningKey,
  type VerifyOptions,
  verifyToken,
} from "./jwt.ts";
import { RequestLog } from "./request_log.ts";
import { COMPUTE_DEFAULT_POLICIES, ComputeThrottle, type ComputeThrottleConfig } from "./compute_throttle.ts";
import { type LroDuration, OperationFaults } from "./lro.ts";
import { resourceKey, ResourceRegistry, WELL_KNOWN_RESOURCES } from "./resources.ts";
import { type AddComputeOptions, type AddIdentityOptions, ArmState, type ComputeResource } from "./state.ts";
import { ARM_DEFAULT_THROTTLE, Throttle, type ThrottleConfig } from "./throttle.ts";
import { emulatorTls } from "./tls.ts";
import { TokenIssuer } from "./tokens.ts";

export interface AzureEmulatorOptions {
  subscriptionId?: string;
  tenantId?: string;
  /** Azure region of every resource (default `eastus`). */
  location?: string;
  /**
   * How long a VM / scale-set PATCH runs before it succeeds (default 1000 ms): a fixed time, or a range each
   * operation draws from (`REALISTIC_LRO_DURATION` is Azure's 10-60 s).
   */
  lroDurationMs?: LroDuration;
  /**
   * How long after an operation attached an identity the node's IMDS still answers 400 "Identity not found"
   * for it (default `DEFAULT_IMDS_PROPAGATION_DELAY_MS`, 10 s; Azure: seconds up to about a minute).
   */
  imdsPropagationDelayMs?: number;
  /**
   * The Compute RP's per-resource request policies (default `COMPUTE_DEFAULT_POLICIES` with Retry-After up
   * to the window's end); `false` turns them off.
   */
  computeThrottle?: Partial<ComputeThrottleConfig> | false;
  /** Most user-assigned identity ids one PATCH may name (default 150, as Compute). */
  maxIdentitiesPerPatch?: number;
  /**
   * Resources Azure AD and IMDS issue tokens for besides `WELL_KNOWN_RESOURCES`, the emulator's ARM endpoint
   * and registered client ids; others get AADSTS500011. Add more later with `registerResource`.
   */
  knownResources?: string[];
  /** `false` issues tokens for any resource, as the emulator did before the registry (default true). */
  strictResources?: boolean;
  /** How IMDS compares the `Metadata` header value (default `exact`: only `true`). */
  imdsMetadataHeader?: MetadataHeaderCheck;
  /**
   * Retry-After (seconds) sent with a PATCH and with polls of a running operation, to check that a client
   * paces its polling by it. Default: none, so clients poll at their own interval.
   */
  lroRetryAfterSeconds?: number;
  /** ARM token buckets per caller (default: ARM's 250/25 reads, 200/10 writes). */
  throttle?: Partial<ThrottleConfig>;
  /** Address ARM and Azure AD listen on (default 127.0.0.1). */
  hostname?: string;
  /** 0 (default) picks free ports. */
  armPort?: number;
  aadPort?: number;
  /** Audiences ARM accepts besides Azure's public ones and the emulator's own endpoint URL. */
  armAudiences?: string[];
  /** Lifetime of Azure AD client-credential tokens (default 3599 s, as Azure AD). */
  tokenLifetimeSeconds?: number;
  /** Lifetime of IMDS managed-identity tokens (default 86399 s, about Azure's 24 h). */
  managedIdentityTokenLifetimeSeconds?: number;
  /** Where the sandbox CA and the emulator's TLS certificate live (default `sandboxCacheDir()`). */
  cacheDir?: string;
  /**
   * CA certificates (PEM) Azure AD trusts when it fetches a federated issuer's discovery document and JWKS
   * (e.g. the sandbox kube-apiserver's CA); the system roots otherwise.
   */
  federationCaCerts?: string[];
}

export interface UserAssignedIdentityInfo {
  id: string;
  name: string;
  resourceGroup: string;
  clientId: string;
  principalId: string;
  tenantId: string;
}

export interface ComputeInfo {
  id: string;
  name: string;
  resourceGroup: string;
  /** Present when the resource has a system-assigned identity. */
  systemAssigned?: { principalId: string; clientId: string };
}

interface ServicePrincipalOptions {
  tenantId?: string;
  clientId?: string;
  /** Client secret; one is generated when neither a secret nor a certificate is given. */
  secret?: string;
  /** PEM holding the RSA certificate (a private key in the same PEM is ignored). */
  certificatePem?: string;
  displayName?: string;
  /**
   * Scopes (resource ids) where the principal may assign user-assigned identities (Managed Identity
   * Operator). Default: the whole subscription, so a controller works out of the box.
   */
  assignScopes?: string[];
  /**
   * Scopes where the principal may write VMs and scale sets (Virtual Machine Contributor); a PATCH outside
   * them gets 403 AuthorizationFailed. Default: the whole subscription.
   */
  writeScopes?: string[];
}

interface RoleScopes {
  assign?: string[];
  write?: string[];
}

export interface ServicePrincipalInfo {
  clientId: string;
  tenantId: string;
  objectId: string;
  /** The secret, when one was given or generated. */
  secret?: string;
}

export type ImdsTarget =
  | { vmResourceId: string }
  | { vmssResourceId: string; instance: number | string };

interface StartImdsOptions {
  /** Default 127.0.0.1. */
  hostname?: string;
  /** Default 0 (a free port). */
  port?: number;
  limits?: ImdsLimits;
}

export interface ImdsEndpoint {
  /** `http://host:port`, the value for `AZURE_POD_IDENTITY_AUTHORITY_HOST`. */
  url: string;
  hostname: string;
  port: number;
  stop(): Promise<void>;
}

export interface AzureEmulator {
  /** Resource Manager endpoint, `https://127.0.0.1:<port>` (no trailing slash). */
  readonly armEndpoint: string;
  /** Azure AD authority host, `https://127.0.0.1:<port>`. */
  readonly authorityHost: string;
  /** CA certificate (PEM file) that signs both HTTPS endpoints. */
  readonly caCertPath: string;
  readonly subscriptionId: string;
  readonly tenantId: string;
  readonly location: string;
  /** Public key that verifies every token the emulator issues (SPKI PEM). */
  readonly publicKeyPem: string;
  readonly requests: RequestLog;
  readonly faults: FaultInjector;
  /** Makes accepted PATCHes end `Failed` (their identities are not applied). */
  readonly operationFaults: OperationFaults;
  /** Lets Azure AD and IMDS issue tokens for one more resource (app ID URI). */
  registerResource(resource: string): void;
  /** Changes the IMDS propagation delay for operations that finish from now on. */
  setImdsPropagationDelayMs(ms: number): void;
  /** Replaces a principal's role scopes (by client id or object id); omitted kinds stay as they are. */
  setRoleScopes(principal: string, scopes: RoleScopes): void;
  /** `clientId` / `principalId` may be fixed (e.g. to match an existing AzureIdentity manifest). */
  addUserAssignedIdentity(opts: AddIdentityOptions): UserAssignedIdentityInfo;
  deleteUserAssignedIdentity(id: string): boolean;
  /** Creates or replaces a federated identity credential, as ARM's PUT does (throws on ARM's refusals). */
  putFederatedCredential(identityId: string, credential: FederatedCredential): void;
  addVm(opts: AddComputeOptions): ComputeInfo;
  addVmss(opts: AddComputeOptions): ComputeInfo;
  /** The identity block ARM returns for a VM / scale set (`{type: "None"}` when it has none). */
  getIdentities(resourceId: string): IdentityJson;
  /** The full GET body of a VM / scale set, including `properties.provisioningState`. */
  getResource(resourceId: string): Record<string, unknown>;
  registerServicePrincipal(opts?: ServicePrincipalOptions): ServicePrincipalInfo;
  /** The IMDS handler for one machine, for serving it elsewhere (e.g. 169.254.169.254:80 in a netns). */
  imdsHandler(target: ImdsTarget, limits?: ImdsLimits): Handler;
  startImds(target: ImdsTarget & StartImdsOptions): Promise<ImdsEndpoint>;
  /** Verifies a token issued by this emulator and returns its claims (throws `JwtError`). */
  verifyToken(jwt: string, options?: VerifyOptions): Promise<AccessTokenClaims>;
  stop(): Promise<void>;
}

export { createImdsHandler, IMDS_IDENTITY_LIMITS } from "./imds.ts";
export type { ImdsHandlerOptions, ImdsLimits, ImdsSource, MetadataHeaderCheck } from "./imds.ts";
export { COMPUTE_DEFAULT_POLICIES } from "./compute_throttle.ts";
export type { ComputePolicy, ComputeThrottleConfig } from "./compute_throttle.ts";
export { DEFAULT_OPERATION_ERROR, REALISTIC_LRO_DURATION } from "./lro.ts";
export type { LroDuration, OperationFailureSpec } from "./lro.ts";
export { WELL_KNOWN_RESOURCES } from "./resources.ts";
export { JwtError, verifyToken } from "./jwt.ts";
export type { AccessTokenClaims, VerifyOptions } from "./jwt.ts";
export type { IdentityJson } from "./identity_patch.ts";
export type { FederatedCredential } from "./federated_credentials.ts";
export type { FaultSpec } from "./faults.ts";
export type { RequestFilter, RequestLogEntry } from "./request_log.ts";
export type { Handler } from "./http_server.ts";

/** Default time from an identity's attach until the node's IMDS serves it. */
export const DEFAULT_IMDS_PROPAGATION_DELAY_MS = 10_000;
/** Compute's limit of user-assigned identity ids in one request. */
export const MAX_IDENTITIES_PER_PATCH = 150;

const DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-00000000a2b1";
const DEFAULT_TENANT = "00000000-0000-0000-0000-0000000071e1";

function computeInfo(r: ComputeResource): ComputeInfo {
  const info: ComputeInfo = { id: r.id, name: r.name, resourceGroup: r.resourceGroup };
  if (r.identity.system) info.systemAssigned = { ...r.identity.system };
  return info;
}

function checkedDelay(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`imdsPropagationDelayMs must be >= 0, got ${ms}`);
  return ms;
}

function checkedLroDuration(d: LroDuration): LroDuration {
  const ok = typeof d === "number"
    ? Number.isFinite(d) && d >= 0
    : Number.isFinite(d.minMs) && Number.isFinite(d.maxMs) && d.minMs >= 0 && d.maxMs >= d.minMs;
  if (!ok) throw new RangeError(`lroDurationMs must be >= 0 or {minMs <= maxMs}, got ${JSON.stringify(d)}`);
  return d;
}

function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(30));
  return btoa(String.fromCharCode(...bytes)).replace(/[+/=]/g, "").slice(0, 40);
}

function macFor(seed: string): string {
  let h = 0;
  for (const c of seed) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  const bytes = [0x00, 0x0d, 0x3a, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff];
  return bytes.map((b) => b.toString(16).padStart(2, "0").toUpperCase()).join("");
}

/** What every endpoint of one emulator shares: one ARM model, directory, token issuer, log and faults. */
interface EmulatorCore {
  options: AzureEmulatorOptions;
  subscriptionId: string;
  tenantId: string;
  location: string;
  tls: Awaited<ReturnType<typeof emulatorTls>>;
  key: SigningKey;
  directory: Directory;
  operationFaults: OperationFaults;
  state: ArmState;
  requests: RequestLog;
  faults: FaultInjector;
  resources: ResourceRegistry;
  issuer: TokenIssuer;
  /** Filled in once ARM and Azure AD listen: handlers read them late, as their URLs depend on the ports. */
  urls: { authorityHost: string; armEndpoint: string };
  federationClient?: Deno.HttpClient;
}

async function createCore(options: AzureEmulatorOptions): Promise<EmulatorCore> {
  const subscriptionId = options.subscriptionId ?? DEFAULT_SUBSCRIPTION;
  const tenantId = options.tenantId ?? DEFAULT_TENANT;
  const location = options.location ?? "eastus";
  const [tls, key] = await Promise.all([emulatorTls(options.cacheDir), generateSigningKey()]);
  const directory = new Directory(tenantId);
  const operationFaults = new OperationFaults();
  const state = new ArmState({
    subscriptionId,
    tenantId,
    location,
    lroDurationMs: checkedLroDuration(options.lroDurationMs ?? 1000),
    imdsPropagationDelayMs: checkedDelay(options.imdsPropagationDelayMs ?? DEFAULT_IMDS_PROPAGATION_DELAY_MS),
    maxIdentitiesPerRequest: options.maxIdentitiesPerPatch ?? MAX_IDENTITIES_PER_PATCH,
    operationFaults,
    directory,
  });
  const urls = { authorityHost: "", armEndpoint: "" };
  const resources = new ResourceRegistry(
    [...WELL_KNOWN_RESOURCES, ...(options.armAudiences ?? []), ...(options.knownResources ?? [])],
    options.strictResources ?? true,
    (r) => resourceKey(r) === resourceKey(urls.armEndpoint) || directory.hasClientId(r),
  );
  return {
    options,
    subscriptionId,
    tenantId,
    location,
    tls,
    key,
    directory,
    operationFaults,
    state,
    requests: new RequestLog(),
    faults: new FaultInjector(),
    resources,
    issuer: new TokenIssuer(key, () => urls.authorityHost),
    urls,
    federationClient: options.federationCaCerts?.length
      ? Deno.createHttpClient({ caCerts: options.federationCaCerts })
      : undefined,
  };
}

function aadHandler(core: EmulatorCore): Handler {
  const { options, federationClient } = core;
  return createAadHandler({
    directory: core.directory,
    issuer: core.issuer,
    key: core.key,
    log: core.requests,
    faults: core.faults,
    authorityHost: () => core.urls.authorityHost,
    tokenLifetimeSeconds: options.tokenLifetimeSeconds ?? 3599,
    resources: core.resources,
    federatedCredentials: (id) => core.state.federatedCredentials.list(id),
    // Azure AD gives up on a slow issuer; so does the emulator (10 s).
    federationFetch: (url: string) =>
      fetch(url, { client: federationClient, redirect: "error", signal: AbortSignal.timeout(10_000) }),
  });
}

function armHandler(core: EmulatorCore): Handler {
  const { options, urls, tenantId } = core;
  return createArmHandler({
    state: core.state,
    directory: core.directory,
    throttle: new Throttle({
      reads: options.throttle?.reads ?? ARM_DEFAULT_THROTTLE.reads,
      writes: options.throttle?.writes ?? ARM_DEFAULT_THROTTLE.writes,
    }),
    log: core.requests,
    faults: core.faults,
    endpoint: () => urls.armEndpoint,
    lroRetryAfterSeconds: options.lroRetryAfterSeconds,
    computeThrottle: options.computeThrottle === false ? undefined : new ComputeThrottle({
      policies: options.computeThrottle?.policies ?? COMPUTE_DEFAULT_POLICIES,
      retryAfterSeconds: options.computeThrottle?.retryAfterSeconds,
    }),
    auth: () => ({
      publicKey: core.key.publicKey,
      tenantId,
      acceptedAudiences: [
        ...PUBLIC_ARM_AUDIENCES,
        urls.armEndpoint,
        `${urls.armEndpoint}/`,
        ...(options.armAudiences ?? []),
      ],
      expectedIssuer: core.issuer.issuerFor(tenantId),
      authority: `${urls.authorityHost}/${tenantId}`,
    }),
  });
}

/** Azure AD, then ARM (whose token checks name Azure AD's URL); on a failure nothing is left listening. */
async function serveAadAndArm(core: EmulatorCore): Promise<RunningServer[]> {
  const hostname = core.options.hostname ?? "127.0.0.1";
  const servers: RunningServer[] = [];
  try {
    const aad = await serveHandler(
      { hostname, port: core.options.aadPort ?? 0, tls: core.tls },
      aadHandler(core),
    );
    servers.push(aad);
    core.urls.authorityHost = aad.url;
    const arm = await serveHandler(
      { hostname, port: core.options.armPort ?? 0, tls: core.tls },
      armHandler(core),
    );
    servers.push(arm);
    core.urls.armEndpoint = arm.url;
    return servers;
  } catch (e) {
    await Promise.all(servers.map((s) => s.stop()));
    core.federationClient?.close();
    throw e;
  }
}

/** What the instance metadata of one VM or scale-set instance says about itself. */
function describeInstance(
  core: EmulatorCore,
  resource: ComputeResource,
  target: ImdsTarget,
): InstanceDescription {
  const instance = "instance" in target ? String(target.instance) : undefined;
  const index = instance !== undefined && /^\d+$/.test(instance) ? Number(instance) : 0;
  return {
    subscriptionId: core.subscriptionId,
    resourceGroup: resource.resourceGroup,
    location: resource.location,
    name: instance === undefined ? resource.name : `${resource.name}_${instance}`,
    resourceId: instance === undefined ? resource.id : `${resource.id}/virtualMachines/${instance}`,
    vmId: instance === undefined ? resource.uniqueId : crypto.randomUUID(),
    vmScaleSetName: instance === undefined ? "" : resource.name,
    privateIpAddress: `10.240.0.${4 + (index % 250)}`,
    macAddress: macFor(`${idKey(resource.id)}/${instance ?? ""}`),
  };
}

/** The identities IMDS of `resource` serves now (attached, and past the propagation delay). */
function attachedIdentities(state: ArmState, resource: ComputeResource): AttachedIdentities {
  const servable = state.servableIdentities(resource.id);
  const out: AttachedIdentities = {
    user: servable.user.map((u) => ({
      clientId: u.clientId,
      principalId: u.principalId,
      resourceId: u.id,
      system: false,
    })),
  };
  if (servable.system) {
    out.system = {
      clientId: servable.system.clientId,
      principalId: servable.system.principalId,
      resourceId: resource.id,
      system: true,
    };
  }
  return out;
}

function imdsSource(core: EmulatorCore, target: ImdsTarget): ImdsSource {
  const resourceId = "vmResourceId" in target ? target.vmResourceId : target.vmssResourceId;
  const kind = "vmResourceId" in target ? "virtualMachines" : "virtualMachineScaleSets";
  const resource = core.state.getCompute(resourceId, kind);
  if (!resource) throw new Error(`no ${kind} ${resourceId} in the emulator; add it first`);
  const description = describeInstance(core, resource, target);
  return {
    tenantId: core.tenantId,
    instance: () => ({ ...description }),
    identities: () => attachedIdentities(core.state, resource),
  };
}

function imdsHandlerFor(core: EmulatorCore, target: ImdsTarget, limits?: ImdsLimits): Handler {
  const source = imdsSource(core, target);
  return createImdsHandler({
    source,
    issuer: core.issuer,
    instanceName: source.instance().resourceId,
    log: core.requests,
    faults: core.faults,
    limits,
    tokenLifetimeSeconds: core.options.managedIdentityTokenLifetimeSeconds ?? 86399,
    metadataHeader: core.options.imdsMetadataHeader ?? "exact",
    resources: core.resources,
  });
}

type ResourceMethods = Pick<
  AzureEmulator,
  | "addUserAssignedIdentity"
  | "deleteUserAssignedIdentity"
  | "putFederatedCredential"
  | "addVm"
  | "addVmss"
  | "getIdentities"
  | "getResource"
>;

/** The ARM model's resources: identities, their federated credentials, VMs and scale sets. */
function resourceMethods({ state }: EmulatorCore): ResourceMethods {
  return {
    addUserAssignedIdentity(opts) {
      const r = state.addUserAssignedIdentity(opts);
      return {
        id: r.id,
        name: r.name,
        resourceGroup: r.resourceGroup,
        clientId: r.clientId,
        principalId: r.principalId,
        tenantId: r.tenantId,
      };
    },
    deleteUserAssignedIdentity: (id) => state.deleteUserAssignedIdentity(id),
    putFederatedCredential(identityId, credential) {
      if (!state.getUserAssignedIdentity(identityId)) throw new Error(`no identity ${identityId}`);
      const parsed = parseFederatedCredential(credential.name, { properties: credential });
      if (!parsed.ok) throw new Error(parsed.error.message);
      const put = state.federatedCredentials.put(identityId, parsed.value);
      if (!put.ok) throw new Error(put.error.message);
    },
    addVm: (opts) => computeInfo(state.addCompute("virtualMachines", opts)),
    addVmss: (opts) => computeInfo(state.addCompute("virtualMachineScaleSets", opts)),
    getIdentities: (resourceId) => state.identityJson(resourceId),
    getResource(resourceId) {
      const r = state.getCompute(resourceId);
      if (!r) throw new Error(`no VM or scale set ${resourceId}`);
      return state.toJson(r);
    },
  };
}

/** The directory's service principals and their role scopes. */
function principalMethods(
  core: EmulatorCore,
): Pick<AzureEmulator, "registerServicePrincipal" | "setRoleScopes"> {
  const { directory, subscriptionId } = core;
  return {
    setRoleScopes(principal, scopes) {
      const p = directory.find(principal);
      if (!p) throw new Error(`no principal with client or object id ${principal}`);
      if (scopes.assign) p.assignScopes = [...scopes.assign];
      if (scopes.write) p.writeScopes = [...scopes.write];
    },
    registerServicePrincipal(opts = {}) {
      const secret = opts.secret ?? (opts.certificatePem ? undefined : randomSecret());
      const sp: ServicePrincipal = {
        kind: "servicePrincipal",
        clientId: opts.clientId ?? crypto.randomUUID(),
        objectId: crypto.randomUUID(),
        tenantId: opts.tenantId ?? core.tenantId,
        displayName: opts.displayName ?? "emulated service principal",
        secrets: secret ? [secret] : [],
        certificates: opts.certificatePem ? [parseCertificate(opts.certificatePem)] : [],
        assignScopes: opts.assignScopes ?? [`/subscriptions/${subscriptionId}`],
        writeScopes: opts.writeScopes ?? [`/subscriptions/${subscriptionId}`],
      };
      directory.add(sp);
      const info: ServicePrincipalInfo = {
        clientId: sp.clientId,
        tenantId: sp.tenantId,
        objectId: sp.objectId,
      };
      if (secret) info.secret = secret;
      return info;
    },
  };
}

/** IMDS endpoints served on demand; `servers` holds the running ones so `stop` can end them. */
function imdsMethods(
  core: EmulatorCore,
  servers: Set<RunningServer>,
): Pick<AzureEmulator, "imdsHandler" | "startImds"> {
  const imdsHandler = (target: ImdsTarget, limits?: ImdsLimits) => imdsHandlerFor(core, target, limits);
  return {
    imdsHandler,
    async startImds(target) {
      const handler = imdsHandler(target, target.limits);
      const server = await serveHandler(
        { hostname: target.hostname ?? "127.0.0.1", port: target.port ?? 0 },
        handler,
      );
      servers.add(server);
      return {
        url: server.url,
        hostname: server.hostname,
        port: server.port,
        stop: async () => {
          servers.delete(server);
          await server.stop();
        },
      };
    },
  };
}

export async function startAzureEmulator(options: AzureEmulatorOptions = {}): Promise<AzureEmulator> {
  const core = await createCore(options);
  const servers = await serveAadAndArm(core);
  const imdsServers = new Set<RunningServer>();
  const { state, key, federationClient } = core;
  return {
    armEndpoint: core.urls.armEndpoint,
    authorityHost: core.urls.authorityHost,
    caCertPath: core.tls.caCertPath,
    subscriptionId: core.subscriptionId,
    tenantId: core.tenantId,
    location: core.location,
    publicKeyPem: key.publicKeyPem,
    requests: core.requests,
    faults: core.faults,
    operationFaults: core.operationFaults,
    registerResource: (resource) => core.resources.register(resource),
    setImdsPropagationDelayMs(ms) {
      state.options.imdsPropagationDelayMs = checkedDelay(ms);
    },
    ...resourceMethods(core),
    ...principalMethods(core),
    ...imdsMethods(core, imdsServers),
    verifyToken: (jwt, verifyOptions) => verifyToken(jwt, key.publicKey, verifyOptions),
    async stop() {
      const all = [...imdsServers, ...servers];
      imdsServers.clear();
      await Promise.all(all.map((s) => s.stop()));
      federationClient?.close();
    },
  };
}
