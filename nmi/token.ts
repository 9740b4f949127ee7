// The token NMI hands out, in IMDS's JSON shape (docs/protocols.md "IMDS token protocol"): every field a
// string, numbers never empty, `client_id` echoed. Upstream answers (IMDS JSON, Azure AD v1 JSON) are read
// into this shape once; `expires_in` is recomputed when a cached token is served so it never overstates the lifetime left.

export interface Token {
  accessToken: string;
  /** Epoch seconds. */
  expiresOn: number;
  notBefore: number;
  resource: string;
  tokenType: string;
  clientId: string;
  /** ext_expires_in from upstream, seconds (informational). */
  extExpiresIn?: number;
  /** Multi-tenant service principal: one token per auxiliary tenant, in spec order (nmi/multi_tenant.ts). */
  auxiliary?: readonly Token[];
}

export class UpstreamShapeError extends Error {
  override name = "UpstreamShapeError";
}

function num(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && /^\d+$/.test(v.trim())) return Number(v.trim());
  return undefined;
}

/**
 * Reads an IMDS or Azure AD v1 token answer. `expires_on` wins; else `now + expires_in`. Throws when the
 * answer lacks an access token or any way to know its expiry (never guess a lifetime).
 */
export function tokenFromUpstream(
  body: unknown,
  fallback: { resource: string; clientId: string },
  nowSeconds: number,
): Token {
  if (typeof body !== "object" || body === null) {
    throw new UpstreamShapeError("token answer is not a JSON object");
  }
  const o = body as Record<string, unknown>;
  if (typeof o.access_token !== "string" || o.access_token === "") {
    throw new UpstreamShapeError("token answer has no access_token");
  }
  const expiresIn = num(o.expires_in);
  const expiresOn = num(o.expires_on) ?? (expiresIn !== undefined ? nowSeconds + expiresIn : undefined);
  if (expiresOn === undefined) {
    throw new UpstreamShapeError("token answer has neither expires_on nor expires_in");
  }
  const notBefore = num(o.not_before) ?? Math.min(nowSeconds, expiresOn);
  const t: Token = {
    accessToken: o.access_token,
    expiresOn,
    notBefore,
    resource: typeof o.resource === "string" && o.resource ? o.resource : fallback.resource,
    tokenType: typeof o.token_type === "string" && o.token_type ? o.token_type : "Bearer",
    clientId: typeof o.client_id === "string" && o.client_id ? o.client_id : fallback.clientId,
  };
  const ext = num(o.ext_expires_in);
  if (ext !== undefined) t.extExpiresIn = ext;
  return t;
}

/** The IMDS JSON body for a token, as served at `nowSeconds`. */
export function imdsJson(t: Token, nowSeconds: number): Record<string, string> {
  const expiresIn = String(Math.max(0, t.expiresOn - nowSeconds));
  return {
    access_token: t.accessToken,
    client_id: t.clientId,
    expires_in: expiresIn,
    expires_on: String(t.expiresOn),
    ext_expires_in: t.extExpiresIn !== undefined ? String(t.extExpiresIn) : expiresIn,
    not_before: String(t.notBefore),
    resource: t.resource,
    token_type: t.tokenType,
    refresh_token: "",
  };
}

/** The `oid` claim of a JWT access token, read without verifying it (it is our own upstream's answer). */
export function objectIdOfToken(accessToken: string): string | undefined {
  const part = accessToken.split(".")[1];
  if (!part) return undefined;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const claims = JSON.parse(json) as Record<string, unknown>;
    return typeof claims.oid === "string" ? claims.oid : undefined;
  } catch {
    return undefined;
  }
}
