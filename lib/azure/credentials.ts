// The ARM credential MIC authenticates with, from its Azure config: a service principal secret, a managed
// identity (IMDS), or a service principal certificate. Azure AD is reached at the cloud's authority host;
// for a custom cloud instance discovery is off (it would ask login.microsoftonline.com about the host).

import {
  ClientAssertionCredential,
  ClientSecretCredential,
  ManagedIdentityCredential,
  type TokenCredential,
} from "@azure/identity";
import { AzureConfigError, type Credentials } from "./azure_json.ts";
import {
  buildClientAssertion,
  CertificateError,
  type ClientCertificateMaterial,
  readClientCertificate,
  readPkcs12,
} from "./certificate_assertion.ts";
import { type CloudEnvironment, CLOUDS } from "./cloud.ts";

function isPublicCloud(cloud: CloudEnvironment): boolean {
  return Object.values(CLOUDS).some((c) => c.name === cloud.name);
}

export function armCredential(creds: Credentials, cloud: CloudEnvironment): TokenCredential {
  const authority = {
    authorityHost: cloud.activeDirectoryEndpoint,
    disableInstanceDiscovery: !isPublicCloud(cloud),
  };
  switch (creds.kind) {
    case "secret":
      return new ClientSecretCredential(creds.tenantId, creds.clientId, creds.secret, authority);
    case "certificate": {
      // @azure/identity's ClientCertificateCredential cannot read keys under Deno: sign the assertion here.
      const material = readCertificateFile(creds.certPath, creds.password);
      const tokenEndpoint = `${
        cloud.activeDirectoryEndpoint.replace(/\/+$/, "")
      }/${creds.tenantId}/oauth2/v2.0/token`;
      return new ClientAssertionCredential(
        creds.tenantId,
        creds.clientId,
        () =>
          Promise.resolve(
            buildClientAssertion(material, { clientId: creds.clientId, audience: tokenEndpoint }),
          ),
        authority,
      );
    }
    case "managedIdentity":
      return creds.clientId
        ? new ManagedIdentityCredential({ clientId: creds.clientId })
        : new ManagedIdentityCredential();
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
