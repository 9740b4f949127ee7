// Gets tokens for an identity NMI has already authorised: user-assigned identities (type 0) and the node's
// own identity from the node's IMDS, service principals (types 1 and 2) from Azure AD, all through the
// token cache (single flight, minimum lifetime, refresh ahead). Right after an assignment, real IMDS may say
// "Identity not found" for a while; that is retried here until the request's deadline, and only reported
// (as "pending", so the client retries) when the deadline passes.

import type { UpstreamKind } from "./metrics.ts";
import { isFederatedIdentity } from "../lib/api/matching.ts";
import { type AzureIdentity, IdentityType } from "../lib/api/types.ts";
import { KubeApiError, type KubeClient } from "../lib/kube/rest.ts";
import { importLazily } from "../lib/lazy_import.ts";
import { sleep } from "../lib/sleep.ts";
import type { Logger } from "../lib/log.ts";
import { type ServicePrincipalCredential, servicePrincipalToken } from "./aad_client.ts";
import type { NmiCaches } from "./caches.ts";
import { auxiliaryTenantsOf, withAuxiliary } from "./multi_tenant.ts";
import {
  aadstsCode,
  exchangeForToken,
  type FederatedPod,
  federationHint,
  requestServiceAccountToken,
  subjectOf,
  TOKEN_EXCHANGE_AUDIENCE,
} from "./federated.ts";
import {
  type ImdsClient,
  type ImdsSelector,
  isIdentityNotFound,
  type UpstreamAnswer,
  UpstreamUnavailable,
} from "./imds_client.ts";
import { type Refusal, refusal } from "./refusal.ts";
import type { TokenCache } from "./token_cache.ts";
import { objectIdOfToken, type Token, tokenFromUpstream, UpstreamShapeError } from "./token.ts";

/** A token NMI cannot get; `refusal.kind` "pending" means the identity is not usable on this VM yet. */
export class TokenError extends Error {
  override name = "TokenError";
  constructor(
    readonly refusal: Refusal,
    /** Federated mode: Azure AD refused the exchange; the binding gets a Warning event with this. */
    readonly federation?: { code?: number; hint: string },
    /** IMDS said "Identity not found" until the request's deadline: the identity is missing on the node. */
    readonly missingOnNode = false,
  ) {
    super(refusal.message);
  }
}

interface TokenServiceOptions {
  imds: ImdsClient;
  cache: TokenCache;
  caches: NmiCaches;
  /** Authority host when an identity's spec.adEndpoint is empty. */
  defaultAdEndpoint: string;
  timeoutMs: number;
  userAgent: string;
  log: Logger;
  onUpstream?: (kind: UpstreamKind, ok: boolean, seconds: number) => void;
  /** Federated mode; absent: every user-assigned identity comes from IMDS. */
  federation?: FederationOptions;
}

interface FederationOptions {
  kube: KubeClient;
  /** Identities without the federated annotation are federated. */
  byDefault: boolean;
  /** Tenant of identities whose spec.tenantID is empty. */
  tenantId: string;
  /** This node: service-account tokens are requested only for pods on it. */
  node: string;
  /** Service-account tokens per pod (expiry-driven, single flight). */
  saCache: TokenCache;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Who asks and until when: the request's signal and its source (the calling pod) reach the IMDS limiter. */
export interface CallContext {
  /** performance.now() time after which the caller no longer waits. */
  deadlineAt: number;
  signal?: AbortSignal;
  /** The calling pod (namespace/name); IMDS calls are queued fairly per source. */
  source?: string;
}

/** Delay before retry `n` (0-based) of "Identity not found": 100 ms doubling to 1 s. */
export function identityNotFoundDelay(n: number): number {
  return Math.min(1000, 100 * 2 ** n);
}

function upstreamError(source: string, a: UpstreamAnswer): TokenError {
  const body = (a.body ?? {}) as { error?: unknown; error_description?: unknown };
  const error = typeof body.error === "string" ? body.error : "upstream_error";
  const desc = typeof body.error_description === "string" ? body.error_description : `HTTP ${a.status}`;
  if (a.status === 429 || a.status >= 500) {
    return new TokenError(refusal("unavailable", `${source} answered ${a.status}: ${desc}`));
  }
  // The original answered 403 whenever IMDS or Azure AD refused; their own code and text say why.
  return new TokenError(refusal("forbidden", `${source} answered ${a.status}: ${desc}`, error));
}

function unavailable(e: unknown): TokenError {
  const msg = e instanceof UpstreamUnavailable || e instanceof UpstreamShapeError ? e.message : String(e);
  return new TokenError(refusal("unavailable", msg));
}

export class TokenService {
  #o: TokenServiceOptions;
  /** client id (lower case) -> principal id, learned from the tokens' `oid` claims. */
  #principals = new Map<string, string>();

