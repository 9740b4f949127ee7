// Azure Resource Manager routes: VM / scale-set GET and PATCH (identity), user-assigned identity GET and
// Compute operation status, behind ARM's front door (bearer auth, throttling, api-version checks).

import { type ArmAuthConfig, authenticateArm } from "./arm_auth.ts";
import {
  type ArmError,
  armError,
  armErrorBody,
  authorizationFailed,
  invalidRequestContent,
  resourceNotFound,
  subscriptionNotFound,
} from "./arm_errors.ts";
import type { Directory } from "./directory.ts";
import {
  FEDERATED_CREDENTIAL_TYPE,
  federatedCredentialToJson,
  parseFederatedCredential,
} from "./federated_credentials.ts";
import type { FaultInjector } from "./faults.ts";
import type { Handler } from "./http_server.ts";
import type { ComputeThrottle } from "./compute_throttle.ts";
import { computeId, type ComputeKind, idKey, isWithinScope } from "./ids.ts";
import { operationToJson } from "./lro.ts";
import {
  matchSubscriptionsPath,
  subscriptionsAnswer,
  subscriptionsApiVersionError,
  type SubscriptionsResource,
} from "./arm_subscriptions.ts";
import type { RequestLog } from "./request_log.ts";
import { instrument, jsonResponse, type RequestMeta } from "./service.ts";
import { type ArmState, identityResourceToJson } from "./state.ts";
import type { OperationClass, Throttle } from "./throttle.ts";

/** Compute api-versions with the dictionary form of `userAssignedIdentities` (2018-06-01 on). */
const COMPUTE_API_VERSIONS = [
  "2018-06-01",
  "2018-10-01",
  "2019-03-01",
  "2019-07-01",
  "2019-12-01",
  "2020-06-01",
  "2020-12-01",
  "2021-03-01",
  "2021-04-01",
  "2021-07-01",
  "2021-11-01",
  "2022-03-01",
  "2022-08-01",
  "2022-11-01",
  "2023-03-01",
  "2023-07-01",
  "2023-09-01",
  "2024-03-01",
  "2024-07-01",
  "2024-11-01",
  "2025-04-01",
  "2025-11-01",
  "2026-04-01",
];

const MSI_API_VERSIONS = [
  "2015-08-31-preview",
  "2018-11-30",
  "2021-09-30-preview",
  "2022-01-31-preview",
  "2023-01-31",
  "2023-07-31-preview",
  "2024-11-30",
  "2025-01-31-preview",
];

/** MSI api-versions that know federated identity credentials (2022-01-31-preview on). */
const FEDERATED_CREDENTIAL_API_VERSIONS = MSI_API_VERSIONS.filter((v) => v >= "2022-01-31-preview");

type ArmResource =
  | "vm"
  | "vmss"
  | "vmList"
  | "identity"
  | "fic"
  | "ficList"
  | "operation"
  | SubscriptionsResource;

interface ArmRouteMatch {
  /** Route name for logs and faults, e.g. `vmss.patch`; `arm.unknown` when no route matched. */
  route: string;
  resource?: ArmResource;
  subscriptionId?: string;
  resourceGroup?: string;
  name?: string;
  location?: string;
  /** `fic` routes: the federated identity credential's name. */
  child?: string;
}

