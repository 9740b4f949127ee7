// The SDK client image's program: an unmodified @azure/identity ManagedIdentityCredential (which asks the
// hard-coded 169.254.169.254) gets a token; it prints the token's identifying claims and when it arrived,
// never the token itself (pod logs are kept on the node).
import { ManagedIdentityCredential } from "@azure/identity";

const scope = process.argv[2] ?? "https://management.azure.com/.default";
const clientId = process.env.AZURE_CLIENT_ID;
try {
  const token = await new ManagedIdentityCredential(clientId ? { clientId } : {}).getToken(scope);
  const claims = JSON.parse(Buffer.from(token.token.split(".")[1], "base64url").toString());
  console.log(JSON.stringify({
    receivedAt: Date.now(),
    appid: claims.appid,
    aud: claims.aud,
    xms_mirid: claims.xms_mirid,
    expiresOnTimestamp: token.expiresOnTimestamp,
  }));
} catch (e) {
  console.log(JSON.stringify({ receivedAt: Date.now(), error: `${e.name}: ${e.message}` }));
  process.exit(1);
}
