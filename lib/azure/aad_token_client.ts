// MIC's service-principal token from Azure AD's v2 endpoint (`<authority>/<tenant>/oauth2/v2.0/token`,
// scope `<audience>/.default`, client credentials with a secret or a signed client assertion), as
// @azure/identity's ClientSecretCredential / ClientAssertionCredential asked for it, with plain fetch.
// Neither the secret nor the token ever reaches an error message.

import { readBoundedJson } from "./bounded_body.ts";
import { CachedCredential } from "./token_cache.ts";
import { type AccessToken, TokenRequestError } from "./token_credential.ts";

type ClientProof = { kind: "secret"; secret: string } | {
  kind: "assertion";
  /** A fresh signed assertion for the token endpoint (its audience). */
  assertion: (tokenEndpoint: string) => string;
};

interface ServicePrincipalOptions {
  /** e.g. https://login.microsoftonline.com/ */
  authorityHost: string;
  tenantId: string;
  clientId: string;
  proof: ClientProof;
  userAgent?: string;
  timeoutMs?: number;
  now?: () => number;
}

function aadTokenEndpoint(authorityHost: string, tenantId: string): string {
  return `${authorityHost.replace(/\/+$/, "")}/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`;
}

/** A token answer `{access_token, expires_in | expires_on}` (Azure AD and IMDS), or a clear error. */
export function tokenFromAnswer(body: unknown, now: number, from: string): AccessToken {
  const b = (body ?? {}) as Record<string, unknown>;
  const token = b.access_token;
  if (typeof token !== "string" || token === "") {
    throw new TokenRequestError(200, "invalid_answer", `${from}: answer without access_token`);
  }
  const on = Number(b.expires_on);
  const inSeconds = Number(b.expires_in);
  const expiresOnTimestamp = Number.isFinite(on) && on > 0
    ? on * 1000
    : Number.isFinite(inSeconds) && inSeconds > 0
    ? now + inSeconds * 1000
    : NaN;
  if (!Number.isFinite(expiresOnTimestamp)) {
    throw new TokenRequestError(200, "invalid_answer", `${from}: answer without expires_in / expires_on`);
  }
  return { token, expiresOnTimestamp };
}

/** An OAuth error answer `{error, error_description}` as a TokenRequestError (first line of the text). */
export function tokenError(status: number, body: unknown, from: string): TokenRequestError {
  const b = (body ?? {}) as Record<string, unknown>;
  const code = typeof b.error === "string" ? b.error : `HTTP${status}`;
  const text = typeof b.error_description === "string"
    ? b.error_description.split("\n")[0].slice(0, 300)
    : "";
  return new TokenRequestError(status, code, `${from}: ${status} ${code}${text ? `: ${text}` : ""}`);
}

export class ServicePrincipalCredential extends CachedCredential {
  readonly #o: ServicePrincipalOptions;

  constructor(o: ServicePrincipalOptions) {
    super(o.now);
    this.#o = o;
  }

  protected async fetchToken(scope: string): Promise<AccessToken> {
    const o = this.#o;
    const endpoint = aadTokenEndpoint(o.authorityHost, o.tenantId);
    const form = new URLSearchParams({ grant_type: "client_credentials", client_id: o.clientId, scope });
    if (o.proof.kind === "secret") {
      form.set("client_secret", o.proof.secret);
    } else {
      form.set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
      form.set("client_assertion", o.proof.assertion(endpoint));
    }
    const from = `Azure AD token for ${o.clientId} at ${endpoint}`;
    if (!endpoint.startsWith("https://")) {
      // MSAL refused such authorities too: the secret or assertion would travel unencrypted.
      throw new TokenRequestError(0, "insecure_authority", `${from}: the authority host must be https`);
    }
    let res: Response;
    try {
      res = await fetch(endpoint, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "accept": "application/json",
          "user-agent": o.userAgent ?? "aad-pod-identity/MIC",
        },
        body: form,
        signal: AbortSignal.timeout(o.timeoutMs ?? 30_000),
      });
    } catch (e) {
      throw new TokenRequestError(0, "unreachable", `${from}: ${(e as Error).message.split("\n")[0]}`);
    }
    const body = await readBoundedJson(res, from);
    if (!res.ok) throw tokenError(res.status, body, from);
    return tokenFromAnswer(body, (o.now ?? Date.now)(), from);
  }
}
