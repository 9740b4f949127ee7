// Federated mode's token source: the calling pod's service-account token (a TokenRequest bound to that
// pod, audience api://AzureADTokenExchange, 10 minutes) is exchanged at Azure AD's v2 endpoint for the
// identity's token (client-credentials grant with a jwt-bearer client assertion). Nothing is attached to
// the VM, so the node's IMDS has nothing to give for these identities. Pure helpers first, then the HTTP.

import { KubeApiError, type KubeClient } from "../lib/kube/rest.ts";
import { postTokenForm } from "./aad_client.ts";
import type { UpstreamAnswer } from "./imds_client.ts";

export const TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange";
/** The shortest TokenRequest the apiserver grants (and the one the admission policy's bound allows). */
const SERVICE_ACCOUNT_TOKEN_SECONDS = 600;
const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** What NMI needs of the calling pod to request its service-account token. */
export interface FederatedPod {
  name: string;
  namespace: string;
  uid: string;
  /** `spec.serviceAccountName`, "default" when empty (as the apiserver's admission sets it). */
  serviceAccount: string;
  nodeName: string;
}

/** The TokenRequest body: one audience, bound to the pod (it dies with the pod), 600 s. */
export function tokenRequestBody(pod: FederatedPod): Record<string, unknown> {
  return {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
    spec: {
      audiences: [TOKEN_EXCHANGE_AUDIENCE],
      expirationSeconds: SERVICE_ACCOUNT_TOKEN_SECONDS,
      boundObjectRef: { apiVersion: "v1", kind: "Pod", name: pod.name, uid: pod.uid },
    },
  };
}

/**
 * The v2 scope for an IMDS resource: `<resource>/.default`, keeping a trailing slash (so
 * `https://management.azure.com/` becomes `https://management.azure.com//.default`): Azure AD then issues
 * the token for exactly the resource the client named, with the same `aud` IMDS would give.
 */
export function scopeFor(resource: string): string {
  return `${resource}/.default`;
}

/** The AADSTS code of an Azure AD error answer, if any. */
export function aadstsCode(body: unknown): number | undefined {
  const o = (body ?? {}) as { error_codes?: unknown; error_description?: unknown };
  if (Array.isArray(o.error_codes) && typeof o.error_codes[0] === "number") return o.error_codes[0];
  const m = typeof o.error_description === "string" ? /AADSTS(\d+)/.exec(o.error_description) : null;
  return m ? Number(m[1]) : undefined;
}

/** What to fix for each federation error, in the words of the credential's fields. */
export function federationHint(code: number | undefined, subject: string, issuer: string): string {
  switch (code) {
    case 700211:
      return `the federated credential's issuer must be the cluster's OIDC issuer '${issuer}'`;
    case 700212:
      return `the federated credential's audience must be '${TOKEN_EXCHANGE_AUDIENCE}'`;
    case 700213:
      return `the federated credential's subject must be '${subject}' (exact, case-sensitive)`;
    case 70021:
      return `no federated credential on the identity matches issuer '${issuer}', subject '${subject}' and ` +
        `audience '${TOKEN_EXCHANGE_AUDIENCE}' (a new credential can take a minute to propagate)`;
    case 700024:
      return "the service-account token is outside its valid time: check the node's and the apiserver's clocks";
    case 90061:
    case 50166:
      return `Azure AD cannot fetch '${issuer}/.well-known/openid-configuration' or its JWKS: the issuer must ` +
        "be public and allow unauthenticated discovery";
    case 7000272:
    case 700027:
      return "the issuer's JWKS does not verify the token: the service-account signing key changed and the " +
        "published JWKS lags, or the issuer URL points at another cluster";
    case 700016:
      return "the identity's client id is unknown in the tenant: check spec.clientID and the tenant";
    default:
      return "see Azure AD's description";
  }
}

/** The subject Azure AD sees for a pod's service account. */
export function subjectOf(pod: Pick<FederatedPod, "namespace" | "serviceAccount">): string {
  return `system:serviceaccount:${pod.namespace}:${pod.serviceAccount}`;
}

interface ServiceAccountToken {
  token: string;
  /** Epoch seconds. */
  expiresOn: number;
}

/** TokenRequest for the pod's service account; throws KubeApiError when the apiserver refuses. */
export async function requestServiceAccountToken(
  client: KubeClient,
  pod: FederatedPod,
  signal?: AbortSignal,
): Promise<ServiceAccountToken> {
  const path = `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/serviceaccounts/${
    encodeURIComponent(pod.serviceAccount)
  }/token`;
  const answer = await client.request<{ status?: { token?: string; expirationTimestamp?: string } }>(
    "POST",
    path,
    { body: tokenRequestBody(pod), signal },
  );
  const token = answer.status?.token;
  const exp = Date.parse(answer.status?.expirationTimestamp ?? "");
  if (!token || !Number.isFinite(exp)) {
    throw new KubeApiError(500, "InternalError", `TokenRequest for ${pod.namespace}/${pod.name}: no token`);
  }
  return { token, expiresOn: Math.floor(exp / 1000) };
}

interface ExchangeRequest {
  authorityHost: string;
  tenantId: string;
  clientId: string;
  resource: string;
  assertion: string;
}

/** Azure AD v2 client-credentials grant with the service-account token as a federated assertion. */
export async function exchangeForToken(
  req: ExchangeRequest,
  opts: { timeoutMs: number; userAgent: string },
): Promise<UpstreamAnswer> {
  const endpoint = `${req.authorityHost.replace(/\/+$/, "")}/${
    encodeURIComponent(req.tenantId)
  }/oauth2/v2.0/token`;
  const form = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: req.clientId,
    scope: scopeFor(req.resource),
    client_assertion_type: JWT_BEARER,
    client_assertion: req.assertion,
  });
  return await postTokenForm(endpoint, form, opts);
}