const SEG = "([^/]+)";
const RG_PREFIX = `^/subscriptions/${SEG}/resourcegroups/${SEG}/providers/`;
const PATTERNS: [ArmResource, RegExp][] = [
  ["vm", new RegExp(`${RG_PREFIX}microsoft\\.compute/virtualmachines/${SEG}/?$`, "i")],
  ["vmss", new RegExp(`${RG_PREFIX}microsoft\\.compute/virtualmachinescalesets/${SEG}/?$`, "i")],
  // VirtualMachines_List, what the original's demo app calls with its pod's token.
  ["vmList", new RegExp(`${RG_PREFIX}microsoft\\.compute/virtualmachines/?$`, "i")],
  ["identity", new RegExp(`${RG_PREFIX}microsoft\\.managedidentity/userassignedidentities/${SEG}/?$`, "i")],
  [
    "fic",
    new RegExp(
      `${RG_PREFIX}microsoft\\.managedidentity/userassignedidentities/${SEG}/federatedidentitycredentials/${SEG}/?$`,
      "i",
    ),
  ],
  [
    "ficList",
    new RegExp(
      `${RG_PREFIX}microsoft\\.managedidentity/userassignedidentities/${SEG}/federatedidentitycredentials/?$`,
      "i",
    ),
  ],
  [
    "operation",
    new RegExp(
      `^/subscriptions/${SEG}/providers/microsoft\\.compute/locations/${SEG}/operations/${SEG}/?$`,
      "i",
    ),
  ],
];

/** Names the route of an ARM request (pure). */
export function matchArmRoute(method: string, pathname: string): ArmRouteMatch {
  let path: string;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    return { route: "arm.unknown" };
  }
  const tenantLevel = matchSubscriptionsPath(path);
  if (tenantLevel) return { route: `${tenantLevel.resource}.${method.toLowerCase()}`, ...tenantLevel };
  for (const [resource, re] of PATTERNS) {
    const m = re.exec(path);
    if (!m) continue;
    const route = `${resource}.${method.toLowerCase()}`;
    if (resource === "operation") {
      return { route, resource, subscriptionId: m[1], location: m[2], name: m[3] };
    }
    const found: ArmRouteMatch = { route, resource, subscriptionId: m[1], resourceGroup: m[2], name: m[3] };
    if (resource === "fic") found.child = m[4];
    return found;
  }
  return { route: "arm.unknown" };
}

interface ArmContext {
  state: ArmState;
  directory: Directory;
  throttle: Throttle;
  log: RequestLog;
  faults: FaultInjector;
  auth: () => ArmAuthConfig;
  /** Base URL of this ARM endpoint, for `Azure-AsyncOperation`. */
  endpoint: () => string;
  /** Retry-After (seconds) on a PATCH and on polls of a running operation; none when undefined. */
  lroRetryAfterSeconds?: number;
  /** The Compute RP's per-resource policies; none when absent. */
  computeThrottle?: ComputeThrottle;
}

function errorResponse(err: ArmError, headers: Record<string, string> = {}): Response {
  return jsonResponse(armErrorBody(err), err.status, headers);
}

function apiVersionError(
  resource: Exclude<ArmResource, SubscriptionsResource>,
  version: string | null,
  location: string,
): ArmError | undefined {
  if (version === null || version === "") {
    return armError(
      400,
      "MissingApiVersionParameter",
      "The api-version query parameter (?api-version=) is required for all requests.",
    );
  }
  const supported = resource === "identity"
    ? MSI_API_VERSIONS
    : resource === "fic" || resource === "ficList"
    ? FEDERATED_CREDENTIAL_API_VERSIONS
    : COMPUTE_API_VERSIONS;
  if (supported.includes(version)) return undefined;
  const type = {
    vm: "virtualMachines",
    vmss: "virtualMachineScaleSets",
    vmList: "virtualMachines",
    identity: "userAssignedIdentities",
    fic: "userAssignedIdentities/federatedIdentityCredentials",
    ficList: "userAssignedIdentities/federatedIdentityCredentials",
    operation: "locations/operations",
  }[resource];
  return armError(
    400,
    "NoRegisteredProviderFound",
    `No registered resource provider found for location '${location}' and API version '${version}' for type ` +
      `'${type}'. The supported api-versions are '${supported.join(", ")}'.`,
  );
}

const KIND: Record<"vm" | "vmss", ComputeKind> = { vm: "virtualMachines", vmss: "virtualMachineScaleSets" };

