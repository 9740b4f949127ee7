// The Instance Metadata Service of one VM or scale-set instance: managed-identity tokens for identities
// attached to it (read live from the ARM model on every request), `/metadata/instance`, and IMDS's limits
// of 20 requests per second and 5 concurrent requests for the identity category.
//
// `createImdsHandler` returns a web-standard handler so the endpoint can also be served by another module
// (e.g. bound to 169.254.169.254:80 inside a network namespace).

import { aadErrorResponse } from "./aad.ts";
import { FaultInjector } from "./faults.ts";
import type { Handler } from "./http_server.ts";
import { armEchoedId } from "./ids.ts";
import {
  type AttachedIdentities,
  IMDS_API_VERSIONS,
  type ImdsError,
  type InstanceDescription,
  instanceDocument,
  lookupMetadata,
  METADATA_HEADER_MISSING,
  NEWEST_VERSIONS,
  parseTokenQuery,
  selectIdentity,
} from "./imds_request.ts";
import { RequestLog } from "./request_log.ts";
import { resourceNotFound } from "./resources.ts";
import { instrument, jsonResponse } from "./service.ts";
import type { TokenIssuer } from "./tokens.ts";

/** Where an IMDS endpoint reads the state of "its" machine. */
export interface ImdsSource {
  tenantId: string;
  /** Identities currently attached (and finished attaching) to the machine. */
  identities(): AttachedIdentities;
  instance(): InstanceDescription;
}

export interface ImdsLimits {
  /** Identity requests accepted per rolling second. */
  requestsPerSecond: number;
  /** Identity requests being served at once. */
  maxConcurrent: number;
}

export const IMDS_IDENTITY_LIMITS: ImdsLimits = { requestsPerSecond: 20, maxConcurrent: 5 };

export interface ImdsHandlerOptions {
  source: ImdsSource;
  issuer: TokenIssuer;
  /** Names this endpoint in the request log (e.g. the VM id). */
  instanceName: string;
  log?: RequestLog;
  faults?: FaultInjector;
  limits?: ImdsLimits;
  /** Lifetime of managed-identity tokens; Azure's are about 24 h. */
  tokenLifetimeSeconds?: number;
  /**
   * How the `Metadata` header value is compared: `exact` (default) accepts only `true`, the one value
   * IMDS's specification allows; `case-insensitive` also accepts `True`, `TRUE`. The header name is
   * case-insensitive either way, as in all of HTTP.
   */
  metadataHeader?: MetadataHeaderCheck;
  /** Resources Azure AD knows; IMDS passes AAD's AADSTS500011 on for others. Any resource when absent. */
  resources?: { has(resource: string): boolean };
}

export type MetadataHeaderCheck = "exact" | "case-insensitive";

/** The answer real IMDS relays when Azure AD refuses the token (an AAD error body, status 400). */
const AAD_AUTHORITY = "https://login.microsoftonline.com";

/** Routes of IMDS (pure). Paths compare case-insensitively, as IMDS does. */
export function matchImdsRoute(pathname: string): string {
  const p = pathname.toLowerCase().replace(/\/+$/, "");
  if (p === "/metadata/identity/oauth2/token") return "imds.token";
  if (p === "/metadata/identity/info") return "imds.identity_info";
  if (p === "/metadata/instance" || p.startsWith("/metadata/instance/")) return "imds.instance";
  if (p === "/metadata/versions") return "imds.versions";
  return "imds.unknown";
}

function errorResponse(e: ImdsError): Response {
  return jsonResponse(e.body, e.status);
}

const INSTANCE_VERSION_ERROR = {
  status: 400,
  body: {
    error:
      "Bad request. api-version is invalid or was not specified in the request. For more information refer " +
      "to aka.ms/azureimds",
    "newest-versions": NEWEST_VERSIONS,
  },
};

function instanceResponse(url: URL, source: ImdsSource): Response {
  const version = url.searchParams.get("api-version");
  if (!version || !IMDS_API_VERSIONS.includes(version)) return errorResponse(INSTANCE_VERSION_ERROR);
  const segments = url.pathname.split("/").filter((s) => s !== "").slice(2);
  const node = lookupMetadata(instanceDocument(source.instance()), segments);
  if (node === undefined) return jsonResponse({ error: "Not found" }, 404);
  const format = url.searchParams.get("format");
  if (typeof node === "string") {
    if (format === "json") {
      return jsonResponse({
        error: "Bad request. Format json is not supported for leaf nodes; use format=text",
      }, 400);
    }
    if (format !== null && format !== "text") {
      return jsonResponse({ error: "Bad request. Unsupported format" }, 400);
    }
    return new Response(node, { headers: { "content-type": "text/plain; charset=utf-8" } });
  }
  if (format !== null && format !== "json") {
    return jsonResponse({ error: `Bad request. Format ${format} is not supported for this request` }, 400);
  }
  return jsonResponse(node);
}

const isIdentityRoute = (route: string) => route === "imds.token" || route === "imds.identity_info";

/** IMDS's identity endpoint limits: requests accepted in the last second, and requests in flight. */
interface IdentityLoad {
  accepted: number[];
  inflight: number;
}

