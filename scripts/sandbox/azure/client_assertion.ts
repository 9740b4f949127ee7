// Azure AD's checks on a certificate client assertion (private_key_jwt): the certificate named by
// x5t / x5t#S256 must be registered on the app and unexpired, the RS256/PS256 signature must verify with
// it, `aud` must be this tenant's token endpoint, `iss` = `sub` = client id, and `exp`/`nbf` must hold.

import type { RegisteredCertificate } from "./directory.ts";
import {
  type DecodedJwt,
  decodeJwt,
  importRsaPublicKey,
  isSupportedAlgorithm,
  verifySignature,
} from "./jwt.ts";

export interface AssertionFailure {
  /** AADSTS number. */
  code: number;
  description: string;
}

interface AssertionCheck {
  clientId: string;
  /** Audiences Azure AD accepts for this tenant: its token endpoints and its issuer. */
  audiences: string[];
  certificates: RegisteredCertificate[];
  /** Epoch seconds. */
  now: number;
  /** Tolerated clock skew in seconds (Azure AD allows five minutes). */
  skewSeconds: number;
}

function normalizeAudience(aud: string): string {
  return aud.replace(/\/+$/, "").toLowerCase();
}

/** The assertion as a JWT, or AADSTS50027 when it is not one. */
export function decodeAssertion(assertion: string): { jwt: DecodedJwt } | { failure: AssertionFailure } {
  try {
    return { jwt: decodeJwt(assertion) };
  } catch {
    return { failure: { code: 50027, description: "JWT token is invalid or malformed." } };
  }
}

/** Returns undefined when the assertion is acceptable. */
export async function checkClientAssertion(
  assertion: string,
  check: AssertionCheck,
): Promise<AssertionFailure | undefined> {
  const decoded = decodeAssertion(assertion);
  if ("failure" in decoded) return decoded.failure;
  const { jwt } = decoded;
  const { header, payload } = jwt;
  if (!isSupportedAlgorithm(header.alg)) {
    return {
      code: 5002738,
      description: `Invalid JWT token. '${header.alg}' is not a supported signature algorithm.`,
    };
  }
  const byS256 = header["x5t#S256"];
  const bySha1 = header.x5t;
  if (!byS256 && !bySha1) {
    return {
      code: 700027,
      description: "Client assertion failed signature validation. [Reason - The key was not found., " +
        "Thumbprint of key used by client: 'none'. The assertion header has neither x5t nor x5t#S256.]",
    };
  }
  const cert = check.certificates.find((c) => (byS256 ? c.x5tS256 === byS256 : c.x5t === bySha1));
  if (!cert) {
    return {
      code: 700027,
      description: "The certificate with identifier used to sign the client assertion is not registered on " +
        `application. [Reason - The key was not found., Thumbprint of key used by client: '${
          byS256 ?? bySha1
        }', ` +
        `Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id ` +
        `'${check.clientId}'.]`,
    };
  }
  if (cert.notAfter <= check.now * 1000) {
    return {
      code: 700027,
      description: "Client assertion contains an invalid signature. [Reason - The key used is expired.]",
    };
  }
  const key = await importRsaPublicKey(cert.spki, header.alg);
  if (!await verifySignature(jwt, key)) {
    return { code: 700027, description: "Client assertion failed signature validation." };
  }
  const sameAsClient = (v: unknown) =>
    typeof v === "string" && v.toLowerCase() === check.clientId.toLowerCase();
  if (!sameAsClient(payload.iss) || !sameAsClient(payload.sub)) {
    return {
      code: 700021,
      description:
        "Client assertion application identifier doesn't match 'client_id' parameter. Review the " +
        "documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
    };
  }
  const audiences = (Array.isArray(payload.aud) ? payload.aud : [payload.aud]).filter((a) =>
    typeof a === "string"
  );
  const accepted = new Set(check.audiences.map(normalizeAudience));
  if (!audiences.some((a) => accepted.has(normalizeAudience(a as string)))) {
    return {
      code: 700023,
      description:
        "Client assertion audience claim does not match Realm issuer. Review the documentation at " +
        "https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
    };
  }
  return assertionTimeFailure(payload, check);
}

/** Azure AD's checks of an assertion's `exp` and `nbf` against its clock, with the allowed skew. */
export function assertionTimeFailure(
  payload: Record<string, unknown>,
  check: { now: number; skewSeconds: number },
): AssertionFailure | undefined {
  if (typeof payload.exp !== "number") {
    return { code: 50027, description: "JWT token is invalid or malformed. The assertion has no exp claim." };
  }
  const nbf = typeof payload.nbf === "number" ? payload.nbf : undefined;
  if (
    payload.exp + check.skewSeconds <= check.now || (nbf !== undefined && nbf - check.skewSeconds > check.now)
  ) {
    const iso = (s: number) => new Date(s * 1000).toISOString();
    return {
      code: 700024,
      description: `Client assertion is not within its valid time range. Current time: ${iso(check.now)}, ` +
        `assertion valid from ${nbf !== undefined ? iso(nbf) : "unspecified"}, expiry time of assertion ` +
        `${iso(payload.exp)}.`,
    };
  }
  return undefined;
}