/** A write's JSON body, or the error ARM answers for a wrong content type or unparsable JSON. */
async function readJsonBody(
  req: Request,
): Promise<{ ok: true; value: unknown } | { ok: false; error: ArmError }> {
  const contentType = req.headers.get("content-type") ?? "";
  if (!/^application\/json\b/i.test(contentType.trim())) {
    return {
      ok: false,
      error: armError(
        415,
        "UnsupportedMediaType",
        `The content media type '${contentType}' is not supported. Only 'application/json' is supported.`,
      ),
    };
  }
  try {
    return { ok: true, value: JSON.parse(await req.text()) };
  } catch (e) {
    return { ok: false, error: invalidRequestContent(e instanceof Error ? e.message : String(e)) };
  }
}

/** Authentication and the subscription's request budget; the caller's object id and the headers, or an answer. */
type Admission = { ok: true; oid: string; headers: Record<string, string> } | {
  ok: false;
  response: Response;
};

async function admit(
  ctx: ArmContext,
  req: Request,
  common: Record<string, string>,
  meta: RequestMeta,
): Promise<Admission> {
  const auth = await authenticateArm(req.headers.get("authorization"), ctx.auth());
  if (!auth.ok) {
    return {
      ok: false,
      response: errorResponse(auth.error, { ...common, "www-authenticate": auth.wwwAuthenticate }),
    };
  }
  const { oid, appid } = auth.claims;
  meta.caller = appid;
  const cls: OperationClass = req.method === "GET" || req.method === "HEAD" ? "reads" : "writes";
  const taken = ctx.throttle.take(oid, cls);
  const remainingHeader = `x-ms-ratelimit-remaining-subscription-${cls}`;
  if (taken.ok) {
    return { ok: true, oid, headers: { ...common, [remainingHeader]: String(taken.remaining) } };
  }
  const verb = cls === "reads" ? "read" : "write";
  const error = armError(
    429,
    "SubscriptionRequestsThrottled",
    `Number of '${verb}' requests for subscription '${ctx.state.subscriptionId}' actor ` +
      `'${oid}' exceeded. Please try again after '${taken.retryAfterSeconds}' seconds after ` +
      "additional tokens are available. Refer to https://aka.ms/arm-throttling",
  );
  return {
    ok: false,
    response: errorResponse(error, {
      ...common,
      "retry-after": String(taken.retryAfterSeconds),
      [remainingHeader]: "0",
    }),
  };
}

/** ARM's answer for a request no handler may see: unknown route, bad api-version, other subscription, method. */
function routeError(
  ctx: ArmContext,
  req: Request,
  url: URL,
  match: ArmRouteMatch,
  headers: Record<string, string>,
): Response | undefined {
  if (!match.resource) {
    return errorResponse(
      armError(404, "InvalidResourceType", `The emulator has no route for '${req.method} ${url.pathname}'.`),
      headers,
    );
  }
  const resource = match.resource;
  const tenantLevel = resource === "subscriptionList" || resource === "tenantList";
  const versionError =
    resource === "subscription" || resource === "subscriptionList" || resource === "tenantList"
      ? subscriptionsApiVersionError(url.searchParams.get("api-version"))
      : apiVersionError(
        resource,
        url.searchParams.get("api-version"),
        match.location ?? ctx.state.options.location,
      );
  if (versionError) return errorResponse(versionError, headers);
  if (!tenantLevel && match.subscriptionId!.toLowerCase() !== ctx.state.subscriptionId.toLowerCase()) {
    return errorResponse(subscriptionNotFound(match.subscriptionId!), headers);
  }
  const allowed = match.resource === "vm" || match.resource === "vmss"
    ? ["GET", "PATCH"]
    : match.resource === "fic"
    ? ["GET", "PUT", "DELETE"]
    : ["GET"];
  if (allowed.includes(req.method)) return undefined;
  return errorResponse(
    armError(
      405,
      "MethodNotAllowed",
      `The emulator supports ${allowed.join(" and ")} on this resource type, not ${req.method}.`,
    ),
    { ...headers, allow: allowed.join(", ") },
  );
}

