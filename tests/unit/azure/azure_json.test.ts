import assert from "node:assert/strict";
import { CLOUDS } from "../../../lib/azure/cloud.ts";
import { armCredential } from "../../../lib/azure/credentials.ts";
import {
  AzureConfigError,
  azureConfigFromEnv,
  credentialsOf,
  parseAzureJson,
} from "../../../lib/azure/azure_json.ts";

Deno.test("azure.json: service principal secret, managed identity, certificate", async () => {
  const cfg = await parseAzureJson(
    JSON.stringify({
      cloud: "AzurePublicCloud",
      tenantId: "t",
      subscriptionId: "s",
      resourceGroup: "rg",
      aadClientId: "c",
      aadClientSecret: "shh",
      userAssignedIdentityID: "kubelet-client",
    }),
    "/etc/kubernetes/azure.json",
  );
  assert.deepEqual(credentialsOf(cfg), { kind: "secret", tenantId: "t", clientId: "c", secret: "shh" });
  assert.equal(cfg.userAssignedIdentityId, "kubelet-client");
  const msi = await parseAzureJson(
    '{"subscriptionId":"s","useManagedIdentityExtension":true,"userAssignedIdentityID":"u"}',
    "f",
  );
  assert.deepEqual(credentialsOf(msi), { kind: "managedIdentity", clientId: "u" });
  const cert = await parseAzureJson(
    '{"subscriptionId":"s","tenantId":"t","aadClientId":"c","aadClientCertPath":"/p"}',
    "f",
  );
  assert.equal(credentialsOf(cert).kind, "certificate");
});

Deno.test("azure.json: errors name the source and field, never echo secrets", async () => {
  await assert.rejects(
    () => parseAzureJson("{", "/x.json"),
    (e: Error) => e instanceof AzureConfigError && /\/x\.json/.test(e.message),
  );
  await assert.rejects(() => parseAzureJson('{"tenantId":"t"}', "f"), /subscriptionId is required/);
  await assert.rejects(
    () => parseAzureJson('{"subscriptionId":"s","tenantId":"t","aadClientId":"c"}', "f"),
    /client secret or a certificate/,
  );
  await assert.rejects(
    () => parseAzureJson('{"subscriptionId":"s","useManagedIdentityExtension":"maybe-secret"}', "f"),
    (e: Error) => !e.message.includes("maybe-secret"),
  );
});

Deno.test("azure config from env (upstream's CLOUD, TENANT_ID, ... and USE_MSI)", () => {
  const env: Record<string, string> = {
    CLOUD: "AzureChinaCloud",
    TENANT_ID: "t",
    CLIENT_ID: "c",
    CLIENT_SECRET: "s",
    SUBSCRIPTION_ID: "sub",
  };
  const cfg = azureConfigFromEnv((n) => env[n]);
  assert.equal(cfg.cloud, "AzureChinaCloud");
  assert.equal(credentialsOf(cfg).kind, "secret");
  assert.equal(
    credentialsOf(
      azureConfigFromEnv((n) => ({ SUBSCRIPTION_ID: "s", USE_MSI: "True" } as Record<string, string>)[n]),
    ).kind,
    "managedIdentity",
  );
  assert.throws(() => azureConfigFromEnv(() => undefined), /SUBSCRIPTION_ID is required/);
});

Deno.test("ARM credential: a certificate file that cannot be read is a clear config error", async () => {
  await assert.rejects(
    () =>
      armCredential(
        {
          kind: "certificate",
          tenantId: "t",
          clientId: "c",
          certPath: "/nonexistent/cert.pem",
          password: "",
        },
        CLOUDS.AzurePublicCloud,
      ),
    (e: Error) =>
      e instanceof AzureConfigError && /aadClientCertPath \/nonexistent\/cert\.pem/.test(e.message),
  );
  const cred = await armCredential(
    { kind: "secret", tenantId: "t", clientId: "c", secret: "s" },
    CLOUDS.AzurePublicCloud,
  );
  assert.equal(typeof cred.getToken, "function");
});