/** Refusals before any route runs: the Metadata header, X-Forwarded-For, and the identity endpoint's limits. */
function imdsGate(
  opts: ImdsHandlerOptions,
  load: IdentityLoad,
  req: Request,
  route: string,
): Response | undefined {
  const limits = opts.limits ?? IMDS_IDENTITY_LIMITS;
  // The header check comes first so probes (which omit it) get their fast 400 even under load.
  const value = req.headers.get("metadata");
  const hasMetadata = opts.metadataHeader === "case-insensitive"
    ? (value ?? "").toLowerCase() === "true"
    : value === "true";
  if (route !== "imds.unknown" && route !== "imds.versions" && !hasMetadata) {
    return isIdentityRoute(route)
      ? errorResponse(METADATA_HEADER_MISSING)
      : jsonResponse({ error: "Bad request. Required metadata header not specified" }, 400);
  }
  if (req.headers.has("x-forwarded-for")) {
    return jsonResponse({
      error: "invalid_request",
      error_description: "Requests with an X-Forwarded-For header are not accepted",
    }, 400);
  }
  if (!isIdentityRoute(route)) return undefined;
  const now = performance.now();
  while (load.accepted.length && now - load.accepted[0] >= 1000) load.accepted.shift();
  if (load.inflight > limits.maxConcurrent || load.accepted.length >= limits.requestsPerSecond) {
    return jsonResponse({ error: "too_many_requests", error_description: "Too many requests" }, 429);
  }
  load.accepted.push(now);
  return undefined;
}

function imdsFaultResponse(status: number): Response {
  return jsonResponse(
    {
      error: status >= 500 ? "unknown" : "invalid_request",
      error_description: status >= 500
        ? "Failed to retrieve token from the Active directory (fault injected by the emulator)"
        : "Fault injected by the emulator",
    },
    status,
  );
}

/** `/metadata/identity/oauth2/token`: picks the identity the query names and issues its token. */
async function tokenResponse(opts: ImdsHandlerOptions, url: URL): Promise<Response> {
  const query = parseTokenQuery(url.searchParams);
  if (!query.ok) return errorResponse(query.error);
  const chosen = selectIdentity(query.value.selector, opts.source.identities());
  if (!chosen.ok) return errorResponse(chosen.error);
  const identity = chosen.value;
  if (opts.resources && !opts.resources.has(query.value.resource)) {
    return aadErrorResponse(
      resourceNotFound(query.value.resource, opts.source.tenantId),
      crypto.randomUUID(),
      AAD_AUTHORITY,
    );
  }
  const token = await opts.issuer.issue(
    {
      clientId: identity.clientId,
      objectId: identity.principalId,
      tenantId: opts.source.tenantId,
      appidacr: "2",
      miResourceId: armEchoedId(identity.resourceId),
    },
    query.value.resource,
    opts.tokenLifetimeSeconds ?? 86399,
  );
  return jsonResponse({
    access_token: token.accessToken,
    client_id: identity.clientId,
    expires_in: String(token.expiresIn),
    expires_on: String(token.expiresOn),
    ext_expires_in: String(token.expiresIn),
    not_before: String(token.notBefore),
    resource: query.value.resource,
    token_type: "Bearer",
    refresh_token: "",
  });
}

/** A request past the gate, by route. */
function imdsRoute(
  opts: ImdsHandlerOptions,
  req: Request,
  url: URL,
  route: string,
): Response | Promise<Response> {
  if (route === "imds.unknown") return jsonResponse({ error: "Not found" }, 404);
  if (route === "imds.versions") return jsonResponse({ apiVersions: IMDS_API_VERSIONS });
  if (req.method !== "GET") {
    return jsonResponse(
      { error: "method_not_allowed", error_description: "Only GET is supported" },
      405,
      {
        allow: "GET",
      },
    );
  }
  if (route === "imds.instance") return instanceResponse(url, opts.source);
  if (route === "imds.identity_info") {
    const v = url.searchParams.get("api-version");
    if (!v || !IMDS_API_VERSIONS.includes(v) || v < "2018-02-01") {
      return errorResponse(INSTANCE_VERSION_ERROR);
    }
    return jsonResponse({ tenantId: opts.source.tenantId });
  }
  return tokenResponse(opts, url);
}

export function createImdsHandler(opts: ImdsHandlerOptions): Handler {
  const load: IdentityLoad = { accepted: [], inflight: 0 };
  const inner = instrument({
    service: "imds",
    log: opts.log ?? new RequestLog(),
    faults: opts.faults ?? new FaultInjector(),
    instance: opts.instanceName,
    route: (_req, url) => matchImdsRoute(url.pathname),
    gate: (req, _url, route) => imdsGate(opts, load, req, route),
    faultResponse: imdsFaultResponse,
    handle: async (req, url, route) => await imdsRoute(opts, req, url, route),
  });

  return async (req, info) => {
    if (!isIdentityRoute(matchImdsRoute(new URL(req.url).pathname))) return await inner(req, info);
    load.inflight++;
    try {
      return await inner(req, info);
    } finally {
      load.inflight--;
    }
  };
}
