// Service-principal tokens (identity types 1 and 2) from Azure AD's v1 token endpoint with plain fetch:
// the v1 endpoint takes `resource` exactly as IMDS does and answers with expires_on/not_before, so the
// answer maps onto the IMDS shape without translation, and the identity's own `adEndpoint` / tenant (its
// cloud) is used per request. Secrets are passed in by the caller (read from the secret watch).

import type { ClientCertificateMaterial } from "../lib/azure/certificate_assertion.ts";
import { importLazily } from "../lib/lazy_import.ts";
import { readBody, transportMessage, type UpstreamAnswer, UpstreamUnavailable } from "./imds_client.ts";

export type ServicePrincipalCredential =
  | { kind: "secret"; secret: string }
  | { kind: "certificate"; material: ClientCertificateMaterial };

interface AadRequest {
  /** Authority host, e.g. https://login.microsoftonline.com/ */
  authorityHost: string;
  tenantId: string;
  clientId: string;
  resource: string;
  credential: ServicePrincipalCredential;
}

function tokenEndpoint(authorityHost: string, tenantId: string): string {
  return `${authorityHost.replace(/\/+$/, "")}/${encodeURIComponent(tenantId)}/oauth2/token`;
}

export async function servicePrincipalToken(
  req: AadRequest,
  opts: { timeoutMs: number; userAgent: string; signal?: AbortSignal },
): Promise<UpstreamAnswer> {
  const endpoint = tokenEndpoint(req.authorityHost, req.tenantId);
  const form = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: req.clientId,
    resource: req.resource,
  });
  if (req.credential.kind === "secret") {
    form.set("client_secret", req.credential.secret);
  } else {
    // Loaded only here (node-forge comes with it): see spCredential in nmi/token_service.ts.
    const { buildClientAssertion } = await importLazily<
      typeof import("../lib/azure/certificate_assertion.ts")
    >(
      "lib/azure/certificate_assertion.ts",
    );
    form.set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    form.set(
      "client_assertion",
      buildClientAssertion(req.credential.material, { clientId: req.clientId, audience: endpoint }),
    );
  }
  return await postTokenForm(endpoint, form, opts);
}

/** One token request to Azure AD (v1 or v2 endpoint): the form POSTed, the answer read whole. */
export async function postTokenForm(
  endpoint: string,
  form: URLSearchParams,
  opts: { timeoutMs: number; userAgent: string; signal?: AbortSignal },
): Promise<UpstreamAnswer> {
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  let res: Response;
  try {
    res = await fetch(endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "user-agent": opts.userAgent },
      body: form,
      signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
    });
  } catch (e) {
    throw new UpstreamUnavailable(`Azure AD at ${endpoint}: ${transportMessage(e)}`);
  }
  return { ok: res.ok, status: res.status, body: await readBody(res) };
}