  constructor(opts: TokenServiceOptions) {
    this.#o = opts;
  }

  principalIdOf(identity: AzureIdentity): string | undefined {
    return this.#principals.get(identity.spec.clientID.toLowerCase());
  }

  /** A token from an Azure AD answer (an unreadable one means Azure AD is not usable: 503). */
  #parse(body: unknown, resource: string, clientId: string): Token {
    try {
      return tokenFromUpstream(body, { resource, clientId }, nowSeconds());
    } catch (e) {
      throw unavailable(e);
    }
  }

  /** #parse, learning the principal id: only the primary tenant's token names the identity's principal. */
  #fromAzureAd(body: unknown, resource: string, clientId: string): Token {
    const t = this.#parse(body, resource, clientId);
    this.#learn(clientId, t);
    return t;
  }

  #learn(clientId: string, token: Token): void {
    const oid = objectIdOfToken(token.accessToken);
    if (oid && clientId) this.#principals.set(clientId.toLowerCase(), oid);
  }

  /**
   * The node's own identities (exceptions, MIC): the one the request names (client_id, msi_res_id or
   * object_id, passed to IMDS as given), else IMDS's default.
   */
  async forNode(resource: string, selector: ImdsSelector, call: CallContext): Promise<Token> {
    const named = selector.clientId
      ? `c:${selector.clientId}`
      : selector.resourceId
      ? `r:${selector.resourceId}`
      : selector.objectId
      ? `o:${selector.objectId}`
      : "";
    const key = `node|${named.toLowerCase()}|${resource}`;
    const { token } = await this.#o.cache.get(
      key,
      (signal) => this.#imdsToken(resource, selector, { ...call, signal }, false),
      call.signal,
    );
    return token;
  }

  /** Whether NMI gets this identity's tokens by federation (never from the node's IMDS). */
  isFederated(identity: AzureIdentity): boolean {
    const f = this.#o.federation;
    return !!f && isFederatedIdentity(identity, f.byDefault);
  }

  /**
   * The one place object ids are learned: when no identity in `identities` (those the pod is granted) is
   * known to have `objectId`, fetches a token for each whose principal id is unknown (the token's `oid`).
   * Failures leave the id unknown, and the request is then refused as not bound.
   */
  async learnPrincipals(
    identities: readonly AzureIdentity[],
    objectId: string,
    resource: string,
    call: CallContext,
    pod?: FederatedPod,
  ): Promise<void> {
    if (identities.some((i) => this.principalIdOf(i)?.toLowerCase() === objectId.toLowerCase())) return;
    const unknown = identities.filter((i) => !this.principalIdOf(i));
    await Promise.allSettled(unknown.map((i) => this.forIdentity(i, resource, call, pod)));
  }

  async forIdentity(
    identity: AzureIdentity,
    resource: string,
    call: CallContext,
    pod?: FederatedPod,
  ): Promise<Token> {
    if (this.#o.federation && isFederatedIdentity(identity, this.#o.federation.byDefault)) {
      if (!pod) {
        throw new TokenError(refusal("forbidden", "a federated identity needs the calling pod"));
      }
      return await this.#federated(this.#o.federation, identity, resource, pod, call);
    }
    switch (identity.spec.type) {
      case IdentityType.UserAssignedMSI: {
        return await this.#userAssigned(identity, resource, call);
      }
      case IdentityType.ServicePrincipal:
      case IdentityType.ServicePrincipalCertificate: {
        return await this.#servicePrincipal(identity, resource, call);
      }
    }
  }

  /**
   * A service principal's token from Azure AD, with the credential from its Secret; with auxiliary tenants
   * (type 1), the primary tenant's token carrying one per auxiliary tenant (nmi/multi_tenant.ts).
   */
  async #servicePrincipal(identity: AzureIdentity, resource: string, call: CallContext): Promise<Token> {
    const clientId = identity.spec.clientID;
    const ref = identity.spec.clientPassword;
    if (!ref?.name || !ref.namespace) {
      throw new TokenError(
        refusal(
          "forbidden",
          `AzureIdentity ${identity.metadata.namespace}/${identity.metadata.name} names no clientPassword secret`,
          "invalid_client",
        ),
      );
    }
    let auxiliary: string[];
    try {
      auxiliary = auxiliaryTenantsOf(identity);
    } catch (e) {
      throw new TokenError(refusal("forbidden", (e as Error).message, "invalid_request"));
    }
    const signal = AbortSignal.timeout(Math.max(1, call.deadlineAt - performance.now()));
    const secret = await this.#o.caches.secret(ref, signal);
    if (!secret) {
      throw new TokenError(
        refusal("forbidden", `secret ${ref.namespace}/${ref.name} does not exist`, "invalid_client"),
      );
    }
    const authority = identity.spec.adEndpoint || this.#o.defaultAdEndpoint;
    // The secret's version is part of the key: a rotated secret never serves a token from the old one.
    const key = `sp|${identity.spec.tenantID}|${
      auxiliary.join(",")
    }|${clientId.toLowerCase()}|${authority}|${ref.namespace}/${ref.name}@${
      secret.metadata.resourceVersion ?? ""
    }|${resource}`;
    const { token } = await this.#o.cache.get(key, async () => {
      // Parsed only when a token is fetched (a certificate's key is costly to read).
      const credential = await spCredential(identity, secret.data ?? {});
      const ask = (tenantId: string, i: number) =>
        this.#azureAdToken(
          { authorityHost: authority, tenantId, clientId, resource, credential },
          i === 0 ? "Azure AD" : `Azure AD (auxiliary tenant ${tenantId})`,
        );
      // All tenants at once; the first refusal in tenant order (primary first) refuses the request, as adal's
      // MultiTenantServicePrincipalToken did.
      const answers = await Promise.allSettled([identity.spec.tenantID, ...auxiliary].map(ask));
      const failed = answers.find((a) => a.status === "rejected");
      if (failed) throw failed.reason;
      const [primary, ...rest] = answers.map((a) => (a as PromiseFulfilledResult<UpstreamAnswer>).value);
      const main = this.#fromAzureAd(primary.body, resource, clientId);
      if (!rest.length) return main;
      return withAuxiliary(main, rest.map((a) => this.#parse(a.body, resource, clientId)));
    }, call.signal);
    return token;
  }

  /** One Azure AD client-credentials call; `source` names it in a refusal (an auxiliary tenant by id). */
  async #azureAdToken(
    req: Parameters<typeof servicePrincipalToken>[0],
    source: string,
  ): Promise<UpstreamAnswer> {
    const t0 = performance.now();
    let a: UpstreamAnswer;
    try {
      a = await servicePrincipalToken(req, { timeoutMs: this.#o.timeoutMs, userAgent: this.#o.userAgent });
    } catch (e) {
      this.#o.onUpstream?.("aad", false, (performance.now() - t0) / 1000);
      throw unavailable(e);
    }
    this.#o.onUpstream?.("aad", a.ok, (performance.now() - t0) / 1000);
    if (!a.ok) throw upstreamError(source, a);
    return a;
  }

  /**
   * A user-assigned identity from the node's IMDS, asked for by its resource id when it has one: ARM attached
   * that resource to the VM, so the token IMDS answers is the one the AzureIdentity's owner controls. The
   * answer's client id must then be the AzureIdentity's: an AzureIdentity pairing its own resource id with
   * another identity's client id gets nothing (issue 19 item 4).
   */
  async #userAssigned(identity: AzureIdentity, resource: string, call: CallContext): Promise<Token> {
    const clientId = identity.spec.clientID;
    const resourceId = identity.spec.resourceID;
    const selector: ImdsSelector = resourceId ? { resourceId } : { clientId };
    const key = `mi|${clientId.toLowerCase()}|${(resourceId ?? "").toLowerCase()}|${resource}`;
    // Learning the object id (a JWT decode) happens once per fetched token, not per request.
    const { token } = await this.#o.cache.get(key, async (signal) => {
      const t = await this.#imdsToken(resource, selector, { ...call, signal }, true, clientId);
      if (resourceId && t.clientId && t.clientId.toLowerCase() !== clientId.toLowerCase()) {
        throw new TokenError(refusal(
          "forbidden",
          `AzureIdentity ${identity.metadata.namespace}/${identity.metadata.name}: clientID ${clientId} does ` +
            `not belong to resourceID ${resourceId} (IMDS answers client id ${t.clientId} for it)`,
        ));
      }
      this.#learn(clientId, t);
      return t;
    }, call.signal);
    return token;
  }

  /**
   * The pod's service-account token (cached per pod uid until shortly before it expires), exchanged at Azure
   * AD for the identity's token (cached per identity, service account and resource: the subject Azure AD
   * sees is the service account, so every pod of it that is granted the identity shares the token).
   */
  async #federated(
    f: FederationOptions,
    identity: AzureIdentity,
    resource: string,
    pod: FederatedPod,
    call: CallContext,
  ): Promise<Token> {
    const deadlineAt = call.deadlineAt;
    if (pod.nodeName !== f.node || !pod.uid) {
      throw new TokenError(
        refusal("forbidden", `pod ${pod.namespace}/${pod.name} is not on node ${f.node}`),
      );
    }
    const clientId = identity.spec.clientID;
    const tenantId = identity.spec.tenantID || f.tenantId;
    if (!tenantId) {
      throw new TokenError(refusal(
        "forbidden",
        `federated identity ${identity.metadata.namespace}/${identity.metadata.name}: no tenant (set ` +
          "spec.tenantID or NMI's --tenant-id)",
        "invalid_request",
      ));
    }
    const authority = identity.spec.adEndpoint || this.#o.defaultAdEndpoint;
    const subject = subjectOf(pod);
    const key = `fed|${tenantId}|${clientId.toLowerCase()}|${authority}|${subject}|${resource}`;
    const { token } = await this.#o.cache.get(key, async () => {
      const assertion = await this.#serviceAccountToken(f, pod, deadlineAt);
      const t0 = performance.now();
      let a: UpstreamAnswer;
      try {
        a = await exchangeForToken(
          { authorityHost: authority, tenantId, clientId, resource, assertion },
          { timeoutMs: this.#o.timeoutMs, userAgent: this.#o.userAgent },
        );
      } catch (e) {
        this.#o.onUpstream?.("aad", false, (performance.now() - t0) / 1000);
        throw unavailable(e);
      }
      this.#o.onUpstream?.("aad", a.ok, (performance.now() - t0) / 1000);
      if (!a.ok) {
        if (a.status === 429 || a.status >= 500) throw upstreamError("Azure AD", a);
        const code = aadstsCode(a.body);
        const hint = federationHint(code, subject, issuerOf(assertion));
        const first =
          String((a.body as { error_description?: unknown })?.error_description ?? `HTTP ${a.status}`)
            .split(/\r?\n/)[0];
        throw new TokenError(
          refusal(
            "forbidden",
            `federated token exchange for identity ${identity.metadata.namespace}/${identity.metadata.name} ` +
              `(client id ${clientId}) failed: ${hint}. Azure AD: ${first}`,
            "invalid_client",
          ),
          { code, hint },
        );
      }
      return this.#fromAzureAd(a.body, resource, clientId);
    }, call.signal);
    return token;
  }

  async #serviceAccountToken(f: FederationOptions, pod: FederatedPod, deadlineAt: number): Promise<string> {
    const { token } = await f.saCache.get(`sa|${pod.uid}`, async () => {
      const t0 = performance.now();
      try {
        const sa = await requestServiceAccountToken(
          f.kube,
          pod,
          AbortSignal.timeout(Math.max(1, deadlineAt - performance.now())),
        );
        this.#o.onUpstream?.("kube", true, (performance.now() - t0) / 1000);
        return {
          accessToken: sa.token,
          expiresOn: sa.expiresOn,
          notBefore: nowSeconds(),
          resource: TOKEN_EXCHANGE_AUDIENCE,
          tokenType: "Bearer",
          clientId: "",
        };
      } catch (e) {
        this.#o.onUpstream?.("kube", false, (performance.now() - t0) / 1000);
        if (e instanceof KubeApiError && e.status >= 400 && e.status < 500 && e.status !== 429) {
          throw new TokenError(
            refusal(
              "forbidden",
              `TokenRequest for service account ${pod.namespace}/${pod.serviceAccount} of pod ${pod.name} ` +
                `refused (${e.status}): ${e.message}`,
            ),
          );
        }
        throw new TokenError(refusal(
          "unavailable",
          `TokenRequest for pod ${pod.namespace}/${pod.name} failed: ${e instanceof Error ? e.message : e}`,
        ));
      }
    });
    return token.accessToken;
  }

  async #imdsToken(
    resource: string,
    selector: ImdsSelector,
    call: CallContext,
    retryNotFound: boolean,
    clientId = selector.clientId,
  ): Promise<Token> {
    const deadlineAt = call.deadlineAt;
    for (let attempt = 0;; attempt++) {
      let a: UpstreamAnswer;
      try {
        // The duration metric is observed by the IMDS client around the upstream call alone (no queue time).
        a = await this.#o.imds.token(resource, selector, { signal: call.signal, source: call.source });
      } catch (e) {
        throw unavailable(e);
      }
      if (a.ok) {
        try {
          return tokenFromUpstream(a.body, { resource, clientId: clientId ?? "" }, nowSeconds());
        } catch (e) {
          throw unavailable(e);
        }
      }
      if (retryNotFound && isIdentityNotFound(a)) {
        const delay = identityNotFoundDelay(attempt);
        if (performance.now() + delay < deadlineAt) {
          await sleep(delay, call.signal);
          continue;
        }
        throw new TokenError(
          refusal(
            "pending",
            `identity ${clientId} is assigned but this node's IMDS does not serve it yet (Identity not found); retry`,
          ),
          undefined,
          true,
        );
      }
      throw upstreamError("IMDS", a);
    }
  }
}

