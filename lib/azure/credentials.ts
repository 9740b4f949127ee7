// The ARM credential MIC authenticates with, from its Azure config: a service principal secret, a managed
// identity (IMDS), or a service principal certificate (the client assertion signed here). Azure AD is
// reached at the cloud's authority host, with no instance discovery (MSAL's, which asked
// login.microsoftonline.com about a custom cloud's host, is gone with the SDK).

import { ServicePrincipalCredential } from "./aad_token_client.ts";
import { AzureConfigError, type Credentials } from "./azure_json.ts";
import type { ClientCertificateMaterial } from "./certificate_assertion.ts";
import { importLazily } from "../lazy_import.ts";
import type { CloudEnvironment } from "./cloud.ts";
import { DEFAULT_IMDS_HOST, ManagedIdentityCredential } from "./imds_token_client.ts";
import type { TokenCredential } from "./token_credential.ts";

/**
 * The certificate code (and node-forge, which it needs for PKCS#12: about 6 MiB of RSS) is loaded only for a
 * certificate credential. `imdsHost`: where IMDS is; by default what @azure/identity honoured, AZURE_POD_IDENTITY_AUTHORITY_HOST,
 * else 169.254.169.254.
 */
export async function armCredential(
  creds: Credentials,
  cloud: CloudEnvironment,
  imdsHost = Deno.env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST") || DEFAULT_IMDS_HOST,
): Promise<TokenCredential> {
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
      const { buildClientAssertion } = await importLazily<typeof import("./certificate_assertion.ts")>(
        "lib/azure/certificate_assertion.ts",
      );
      const material = await readCertificateFile(creds.certPath, creds.password);
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
async function readCertificateFile(path: string, password: string): Promise<ClientCertificateMaterial> {
  const { CertificateError, readClientCertificate, readPkcs12 } = await importLazily<
    typeof import("./certificate_assertion.ts")
  >("lib/azure/certificate_assertion.ts");
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
