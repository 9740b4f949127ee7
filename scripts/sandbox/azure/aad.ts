// Azure AD (Entra ID) for confidential clients: tenant discovery, instance discovery, signing keys and the
// v1 / v2 token endpoints for the client-credentials grant with a secret or a certificate assertion.
// Errors carry Azure AD's shape (`error`, `error_description` with an AADSTS code, `error_codes`, ids).

import { checkClientAssertion } from "./client_assertion.ts";
import {
  type Directory,
  type ManagedIdentityPrincipal,
  secretMatches,
  type ServicePrincipal,
} from "./directory.ts";
import { checkFederatedAssertion } from "./federated_assertion.ts";
import type { FederatedCredential } from "./federated_credentials.ts";
import type { FaultInjector } from "./faults.ts";
import type { Handler } from "./http_server.ts";
import type { SigningKey } from "./jwt.ts";
import type { RequestLog } from "./request_log.ts";
import type { AadErrorInput } from "./aad_error.ts";
import { resourceNotFound } from "./resources.ts";
import { instrument, jsonResponse, type RequestMeta } from "./service.ts";
import type { IssuedToken, TokenIssuer } from "./tokens.ts";

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

interface AadContext {
  directory: Directory;
  issuer: TokenIssuer;
  key: SigningKey;
  log: RequestLog;
  faults: FaultInjector;
  /** `https://host:port` of this endpoint. */
  authorityHost: () => string;
  tokenLifetimeSeconds: number;
  /** Resources tokens may be issued for; any resource when absent. */
  resources?: { has(resource: string): boolean };
  /** Federated identity credentials of a user-assigned identity (by its resource id). */
  federatedCredentials?: (identityResourceId: string) => FederatedCredential[];
  /** How Azure AD reaches an external issuer's discovery document and JWKS (trusting its CA). */
  federationFetch?: (url: string) => Promise<Response>;
}

interface AadRouteMatch {
  route: string;
  tenant?: string;
  version?: "v1" | "v2";
}

const OIDC_SCOPES = new Set(["openid", "profile", "offline_access", "email"]);

/** Names the route of an Azure AD request (pure). */
export function matchAadRoute(pathname: string): AadRouteMatch {
  const parts = pathname.split("/").filter((p) => p !== "");
  const lower = parts.map((p) => p.toLowerCase());
  const tenant = parts[0];
  const rest = lower.slice(1).join("/");
  if (!tenant) return { route: "aad.unknown" };
  if (rest === "oauth2/v2.0/token") return { route: "aad.token", tenant, version: "v2" };
  if (rest === "oauth2/token") return { route: "aad.token", tenant, version: "v1" };
  if (rest === "v2.0/.well-known/openid-configuration") {
    return { route: "aad.discovery", tenant, version: "v2" };
  }
  if (rest === ".well-known/openid-configuration") return { route: "aad.discovery", tenant, version: "v1" };
  if (rest === "discovery/instance") return { route: "aad.instance_discovery", tenant };
  if (rest === "discovery/v2.0/keys" || rest === "discovery/keys") return { route: "aad.keys", tenant };
  return { route: "aad.unknown", tenant };
}