/** Everything but VMs and scale sets: operation polls, the VM list, federated credentials, identities. */
function handleOther(
  ctx: ArmContext,
  req: Request,
  match: ArmRouteMatch,
  oid: string,
  headers: Record<string, string>,
): Response | Promise<Response> {
  if (match.resource === "operation") {
    const op = ctx.state.operations.get(match.name!);
    if (!op) return errorResponse(ctx.state.operationNotFound(match.name!), headers);
    const pollAgain = op.status === "InProgress" && ctx.lroRetryAfterSeconds !== undefined;
    return jsonResponse(
      operationToJson(op),
      200,
      pollAgain ? { ...headers, "retry-after": String(ctx.lroRetryAfterSeconds) } : headers,
    );
  }
  if (
    match.resource === "subscriptionList" || match.resource === "tenantList" ||
    match.resource === "subscription"
  ) {
    const answer = subscriptionsAnswer(match.resource, match.subscriptionId, ctx.directory.byObjectId(oid), {
      subscriptionId: ctx.state.subscriptionId,
      tenantId: ctx.state.tenantId,
    });
    return answer.ok ? jsonResponse(answer.body, 200, headers) : errorResponse(answer.error, headers);
  }
  if (match.resource === "vmList") {
    const listed = ctx.state.listCompute("virtualMachines", match.resourceGroup!);
    if (!listed.ok) return errorResponse(listed.error, headers);
    return jsonResponse({ value: listed.value.map((r) => ctx.state.toJson(r)) }, 200, headers);
  }
  if (match.resource === "fic" || match.resource === "ficList") {
    return handleFederatedCredential(ctx, req, match, oid, headers);
  }
  const found = ctx.state.findIdentity(match.resourceGroup!, match.name!);
  if (!found.ok) return errorResponse(found.error, headers);
  return jsonResponse(identityResourceToJson(found.value), 200, headers);
}

/** GET or PATCH of a VM / scale set: RBAC, the Compute RP's throttle, and the PATCH as an LRO. */
async function handleCompute(
  ctx: ArmContext,
  req: Request,
  url: URL,
  match: ArmRouteMatch & { resource: "vm" | "vmss" },
  oid: string,
  headers: Record<string, string>,
): Promise<Response> {
  const kind = KIND[match.resource];
  const caller = ctx.directory.byObjectId(oid);
  if (req.method !== "GET") {
    // ARM's RBAC check runs before the resource provider sees the request, so it wins over a 404.
    const scope = computeId(match.subscriptionId!, match.resourceGroup!, kind, match.name!);
    if (!caller?.writeScopes.some((s) => isWithinScope(scope, s))) {
      return errorResponse(authorizationFailed(oid, `Microsoft.Compute/${kind}/write`, scope), headers);
    }
  }
  const found = ctx.state.findCompute(kind, match.resourceGroup!, match.name!);
  if (!found.ok) return errorResponse(found.error, headers);
  const resource = found.value;
  if (ctx.computeThrottle) {
    const taken = ctx.computeThrottle.take(kind, req.method === "GET" ? "read" : "write", idKey(resource.id));
    if (taken.remainingHeader) headers["x-ms-ratelimit-remaining-resource"] = taken.remainingHeader;
    if (!taken.ok) {
      return errorResponse(taken.error, { ...headers, "retry-after": String(taken.retryAfterSeconds) });
    }
  }
  if (req.method === "GET") return jsonResponse(ctx.state.toJson(resource), 200, headers);

  const body = await readJsonBody(req);
  if (!body.ok) return errorResponse(body.error, headers);
  const patched = ctx.state.patchCompute(resource, body.value, caller);
  if (!patched.ok) return errorResponse(patched.error, headers);
  const op = patched.value;
  const asyncUrl =
    `${ctx.endpoint()}/subscriptions/${ctx.state.subscriptionId}/providers/Microsoft.Compute/` +
    `locations/${resource.location}/operations/${op.id}?p=${crypto.randomUUID()}&api-version=` +
    `${url.searchParams.get("api-version")}`;
  const lroHeaders: Record<string, string> = { ...headers, "azure-asyncoperation": asyncUrl };
  if (ctx.lroRetryAfterSeconds !== undefined) lroHeaders["retry-after"] = String(ctx.lroRetryAfterSeconds);
  return jsonResponse(ctx.state.toJson(resource), 200, lroHeaders);
}

