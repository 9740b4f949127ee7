// ARM's bearer-token check: a token from the subscription's tenant, for one of ARM's audiences, signed by
// the (emulated) Azure AD and not expired; failures use ARM's codes so clients react as they would in Azure.

import { type ArmError, armError } from "./arm_errors.ts";
import { type AccessTokenClaims, JwtError, verifyToken } from "./jwt.ts";

export interface ArmAuthConfig {
  publicKey: CryptoKey;
  tenantId: string;
  acceptedAudiences: string[];
  /** `iss` the subscription's tenant puts in tokens. */
  expectedIssuer: string;
  /** Azure AD authority for the tenant, named in `WWW-Authenticate`. */
  authority: string;
}

type ArmAuthResult =
  | { ok: true; claims: AccessTokenClaims }
  | { ok: false; error: ArmError; wwwAuthenticate: string };

/** Audiences Azure Resource Manager accepts in Azure's public cloud. */
export const PUBLIC_ARM_AUDIENCES = [
  "https://management.core.windows.net/",
  "https://management.core.windows.net",
  "https://management.azure.com/",
  "https://management.azure.com",
];

function fail(cfg: ArmAuthConfig, code: string, message: string, description: string): ArmAuthResult {
  return {
    ok: false,
    error: armError(401, code, message),
    wwwAuthenticate: `Bearer authorization_uri="${cfg.authority}", error="invalid_token", ` +
      `error_description="${description}"`,
  };
}

function utc(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "");
}

export async function authenticateArm(
  authorization: string | null,
  cfg: ArmAuthConfig,
): Promise<ArmAuthResult> {
  if (authorization === null) {
    return fail(
      cfg,
      "AuthenticationFailed",
      "Authentication failed. The 'Authorization' header is missing.",
      "The authentication failed because of missing 'Authorization' header.",
    );
  }
  const m = /^Bearer +(\S+)$/i.exec(authorization.trim());
  if (!m) {
    return fail(
      cfg,
      "AuthenticationFailed",
      "Authentication failed. The 'Authorization' header is provided in an invalid format.",
      "The authentication failed because of invalid 'Authorization' header.",
    );
  }
  let claims: AccessTokenClaims;
  try {
    claims = await verifyToken(m[1], cfg.publicKey);
  } catch (e) {
    if (e instanceof JwtError && e.reason === "expired") {
      const exp = /expired at (\d+)/.exec(e.message)?.[1];
      return fail(
        cfg,
        "ExpiredAuthenticationToken",
        `The access token expiry UTC time '${
          exp ? utc(Number(exp)) : "unknown"
        }' is earlier than current UTC ` +
          `time '${utc(Math.floor(Date.now() / 1000))}'.`,
        "The access token has expired.",
      );
    }
    return fail(
      cfg,
      "InvalidAuthenticationToken",
      "The access token is invalid.",
      "The access token is invalid.",
    );
  }
  if (!cfg.acceptedAudiences.includes(claims.aud)) {
    return fail(
      cfg,
      "InvalidAuthenticationTokenAudience",
      `The access token has been obtained for wrong audience or resource '${claims.aud}'. It should exactly match ` +
        `with one of the allowed audiences '${cfg.acceptedAudiences.join("','")}'.`,
      "The access token has been obtained for wrong audience.",
    );
  }
  if (claims.tid.toLowerCase() !== cfg.tenantId.toLowerCase() || claims.iss !== cfg.expectedIssuer) {
    return fail(
      cfg,
      "InvalidAuthenticationTokenTenant",
      `The access token is from the wrong issuer '${claims.iss}'. It must match the tenant ` +
        `'${cfg.expectedIssuer}' associated with this subscription. Please use the authority (URL) ` +
        `'${cfg.authority}' to get the token.`,
      "The access token is from the wrong issuer.",
    );
  }
  return { ok: true, claims };
}
