// The ARM credential MIC authenticates with, from its Azure config: a service principal secret, a managed
// identity (IMDS), or a service principal certificate (the client assertion signed here). Azure AD is
// reached at the cloud's authority host, with no instance discovery (MSAL's, which asked
// login.microsoftonline.com about a custom cloud's host, is gone with the SDK).

import { ServicePrincipalCredential } from "./aad_token_client.ts";
import { AzureConfigError, type Credentials } from "./azure_json.ts";
import {
  buildClientAssertion,
  CertificateError,
  type ClientCertificateMaterial,
  readClientCertificate,
  readPkcs12,
} from "./certificate_assertion.ts";
import type { CloudEnvironment } from "./cloud.ts";
import { DEFAULT_IMDS_HOST, ManagedIdentityCredential } from "./imds_token_client.ts";
import type { TokenCredential } from "./token_credential.ts";

/**
 * `imdsHost`: where IMDS is; by default what @azure/identity honoured, AZURE_POD_IDENTITY_AUTHORITY_HOST,
 * else 169.254.169.254.
 */
export function armCredential(
  creds: Credentials,
  cloud: CloudEnvironment,
  imdsHost = Deno.env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST") || DEFAULT_IMDS_HOST,
): TokenCredential {
  const authorityHost = cloud.activeDirectoryEndpoint;
  switch (creds.kind) {
    case "secret":
      return new ServicePrincipalCredential({
        authorityHost,
        tenantId: creds.tenantId,
        clientId: creds.clientId,
        proof: { kind: "secret", secret: creds.secret },
      });
    case "certificate": {
      const material = readCertificateFile(creds.certPath, creds.password);
      return new ServicePrincipalCredential({
        authorityHost,
        tenantId: creds.tenantId,
        clientId: creds.clientId,
        proof: {
          kind: "assertion",
          assertion: (audience) => buildClientAssertion(material, { clientId: creds.clientId, audience }),
        },
      });
    }
    case "managedIdentity":
      return new ManagedIdentityCredential({ host: imdsHost, clientId: creds.clientId || undefined });
  }
}

/** azure.json's aadClientCertPath: PEM (key and certificate) or PKCS#12 (.pfx / .p12, with the password). */
function readCertificateFile(path: string, password: string): ClientCertificateMaterial {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (e) {
    throw new AzureConfigError(`aadClientCertPath ${path}: ${(e as Error).message}`);
  }
  try {
    const text = new TextDecoder().decode(bytes);
    return text.includes("-----BEGIN ")
      ? readClientCertificate(text, password || undefined)
      : readPkcs12(bytes, password);
  } catch (e) {
    if (e instanceof CertificateError) throw new AzureConfigError(`aadClientCertPath ${path}: ${e.message}`);
    throw e;
  }
}
