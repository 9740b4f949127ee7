// An unmodified application: gets a token with @azure/identity and prints it as JSON on stdout.
// The credential is chosen by argv[2]; every setting comes from the environment the way an app would read it.
//   certificate: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_CERTIFICATE_PATH, AZURE_AUTHORITY_HOST
//   secret:      AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_AUTHORITY_HOST
//   managed:     AZURE_CLIENT_ID (optional) and, to point it at a custom IMDS, AZURE_POD_IDENTITY_AUTHORITY_HOST
//   default:     DefaultAzureCredential, which probes IMDS before asking it (AZURE_CLIENT_ID optional)
// The scope is argv[3]. Trust for a private CA comes from NODE_EXTRA_CA_CERTS, as for any Node app.
import {
  ClientCertificateCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  ManagedIdentityCredential,
} from "@azure/identity";

const [kind, scope] = process.argv.slice(2);
const env = process.env;
// A custom cloud's authority host cannot be validated against login.microsoftonline.com's instance list.
const custom = {
  authorityHost: env.AZURE_AUTHORITY_HOST,
  disableInstanceDiscovery: true,
};
const credential = {
  certificate: () =>
    new ClientCertificateCredential(env.AZURE_TENANT_ID, env.AZURE_CLIENT_ID, {
      certificatePath: env.AZURE_CLIENT_CERTIFICATE_PATH,
    }, custom),
  secret: () =>
    new ClientSecretCredential(
      env.AZURE_TENANT_ID,
      env.AZURE_CLIENT_ID,
      env.AZURE_CLIENT_SECRET,
      custom,
    ),
  managed: () =>
    new ManagedIdentityCredential(
      env.AZURE_CLIENT_ID ? { clientId: env.AZURE_CLIENT_ID } : {},
    ),
  default: () => new DefaultAzureCredential(),
}[kind];
if (!credential || !scope) {
  console.error("usage: node get_token.mjs certificate|secret|managed|default <scope>");
  process.exit(2);
}
try {
  const token = await credential().getToken(scope);
  console.log(
    JSON.stringify({
      token: token.token,
      expiresOnTimestamp: token.expiresOnTimestamp,
    }),
  );
} catch (e) {
  console.error(`${e.name}: ${e.message}`);
  process.exit(1);
}