const decode = (b64: string) => {
  const bin = atob(b64);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
};

// Keys that name an azure.json field other than the secret: a Secret that also holds them still works.
const NOT_THE_SECRET = new Set([
  "clientid",
  "tenantid",
  "subscriptionid",
  "resourcegroup",
  "cloud",
  "vmtype",
  "usemsi",
  "userassignedmsiclientid",
  "aadclientid",
]);

/**
 * The key of a type-1 secret that holds the client secret: `clientSecret` (any case); else, as the original
 * took "the first" value of the Secret (a Go map, so any one), the first key by name that does not name
 * another field (clientID, tenantID, ...); else the first key by name. Undefined only for an empty Secret.
 */
function spSecretKey(keys: readonly string[]): string | undefined {
  const sorted = [...keys].sort();
  return sorted.find((k) => k.toLowerCase() === "clientsecret") ??
    sorted.find((k) => !NOT_THE_SECRET.has(k.toLowerCase())) ?? sorted[0];
}

/**
 * The credential in a service principal's secret. Type 1: the key spSecretKey picks. Type 2: `certificate`
 * (PKCS#12 as the original, or PEM holding certificate and RSA key) and optional `password`.
 */
export async function spCredential(
  identity: AzureIdentity,
  data: Record<string, string>,
): Promise<ServicePrincipalCredential> {
  const name = `${identity.metadata.namespace}/${identity.metadata.name}`;
  const keys = Object.keys(data);
  if (identity.spec.type === IdentityType.ServicePrincipal) {
    const key = spSecretKey(keys);
    if (!key) {
      throw new TokenError(refusal("forbidden", `the secret of ${name} holds no key`, "invalid_client"));
    }
    return { kind: "secret", secret: new TextDecoder().decode(decode(data[key])) };
  }
  if (!data.certificate) {
    throw new TokenError(
      refusal("forbidden", `the secret of ${name} has no 'certificate' key`, "invalid_client"),
    );
  }
  const certBytes = decode(data.certificate);
  const text = new TextDecoder().decode(certBytes);
  const password = data.password ? new TextDecoder().decode(decode(data.password)) : undefined;
  // Loaded at the first certificate identity: node-forge (PKCS#12) and the npm layer it brings cost every
  // node about 12 MiB of RSS, and most clusters have no such identity.
  const { CertificateError, readClientCertificate, readPkcs12 } = await importLazily<
    typeof import("../lib/azure/certificate_assertion.ts")
  >("lib/azure/certificate_assertion.ts");
  try {
    // The original's secrets hold PKCS#12 (PFX); PEM (certificate and key) is accepted too.
    const material = text.includes("-----BEGIN")
      ? readClientCertificate(text, password)
      : readPkcs12(certBytes, password ?? "");
    return { kind: "certificate", material };
  } catch (e) {
    const why = e instanceof CertificateError ? e.message : "unreadable";
    throw new TokenError(refusal("forbidden", `the certificate of ${name}: ${why}`, "invalid_client"));
  }
}

/** The `iss` of a JWT, read without verifying (to name the issuer in an error). */
function issuerOf(jwt: string): string {
  const part = jwt.split(".")[1] ?? "";
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const iss = (JSON.parse(json) as { iss?: unknown }).iss;
    return typeof iss === "string" ? iss : "";
  } catch {
    return "";
  }
}
