// Federated identity credentials of user-assigned identities
// (`Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials`): what ARM accepts on
// PUT (name pattern, an https issuer, a subject, exactly one audience, at most 20 per identity, unique
// issuer + subject) and how Azure AD matches a presented assertion against them (exact, case-sensitive).

import { type ArmError, armError, invalidParameter } from "./arm_errors.ts";
import { armEchoedId, idKey } from "./ids.ts";

/** Azure's limit of federated identity credentials on one user-assigned identity. */
const MAX_FEDERATED_CREDENTIALS_PER_IDENTITY = 20;

export const FEDERATED_CREDENTIAL_TYPE =
  "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials";

/** The name rule @azure/arm-msi 2.2.0 also checks client-side. */
const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9-_]{2,119}$/;

export interface FederatedCredential {
  name: string;
  issuer: string;
  subject: string;
  audiences: string[];
}

type Result<T> = { ok: true; value: T } | { ok: false; error: ArmError };

/** Validates a PUT body as ARM does (pure). */
export function parseFederatedCredential(name: string, body: unknown): Result<FederatedCredential> {
  if (!NAME_PATTERN.test(name)) {
    return {
      ok: false,
      error: invalidParameter(
        `The federated identity credential name '${name}' is invalid: it must start with a letter or digit ` +
          "and have 3 to 120 letters, digits, '-' or '_'.",
        "federatedIdentityCredentialResourceName",
      ),
    };
  }
  const props = typeof body === "object" && body !== null && !Array.isArray(body)
    ? (body as Record<string, unknown>).properties
    : undefined;
  if (typeof props !== "object" || props === null || Array.isArray(props)) {
    return { ok: false, error: invalidParameter("The request body must have 'properties'.", "properties") };
  }
  const { issuer, subject, audiences } = props as Record<string, unknown>;
  if (typeof issuer !== "string" || issuer === "") {
    return { ok: false, error: invalidParameter("'properties.issuer' is required.", "properties.issuer") };
  }
  let issuerUrl: URL | undefined;
  try {
    issuerUrl = new URL(issuer);
  } catch { /* reported below */ }
  if (!issuerUrl || issuerUrl.protocol !== "https:") {
    return {
      ok: false,
      error: invalidParameter(
        `Issuer '${issuer}' is invalid: it must be an absolute https URL.`,
        "properties.issuer",
      ),
    };
  }
  if (typeof subject !== "string" || subject === "") {
    return { ok: false, error: invalidParameter("'properties.subject' is required.", "properties.subject") };
  }
  if (
    !Array.isArray(audiences) || audiences.length !== 1 || typeof audiences[0] !== "string" ||
    audiences[0] === ""
  ) {
    return {
      ok: false,
      error: invalidParameter(
        "'properties.audiences' must hold exactly one audience (e.g. 'api://AzureADTokenExchange').",
        "properties.audiences",
      ),
    };
  }
  return { ok: true, value: { name, issuer, subject, audiences: [audiences[0]] } };
}

export function federatedCredentialToJson(
  identityId: string,
  c: FederatedCredential,
): Record<string, unknown> {
  return {
    id: `${armEchoedId(identityId)}/federatedIdentityCredentials/${c.name}`,
    name: c.name,
    type: FEDERATED_CREDENTIAL_TYPE,
    properties: { issuer: c.issuer, subject: c.subject, audiences: [...c.audiences] },
  };
}

/** The credentials of every identity, keyed by the identity's id (any casing). */
export class FederatedCredentialStore {
  #byIdentity = new Map<string, Map<string, FederatedCredential>>();

  list(identityId: string): FederatedCredential[] {
    return [...(this.#byIdentity.get(idKey(identityId))?.values() ?? [])].map((c) => ({
      ...c,
      audiences: [...c.audiences],
    }));
  }

  get(identityId: string, name: string): FederatedCredential | undefined {
    const c = this.#byIdentity.get(idKey(identityId))?.get(name.toLowerCase());
    return c ? { ...c, audiences: [...c.audiences] } : undefined;
  }

  /** Creates or replaces; `created` tells which (ARM answers 201 or 200). */
  put(identityId: string, c: FederatedCredential): Result<{ created: boolean }> {
    const key = idKey(identityId);
    const existing = this.#byIdentity.get(key) ?? new Map<string, FederatedCredential>();
    const created = !existing.has(c.name.toLowerCase());
    if (created && existing.size >= MAX_FEDERATED_CREDENTIALS_PER_IDENTITY) {
      return {
        ok: false,
        error: armError(
          400,
          "BadRequest",
          `Too many Federated Identity Credentials are written to Managed Identity '${identityId}': the limit is ` +
            `${MAX_FEDERATED_CREDENTIALS_PER_IDENTITY}.`,
        ),
      };
    }
    for (const other of existing.values()) {
      if (
        other.name.toLowerCase() !== c.name.toLowerCase() && other.issuer === c.issuer &&
        other.subject === c.subject
      ) {
        return {
          ok: false,
          error: armError(
            409,
            "Conflict",
            `Federated Identity Credential '${other.name}' already has issuer '${c.issuer}' and subject ` +
              `'${c.subject}'; an issuer and subject pair may appear once per identity.`,
          ),
        };
      }
    }
    existing.set(c.name.toLowerCase(), { ...c, audiences: [...c.audiences] });
    this.#byIdentity.set(key, existing);
    return { ok: true, value: { created } };
  }

  delete(identityId: string, name: string): boolean {
    return this.#byIdentity.get(idKey(identityId))?.delete(name.toLowerCase()) ?? false;
  }

  deleteAll(identityId: string): void {
    this.#byIdentity.delete(idKey(identityId));
  }
}