export function createArmHandler(ctx: ArmContext): Handler {
  return instrument({
    service: "arm",
    log: ctx.log,
    faults: ctx.faults,
    route: (req, url) => matchArmRoute(req.method, url.pathname).route,
    faultResponse: (status, fault) =>
      errorResponse(
        armError(
          status,
          status >= 500 ? "InternalServerError" : "InjectedFault",
          "Fault injected by the emulator.",
        ),
        fault.retryAfterSeconds !== undefined ? { "retry-after": String(fault.retryAfterSeconds) } : {},
      ),
    handle: async (req, url, _route, meta) => {
      const requestId = crypto.randomUUID();
      const common: Record<string, string> = {
        "x-ms-request-id": requestId,
        "x-ms-correlation-request-id": req.headers.get("x-ms-correlation-request-id") ?? requestId,
      };
      const match = matchArmRoute(req.method, url.pathname);
      const admitted = await admit(ctx, req, common, meta);
      if (!admitted.ok) return admitted.response;
      const { oid, headers } = admitted;
      const refused = routeError(ctx, req, url, match, headers);
      if (refused) return refused;
      if (match.resource === "vm" || match.resource === "vmss") {
        return await handleCompute(ctx, req, url, { ...match, resource: match.resource }, oid, headers);
      }
      return await handleOther(ctx, req, match, oid, headers);
    },
  });
}

/** GET / PUT / DELETE of one federated identity credential, and the list of an identity's credentials. */
async function handleFederatedCredential(
  ctx: ArmContext,
  req: Request,
  match: ArmRouteMatch,
  callerObjectId: string,
  headers: Record<string, string>,
): Promise<Response> {
  const found = ctx.state.findIdentity(match.resourceGroup!, match.name!);
  if (!found.ok) return errorResponse(found.error, headers);
  const identity = found.value;
  const store = ctx.state.federatedCredentials;
  if (match.resource === "ficList") {
    const value = store.list(identity.id).map((c) => federatedCredentialToJson(identity.id, c));
    return jsonResponse({ value }, 200, headers);
  }
  const name = match.child!;
  if (req.method === "GET") {
    const c = store.get(identity.id, name);
    if (!c) {
      return errorResponse(
        resourceNotFound(FEDERATED_CREDENTIAL_TYPE, `${identity.name}/${name}`, match.resourceGroup!),
        headers,
      );
    }
    return jsonResponse(federatedCredentialToJson(identity.id, c), 200, headers);
  }
  const caller = ctx.directory.byObjectId(callerObjectId);
  if (!caller?.writeScopes.some((s) => isWithinScope(identity.id, s))) {
    return errorResponse(
      authorizationFailed(
        callerObjectId,
        `${FEDERATED_CREDENTIAL_TYPE}/${req.method === "DELETE" ? "delete" : "write"}`,
        identity.id,
      ),
      headers,
    );
  }
  if (req.method === "DELETE") {
    return store.delete(identity.id, name) ? new Response(null, { status: 200, headers }) : new Response(
      null,
      { status: 204, headers },
    );
  }
  const body = await readJsonBody(req);
  if (!body.ok) return errorResponse(body.error, headers);
  const parsed = parseFederatedCredential(name, body.value);
  if (!parsed.ok) return errorResponse(parsed.error, headers);
  const put = store.put(identity.id, parsed.value);
  if (!put.ok) return errorResponse(put.error, headers);
  return jsonResponse(
    federatedCredentialToJson(identity.id, parsed.value),
    put.value.created ? 201 : 200,
    headers,
  );
}
