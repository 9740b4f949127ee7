// Azure AD's checks on a federated client assertion (workload identity federation): the assertion's `iss`
// must equal a federated credential's issuer exactly; Azure AD then fetches that issuer's OpenID discovery
// document and JWKS, verifies the RS256 signature with the key named by `kid`, checks `exp`/`nbf`, and
// requires the same credential to name `sub` exactly and an `aud` the assertion carries. Each failure has
// the AADSTS code Azure AD answers (see the emulator README for the sources).

import { type AssertionFailure, assertionTimeFailure, decodeAssertion } from "./client_assertion.ts";
import type { FederatedCredential } from "./federated_credentials.ts";
import { type DecodedJwt, importRsaPublicKey, verifySignature } from "./jwt.ts";

interface FederatedAssertionCheck {
  clientId: string;
  credentials: FederatedCredential[];
  /** Fetches a URL of the issuer (discovery document, JWKS); the caller decides which CAs it trusts. */
  fetch: (url: string) => Promise<Response>;
  /** Epoch seconds. */
  now: number;
  skewSeconds: number;
}

const CHECK_FICS =
  "Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. " +
  "https://learn.microsoft.com/entra/workload-id/workload-identity-federation";

async function fetchJson(
  fetcher: (url: string) => Promise<Response>,
  url: string,
): Promise<Record<string, unknown> | string> {
  let res: Response;
  try {
    res = await fetcher(url);
  } catch (e) {
    return `${url}: ${e instanceof Error ? e.message : String(e)}`;
  }
  if (!res.ok) {
    await res.body?.cancel();
    return `${url}: HTTP ${res.status}`;
  }
  try {
    const body = await res.json();
    if (typeof body !== "object" || body === null || Array.isArray(body)) return `${url}: not a JSON object`;
    return body as Record<string, unknown>;
  } catch {
    return `${url}: not JSON`;
  }
}

function discoveryFailure(detail: string): AssertionFailure {
  return { code: 90061, description: `Request to External OIDC endpoint failed. [${detail}]` };
}

/** The issuer's RSA key `kid`, through its discovery document and JWKS, as Azure AD looks it up. */
async function issuerKey(
  fetch: FederatedAssertionCheck["fetch"],
  iss: string,
  kid: string | undefined,
): Promise<{ key: JsonWebKey } | { failure: AssertionFailure }> {
  const discoveryUrl = `${iss.replace(/\/+$/, "")}/.well-known/openid-configuration`;
  const discovery = await fetchJson(fetch, discoveryUrl);
  if (typeof discovery === "string") return { failure: discoveryFailure(discovery) };
  if (discovery.issuer !== iss) {
    return {
      failure: discoveryFailure(`${discoveryUrl}: its issuer '${String(discovery.issuer)}' is not '${iss}'`),
    };
  }
  if (typeof discovery.jwks_uri !== "string") {
    return { failure: discoveryFailure(`${discoveryUrl}: no jwks_uri`) };
  }
  const jwks = await fetchJson(fetch, discovery.jwks_uri);
  if (typeof jwks === "string") return { failure: discoveryFailure(jwks) };
  const keys = Array.isArray(jwks.keys) ? jwks.keys as JsonWebKey[] : [];
  const jwk = keys.find((k) => (k as { kid?: unknown }).kid === kid && k.kty === "RSA");
  if (!jwk) {
    return {
      failure: {
        code: 7000272,
        description: `The key '${kid ?? "(no kid)"}' used to sign the assertion was not found in the ` +
          `issuer's keys at '${discovery.jwks_uri}'.`,
      },
    };
  }
  return { key: jwk };
}

async function signedBy(jwt: DecodedJwt, jwk: JsonWebKey): Promise<boolean> {
  try {
    return await verifySignature(jwt, await importRsaPublicKey(jwk, "RS256"));
  } catch {
    return false;
  }
}

/** Returns undefined when the assertion is acceptable. */
export async function checkFederatedAssertion(
  assertion: string,
  check: FederatedAssertionCheck,
): Promise<AssertionFailure | undefined> {
  const decoded = decodeAssertion(assertion);
  if ("failure" in decoded) return decoded.failure;
  const { jwt } = decoded;
  const { header, payload } = jwt;
  if (check.credentials.length === 0) {
    return {
      code: 70021,
      description:
        `No matching federated identity record found for presented assertion. The managed identity ` +
        `'${check.clientId}' has no federated identity credentials. ${CHECK_FICS}`,
    };
  }
  const iss = typeof payload.iss === "string" ? payload.iss : "";
  const byIssuer = check.credentials.filter((c) => c.issuer === iss);
  if (byIssuer.length === 0) {
    return {
      code: 700211,
      description:
        `No matching federated identity record found for presented assertion issuer '${iss}'. ${CHECK_FICS}`,
    };
  }
  if (header.alg !== "RS256") {
    return {
      code: 5002738,
      description: `Invalid JWT token. '${header.alg}' is not a supported signature algorithm.`,
    };
  }
  const found = await issuerKey(check.fetch, iss, header.kid);
  if ("failure" in found) return found.failure;
  if (!await signedBy(jwt, found.key)) {
    return { code: 700027, description: "Client assertion failed signature validation." };
  }
  const timeFailure = assertionTimeFailure(payload, check);
  if (timeFailure) return timeFailure;
  return subjectAudienceFailure(byIssuer, payload);
}

/** The credentials of the issuer must name the assertion's subject and one of its audiences. */
function subjectAudienceFailure(
  byIssuer: FederatedCredential[],
  payload: Record<string, unknown>,
): AssertionFailure | undefined {
  const sub = typeof payload.sub === "string" ? payload.sub : "";
  const bySubject = byIssuer.filter((c) => c.subject === sub);
  if (bySubject.length === 0) {
    return {
      code: 700213,
      description:
        `No matching federated identity record found for presented assertion subject '${sub}'. ${CHECK_FICS}`,
    };
  }
  const auds = (Array.isArray(payload.aud) ? payload.aud : [payload.aud]).filter((a): a is string =>
    typeof a === "string"
  );
  if (!bySubject.some((c) => c.audiences.some((a) => auds.includes(a)))) {
    return {
      code: 700212,
      description: `No matching federated identity record found for presented assertion audience '${
        auds.join(", ")
      }'. ${CHECK_FICS}`,
    };
  }
  return undefined;
}
