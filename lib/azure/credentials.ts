// The ARM credential MIC authenticates with, from its Azure config: a service principal secret, a managed
// identity (IMDS), or a service principal certificate. Azure AD is reached at the cloud's authority host;
// for a custom cloud instance discovery is off (it would ask login.microsoftonline.com about the host).

import { ClientSecretCredential, ManagedIdentityCredential, type TokenCredential } from "@azure/identity";
import { AzureConfigError, type Credentials } from "./azure_json.ts";
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
      // @azure/identity's ClientCertificateCredential does not work under Deno; MIC will sign the client
      // assertion itself (lib/azure/certificate_assertion.ts, shared with NMI) once that lands. Until then
      // refuse clearly at startup rather than fail on the first ARM call.
      throw new AzureConfigError(
        `a service principal certificate (${creds.certPath}) for MIC's own ARM access is not supported yet; ` +
          "use aadClientSecret or a managed identity",
      );
    case "managedIdentity":
      return creds.clientId
        ? new ManagedIdentityCredential({ clientId: creds.clientId })
        : new ManagedIdentityCredential();
  }
}
