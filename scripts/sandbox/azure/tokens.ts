// Issues the access tokens handed out by the emulated Azure AD and IMDS, so a test can tell from the
// claims which principal a token belongs to (`appid`/`oid`, and `xms_mirid` for managed identities).

import { type AccessTokenClaims, type SigningKey, signRs256 } from "./jwt.ts";

interface TokenSubject {
  clientId: string;
  objectId: string;
  tenantId: string;
  /** "1" for a client secret, "2" for a certificate or a managed identity (Azure AD's convention). */
  appidacr: "1" | "2";
  /** Managed identities only. */
  miResourceId?: string;
}

export interface IssuedToken {
  accessToken: string;
  /** Epoch seconds. */
  notBefore: number;
  /** Epoch seconds. */
  expiresOn: number;
  /** Seconds from now. */
  expiresIn: number;
  claims: AccessTokenClaims;
}

export class TokenIssuer {
  /** `issuerBase` is read per token because the authority's port is only known once its server listens. */
  constructor(private readonly key: SigningKey, private readonly issuerBase: () => string) {}

  /** The `iss` of tokens for a tenant: v1 shape (`<authority>/<tenant>/`) on the emulator's own host. */
  issuerFor(tenantId: string): string {
    return `${this.issuerBase()}/${tenantId}/`;
  }

  async issue(subject: TokenSubject, audience: string, lifetimeSeconds: number): Promise<IssuedToken> {
    const now = Math.floor(Date.now() / 1000);
    const claims: AccessTokenClaims = {
      aud: audience,
      iss: this.issuerFor(subject.tenantId),
      // Azure AD backdates iat/nbf by five minutes to absorb clock skew; so do we.
      iat: now - 300,
      nbf: now - 300,
      exp: now + lifetimeSeconds,
      appid: subject.clientId,
      azp: subject.clientId,
      appidacr: subject.appidacr,
      idtyp: "app",
      oid: subject.objectId,
      sub: subject.objectId,
      tid: subject.tenantId,
      ver: "1.0",
      uti: crypto.randomUUID().replace(/-/g, "").slice(0, 22),
    };
    if (subject.miResourceId) claims.xms_mirid = subject.miResourceId;
    const accessToken = await signRs256(claims, this.key);
    return { accessToken, notBefore: claims.nbf, expiresOn: claims.exp, expiresIn: lifetimeSeconds, claims };
  }
}