function aadTimestamp(d = new Date()): string {
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function aadErrorResponse(e: AadErrorInput, correlationId: string, authorityHost: string): Response {
  const traceId = crypto.randomUUID();
  const timestamp = aadTimestamp();
  return jsonResponse(
    {
      error: e.error,
      error_description: `AADSTS${e.code}: ${e.description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ` +
        `${correlationId}\r\nTimestamp: ${timestamp}`,
      error_codes: [e.code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `${authorityHost}/error?code=${e.code}`,
    },
    e.status,
    { "cache-control": "no-store, no-cache", pragma: "no-cache" },
  );
}

const isWellKnownTenantAlias = (t: string) =>
  ["common", "organizations", "consumers"].includes(t.toLowerCase());

function tenantNotFound(tenant: string): AadErrorInput {
  return {
    status: 400,
    error: "invalid_request",
    code: 90002,
    description:
      `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing ` +
      "into the correct cloud. Check with your subscription administrator, this may happen if there are no active " +
      "subscriptions for the tenant.",
  };
}

function missingParameter(name: string): AadErrorInput {
  return {
    status: 400,
    error: "invalid_request",
    code: 900144,
    description: `The request body must contain the following parameter: '${name}'.`,
  };
}

/** Azure AD's refusal of a missing or unsupported client_assertion_type, or undefined when it is jwt-bearer. */
function assertionTypeError(assertionType: string | null): AadErrorInput | undefined {
  if (assertionType === null) return missingParameter("client_assertion_type");
  if (assertionType === JWT_BEARER) return undefined;
  return {
    status: 401,
    error: "invalid_client",
    code: 70002,
    description: `Error validating credentials. The client_assertion_type '${assertionType}' is not ` +
      `supported; use '${JWT_BEARER}'.`,
  };
}

function openIdConfiguration(host: string, tenant: string, version: "v1" | "v2"): Record<string, unknown> {
  const issuerTenant = isWellKnownTenantAlias(tenant) ? "{tenantid}" : tenant;
  const v2 = version === "v2";
  const oauth = v2 ? "oauth2/v2.0" : "oauth2";
  return {
    token_endpoint: `${host}/${tenant}/${oauth}/token`,
    token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt", "client_secret_basic"],
    jwks_uri: `${host}/${tenant}/discovery/${v2 ? "v2.0/" : ""}keys`,
    response_modes_supported: ["query", "fragment", "form_post"],
    subject_types_supported: ["pairwise"],
    id_token_signing_alg_values_supported: ["RS256"],
    response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
    scopes_supported: ["openid", "profile", "email", "offline_access"],
    issuer: v2 ? `${host}/${issuerTenant}/v2.0` : `${host}/${issuerTenant}/`,
    request_uri_parameter_supported: false,
    authorization_endpoint: `${host}/${tenant}/${oauth}/authorize`,
    device_authorization_endpoint: `${host}/${tenant}/${oauth}/devicecode`,
    end_session_endpoint: `${host}/${tenant}/${oauth}/logout`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    tenant_region_scope: "NA",
    cloud_instance_name: new URL(host).host,
    cloud_graph_host_name: "graph.windows.net",
    msgraph_host: "graph.microsoft.com",
  };
}

/** Resolves the resource (audience) of a token request, or the error Azure AD gives. */
export function resolveResource(
  version: "v1" | "v2",
  params: URLSearchParams,
): { ok: true; resource: string } | { ok: false; error: AadErrorInput } {
  if (version === "v1") {
    const resource = params.get("resource");
    if (!resource) return { ok: false, error: missingParameter("resource") };
    return { ok: true, resource };
  }
  const scope = params.get("scope");
  if (!scope) return { ok: false, error: missingParameter("scope") };
  const scopes = scope.split(/\s+/).filter((s) => s !== "" && !OIDC_SCOPES.has(s.toLowerCase()));
  if (scopes.length !== 1) {
    return {
      ok: false,
      error: {
        status: 400,
        error: "invalid_scope",
        code: 70011,
        description:
          `The provided value for the input parameter 'scope' is not valid. The scope ${scope} is not valid.`,
      },
    };
  }
  if (!scopes[0].endsWith("/.default")) {
    return {
      ok: false,
      error: {
        status: 400,
        error: "invalid_scope",
        code: 1002012,
        description:
          `The provided value for scope ${scopes[0]} is not valid. Client credential flows must have a ` +
          "scope value with /.default suffixed to the resource identifier (application ID URI).",
      },
    };
  }
  return { ok: true, resource: scopes[0].slice(0, -"/.default".length) };
}

async function authenticateClient(
  sp: ServicePrincipal,
  params: URLSearchParams,
  audiences: string[],
): Promise<AadErrorInput | "secret" | "certificate"> {
  const secret = params.get("client_secret");
  const assertion = params.get("client_assertion");
  const assertionType = params.get("client_assertion_type");
  if (secret !== null && assertion !== null) {
    return {
      status: 401,
      error: "invalid_client",
      code: 50012,
      description:
        "Authentication failed: the request carries both client_secret and client_assertion; send one.",
    };
  }
  if (secret !== null) {
    if (!sp.secrets.some((s) => secretMatches(secret, s))) {
      return {
        status: 401,
        error: "invalid_client",
        code: 7000215,
        description:
          "Invalid client secret provided. Ensure the secret being sent in the request is the client " +
          `secret value, not the client secret ID, for a secret added to app '${sp.clientId}'.`,
      };
    }
    return "secret";
  }
  if (assertion !== null) {
    const typeError = assertionTypeError(assertionType);
    if (typeError) return typeError;
    const failure = await checkClientAssertion(assertion, {
      clientId: sp.clientId,
      audiences,
      certificates: sp.certificates,
      now: Math.floor(Date.now() / 1000),
      skewSeconds: 300,
    });
    if (failure) {
      return { status: 401, error: "invalid_client", code: failure.code, description: failure.description };
    }
    return "certificate";
  }
  return {
    status: 401,
    error: "invalid_client",
    code: 7000218,
    description:
      "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
  };
}

/** Discovery, instance discovery, keys, and the 404 for unknown paths; undefined for the token route. */
function handleMetadata(
  ctx: AadContext,
  url: URL,
  match: AadRouteMatch,
  host: string,
  fail: (e: AadErrorInput) => Response,
): Response | undefined {
  const tenant = match.tenant ?? "";
  if (match.route === "aad.instance_discovery") {
    const authorizeEndpoint = url.searchParams.get("authorization_endpoint");
    const endpointTenant = authorizeEndpoint
      ? new URL(authorizeEndpoint, host).pathname.split("/")[1]
      : "common";
    const hostPort = new URL(host).host;
    return jsonResponse({
      tenant_discovery_endpoint: `${host}/${endpointTenant}/v2.0/.well-known/openid-configuration`,
      "api-version": "1.1",
      metadata: [{ preferred_network: hostPort, preferred_cache: hostPort, aliases: [hostPort] }],
    });
  }
  if (match.route === "aad.keys") return jsonResponse({ keys: [ctx.key.jwk] });
  if (match.route === "aad.discovery") {
    if (!isWellKnownTenantAlias(tenant) && !ctx.directory.hasTenant(tenant)) {
      return fail({ ...tenantNotFound(tenant), error: "invalid_tenant" });
    }
    return jsonResponse(openIdConfiguration(host, tenant, match.version!));
  }
  if (match.route !== "aad.token") {
    return jsonResponse({ error: "not_found", error_description: `No route for ${url.pathname}.` }, 404);
  }
  return undefined;
}

/** A client-credentials request, read and checked up to the point where the client must be known. */
interface TokenRequest {
  params: URLSearchParams;
  clientId: string;
  resource: string;
  tenant: string;
}

async function readTokenRequest(
  ctx: AadContext,
  req: Request,
  match: AadRouteMatch,
  meta: RequestMeta,
): Promise<TokenRequest | AadErrorInput> {
  if (req.method !== "POST") {
    return {
      status: 400,
      error: "invalid_request",
      code: 900561,
      description: `The endpoint only accepts POST, OPTIONS requests. Received a ${req.method} request.`,
    };
  }
  // Azure AD reads only form bodies; anything else looks like a request without parameters.
  const contentType = req.headers.get("content-type") ?? "";
  const params = /^application\/x-www-form-urlencoded\b/i.test(contentType.trim())
    ? new URLSearchParams(await req.text())
    : new URLSearchParams();
  const grantType = params.get("grant_type");
  if (!grantType) return missingParameter("grant_type");
  if (grantType !== "client_credentials") {
    return {
      status: 400,
      error: "unsupported_grant_type",
      code: 70003,
      description: `The app requested an unsupported grant type '${grantType}'.`,
    };
  }
  const clientId = params.get("client_id");
  if (!clientId) return missingParameter("client_id");
  meta.caller = clientId;
  const resource = resolveResource(match.version!, params);
  if (!resource.ok) return resource.error;
  const tenant = match.tenant ?? "";
  if (isWellKnownTenantAlias(tenant)) {
    return {
      status: 400,
      error: "invalid_request",
      code: 50059,
      description:
        "No tenant-identifying information found in either the request or implied by any provided " +
        "credentials.",
    };
  }
  if (!ctx.directory.hasTenant(tenant)) return tenantNotFound(tenant);
  return { params, clientId, resource: resource.resource, tenant };
}

/** A token for a user-assigned identity that presents a federated assertion. */
async function issueFederated(
  ctx: AadContext,
  identity: ManagedIdentityPrincipal,
  r: TokenRequest,
): Promise<IssuedToken | AadErrorInput> {
  const failure = await authenticateFederated(ctx, identity, r.params);
  if (failure) return failure;
  if (ctx.resources && !ctx.resources.has(r.resource)) return resourceNotFound(r.resource, r.tenant);
  return await ctx.issuer.issue(
    {
      clientId: identity.clientId,
      objectId: identity.objectId,
      tenantId: identity.tenantId,
      appidacr: "2",
      miResourceId: identity.resourceId,
    },
    r.resource,
    ctx.tokenLifetimeSeconds,
  );
}

/** A token for an application that presents its secret or a certificate assertion. */
async function issueForApplication(
  ctx: AadContext,
  sp: ServicePrincipal,
  r: TokenRequest,
  host: string,
): Promise<IssuedToken | AadErrorInput> {
  const { tenant } = r;
  const audiences = [
    `${host}/${tenant}/oauth2/v2.0/token`,
    `${host}/${tenant}/oauth2/token`,
    `${host}/${sp.tenantId}/oauth2/v2.0/token`,
    `${host}/${sp.tenantId}/oauth2/token`,
    `${host}/${sp.tenantId}/v2.0`,
  ];
  const authn = await authenticateClient(sp, r.params, audiences);
  if (typeof authn !== "string") return authn;
  if (ctx.resources && !ctx.resources.has(r.resource)) return resourceNotFound(r.resource, tenant);
  return await ctx.issuer.issue(
    {
      clientId: sp.clientId,
      objectId: sp.objectId,
      tenantId: sp.tenantId,
      appidacr: authn === "secret" ? "1" : "2",
    },
    r.resource,
    ctx.tokenLifetimeSeconds,
  );
}

function unknownClient(clientId: string, tenant: string): AadErrorInput {
  return {
    status: 400,
    error: "unauthorized_client",
    code: 700016,
    description:
      `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This ` +
      "can happen if the application has not been installed by the administrator of the tenant or consented " +
      "to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
  };
}

export function createAadHandler(ctx: AadContext): Handler {
  return instrument({
    service: "aad",
    log: ctx.log,
    faults: ctx.faults,
    route: (_req, url) => matchAadRoute(url.pathname).route,
    faultResponse: (status) =>
      aadErrorResponse(
        {
          status,
          error: status >= 500 ? "temporarily_unavailable" : "invalid_request",
          code: 90033,
          description: "A transient error has occurred (fault injected by the emulator). Please try again.",
        },
        crypto.randomUUID(),
        ctx.authorityHost(),
      ),
    handle: async (req, url, _route, meta) => {
      const host = ctx.authorityHost();
      const correlationId = req.headers.get("client-request-id") ?? crypto.randomUUID();
      const fail = (e: AadErrorInput) => aadErrorResponse(e, correlationId, host);
      const match = matchAadRoute(url.pathname);
      const metadata = handleMetadata(ctx, url, match, host, fail);
      if (metadata) return metadata;
      const r = await readTokenRequest(ctx, req, match, meta);
      if (!("clientId" in r)) return fail(r);
      const sp = ctx.directory.servicePrincipal(r.tenant, r.clientId);
      const federated = sp ? undefined : ctx.directory.userAssignedIdentity(r.tenant, r.clientId);
      const issued = federated
        ? await issueFederated(ctx, federated, r)
        : sp
        ? await issueForApplication(ctx, sp, r, host)
        : unknownClient(r.clientId, r.tenant);
      if (!("accessToken" in issued)) return fail(issued);
      return tokenResponse(match.version!, issued, r.resource);
    },
  });
}

function tokenResponse(version: "v1" | "v2", token: IssuedToken, resource: string): Response {
  const noStore = { "cache-control": "no-store, no-cache", pragma: "no-cache" };
  if (version === "v2") {
    return jsonResponse(
      {
        token_type: "Bearer",
        expires_in: token.expiresIn,
        ext_expires_in: token.expiresIn,
        access_token: token.accessToken,
      },
      200,
      noStore,
    );
  }
  return jsonResponse(
    {
      token_type: "Bearer",
      expires_in: String(token.expiresIn),
      ext_expires_in: String(token.expiresIn),
      expires_on: String(token.expiresOn),
      not_before: String(token.notBefore),
      resource,
      access_token: token.accessToken,
    },
    200,
    noStore,
  );
}

/** A user-assigned identity authenticates only with a federated assertion (workload identity federation). */
async function authenticateFederated(
  ctx: AadContext,
  identity: ManagedIdentityPrincipal,
  params: URLSearchParams,
): Promise<AadErrorInput | undefined> {
  const assertion = params.get("client_assertion");
  const assertionType = params.get("client_assertion_type");
  if (assertion === null) {
    return {
      status: 401,
      error: "invalid_client",
      code: 7000218,
      description: "The request body must contain the following parameter: 'client_assertion' or " +
        `'client_secret'. Managed identity '${identity.clientId}' accepts only a federated client assertion.`,
    };
  }
  const typeError = assertionTypeError(assertionType);
  if (typeError) return typeError;
  const failure = await checkFederatedAssertion(assertion, {
    clientId: identity.clientId,
    credentials: ctx.federatedCredentials?.(identity.resourceId) ?? [],
    fetch: ctx.federationFetch ?? ((url) => fetch(url)),
    now: Math.floor(Date.now() / 1000),
    skewSeconds: FEDERATED_SKEW_SECONDS,
  });
  if (!failure) return undefined;
  return {
    status: failure.code === 90061 ? 400 : 401,
    error: failure.code === 90061 ? "invalid_request" : "invalid_client",
    code: failure.code,
    description: failure.description,
  };
}

/** Clock skew tolerated on a federated assertion's `exp` / `nbf` (small: the assertion lives minutes). */
const FEDERATED_SKEW_SECONDS = 60;
