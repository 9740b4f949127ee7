// The emulated tenant's principals: service principals (with their secrets and certificates) and the
// principals behind managed identities. Azure AD authenticates against it, ARM authorises against it
// (which identities a caller may assign), and IMDS names it in tokens.

import { createHash, timingSafeEqual, X509Certificate } from "node:crypto";
import { base64UrlEncode } from "./jwt.ts";

export interface RegisteredCertificate {
  /** The certificate PEM block as registered (no private key). */
  pem: string;
  /** base64url SHA-1 thumbprint of the DER certificate (`x5t`). */
  x5t: string;
  /** base64url SHA-256 thumbprint of the DER certificate (`x5t#S256`). */
  x5tS256: string;
  /** SubjectPublicKeyInfo DER of the certificate's RSA key. */
  spki: Uint8Array<ArrayBuffer>;
  /** Epoch ms after which Azure AD would refuse the certificate. */
  notAfter: number;
}

interface PrincipalBase {
  clientId: string;
  objectId: string;
  tenantId: string;
  /** RBAC scopes (ids) where the principal holds Managed Identity Operator, i.e. may assign identities. */
  assignScopes: string[];
  /** RBAC scopes where the principal may write VMs / scale sets (Virtual Machine Contributor). */
  writeScopes: string[];
}

export interface ServicePrincipal extends PrincipalBase {
  kind: "servicePrincipal";
  displayName: string;
  secrets: string[];
  certificates: RegisteredCertificate[];
}

export interface ManagedIdentityPrincipal extends PrincipalBase {
  kind: "managedIdentity";
  /** The identity resource (user-assigned) or the VM / scale set (system-assigned). */
  resourceId: string;
}

export type Principal = ServicePrincipal | ManagedIdentityPrincipal;

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/** Parses the first certificate of a PEM (which may also hold a private key, as credential files do). */
export function parseCertificate(pem: string): RegisteredCertificate {
  const block = CERT_BLOCK.exec(pem)?.[0];
  if (!block) throw new TypeError("no CERTIFICATE block in the PEM");
  const x509 = new X509Certificate(block);
  if (x509.publicKey.asymmetricKeyType !== "rsa") {
    throw new TypeError("Azure AD client certificates must have RSA keys");
  }
  const der = new Uint8Array(x509.raw);
  const spki = new Uint8Array(x509.publicKey.export({ type: "spki", format: "der" }));
  return {
    pem: block + "\n",
    x5t: base64UrlEncode(new Uint8Array(createHash("sha1").update(der).digest())),
    x5tS256: base64UrlEncode(new Uint8Array(createHash("sha256").update(der).digest())),
    spki,
    notAfter: Date.parse(x509.validTo),
  };
}

/** Constant-time comparison; hashing first lets secrets of different lengths compare without an early exit. */
export function secretMatches(given: string, registered: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(registered).digest();
  return timingSafeEqual(a, b);
}

export class Directory {
  #byObjectId = new Map<string, Principal>();
  readonly tenants = new Set<string>();

  constructor(readonly defaultTenantId: string) {
    this.tenants.add(defaultTenantId.toLowerCase());
  }

  add(principal: Principal): void {
    this.tenants.add(principal.tenantId.toLowerCase());
    for (const p of this.#byObjectId.values()) {
      if (
        p.clientId.toLowerCase() === principal.clientId.toLowerCase() &&
        p.tenantId.toLowerCase() === principal.tenantId.toLowerCase()
      ) {
        throw new Error(
          `client id ${principal.clientId} is already registered in tenant ${principal.tenantId}`,
        );
      }
    }
    this.#byObjectId.set(principal.objectId.toLowerCase(), principal);
  }

  remove(objectId: string): void {
    this.#byObjectId.delete(objectId.toLowerCase());
  }

  byObjectId(objectId: string): Principal | undefined {
    return this.#byObjectId.get(objectId.toLowerCase());
  }

  /** A principal named by its object id or by its client (application) id. */
  find(id: string): Principal | undefined {
    const byObject = this.byObjectId(id);
    if (byObject) return byObject;
    for (const p of this.#byObjectId.values()) {
      if (p.clientId.toLowerCase() === id.toLowerCase()) return p;
    }
    return undefined;
  }

  /** Whether `clientId` names any registered application or managed identity (a token audience). */
  hasClientId(clientId: string): boolean {
    for (const p of this.#byObjectId.values()) {
      if (p.clientId.toLowerCase() === clientId.toLowerCase()) return true;
    }
    return false;
  }

  /** The service principal a client-credentials request names (managed identities cannot use that flow). */
  servicePrincipal(tenantId: string, clientId: string): ServicePrincipal | undefined {
    for (const p of this.#byObjectId.values()) {
      if (
        p.kind === "servicePrincipal" && p.clientId.toLowerCase() === clientId.toLowerCase() &&
        p.tenantId.toLowerCase() === tenantId.toLowerCase()
      ) {
        return p;
      }
    }
    return undefined;
  }

  /** The user-assigned managed identity a federated client-credentials request names by its client id. */
  userAssignedIdentity(tenantId: string, clientId: string): ManagedIdentityPrincipal | undefined {
    for (const p of this.#byObjectId.values()) {
      if (
        p.kind === "managedIdentity" && p.clientId.toLowerCase() === clientId.toLowerCase() &&
        p.tenantId.toLowerCase() === tenantId.toLowerCase() &&
        /\/providers\/microsoft\.managedidentity\/userassignedidentities\//i.test(p.resourceId)
      ) {
        return p;
      }
    }
    return undefined;
  }

  hasTenant(tenantId: string): boolean {
    return this.tenants.has(tenantId.toLowerCase());
  }
}
