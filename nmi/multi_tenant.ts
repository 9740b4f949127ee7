// Multi-tenant service principals: an AzureIdentity of type 1 (client secret) with spec.auxiliaryTenantIDs.
// As the original v1.8.17 (pkg/auth/auth.go newMultiTenantServicePrincipalToken, pkg/nmi/server/server.go
// msiHandler; docs/upstream.md "NMI routes and status codes"), NMI asks Azure AD for the same client and
// resource in the primary tenant and in each auxiliary tenant, and answers a JSON ARRAY of IMDS-shaped
// tokens: the primary tenant's first, then one per auxiliary tenant in spec order. One refused tenant
// refuses the whole request. adal accepts one to three auxiliary tenants; more is refused with that limit.

import type { AzureIdentity } from "../lib/api/types.ts";
import { IdentityType } from "../lib/api/types.ts";
import { imdsJson, type Token } from "./token.ts";

/** adal's NewMultiTenantOAuthConfig: "must specify one to three auxiliary tenants". */
const MAX_AUXILIARY_TENANTS = 3;

/**
 * The auxiliary tenants NMI fetches tokens for: type 1 only (the original's certificate path, type 2, took
 * no auxiliary tenants and answered one token). Throws a RangeError naming the problem for more than three
 * tenants or an empty entry.
 */
export function auxiliaryTenantsOf(identity: AzureIdentity): string[] {
  if (identity.spec.type !== IdentityType.ServicePrincipal) return [];
  const tenants = identity.spec.auxiliaryTenantIDs ?? [];
  const name = `AzureIdentity ${identity.metadata.namespace}/${identity.metadata.name}`;
  if (tenants.length > MAX_AUXILIARY_TENANTS) {
    throw new RangeError(
      `${name}: ${tenants.length} auxiliaryTenantIDs; Azure AD multi-tenant tokens take one to three`,
    );
  }
  if (tenants.some((t) => t.trim() === "")) {
    throw new RangeError(`${name}: auxiliaryTenantIDs holds an empty tenant id`);
  }
  return tenants.map((t) => t.trim());
}

/**
 * The primary token carrying the auxiliary ones. The bundle is cached as one entry, so it is only as fresh
 * as its shortest-lived token: the primary's expiry is lowered to that (never raised), so the cache never
 * serves an expired auxiliary token.
 */
export function withAuxiliary(primary: Token, auxiliary: readonly Token[]): Token {
  const expiresOn = Math.min(primary.expiresOn, ...auxiliary.map((t) => t.expiresOn));
  return { ...primary, expiresOn, auxiliary };
}

type ImdsBody = Record<string, string>;

/**
 * The token route's JSON at `nowSeconds`: one IMDS object, or for a multi-tenant token the array (primary
 * first). Every element echoes the identity's client id, as the single answer does.
 */
export function tokenAnswerJson(token: Token, clientId: string, nowSeconds: number): ImdsBody | ImdsBody[] {
  const id = clientId || token.clientId;
  const primary = imdsJson({ ...token, clientId: id }, nowSeconds);
  if (!token.auxiliary?.length) return primary;
  return [primary, ...token.auxiliary.map((t) => imdsJson({ ...t, clientId: id }, nowSeconds))];
}
