// The ARM credential MIC authenticates with, from its Azure config: a service principal secret, a managed
// identity (IMDS), or a service principal certificate. Azure AD is reached at the cloud's authority host;
// for a custom cloud instance discovery is off (it would ask login.microsoftonline.com about the host).

import {
  ClientCertificateCredential,
  ClientSecretCredential,
  ManagedIdentityCredential,
  type TokenCredential,
} from "@azure/identity";
import type { Credentials } from "./azure_json.ts";
import { type CloudEnvironment, CLOUDS } from "./cloud.ts";

export function isPublicCloud(cloud: CloudEnvironment): boolean {
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
    case "certificate":
      // PEM certificates (key in the same file), as azure.json's aadClientCertPath names them.
      return new ClientCertificateCredential(creds.tenantId, creds.clientId, {
        certificatePath: creds.certPath,
      }, authority);
    case "managedIdentity":
      return creds.clientId
        ? new ManagedIdentityCredential({ clientId: creds.clientId })
        : new ManagedIdentityCredential();
  }
}
