import assert from "node:assert/strict";
import { CloudConfigError, CLOUDS, resolveCloud } from "../../../lib/azure/cloud.ts";

Deno.test("cloud: names as azure.json writes them, case-insensitive, with or without the suffix", () => {
  assert.equal(resolveCloud(""), CLOUDS.AzurePublicCloud);
  assert.equal(resolveCloud("AzurePublicCloud"), CLOUDS.AzurePublicCloud);
  assert.equal(resolveCloud("azurechinacloud"), CLOUDS.AzureChinaCloud);
  assert.equal(resolveCloud("AzureUSGovernment"), CLOUDS.AzureUSGovernmentCloud);
  assert.throws(() => resolveCloud("Mars"), CloudConfigError);
});

Deno.test("cloud: go-autorest's other names (AzureCloud, AzureGermanCloud) as the original accepted", () => {
  assert.equal(resolveCloud("AzureCloud"), CLOUDS.AzurePublicCloud);
  assert.equal(resolveCloud("AZURECLOUD"), CLOUDS.AzurePublicCloud);
  assert.equal(resolveCloud("AzureGermanCloud"), CLOUDS.AzureGermanCloud);
});

Deno.test("cloud: AzureStackCloud reads go-autorest's environment file", () => {
  const text = JSON.stringify({
    name: "Emulated",
    resourceManagerEndpoint: "https://127.0.0.1:8443",
    activeDirectoryEndpoint: "https://127.0.0.1:8444/",
  });
  const env = resolveCloud("AzureStackCloud", { path: "env.json", text });
  assert.deepEqual(env, {
    name: "Emulated",
    resourceManagerEndpoint: "https://127.0.0.1:8443/",
    activeDirectoryEndpoint: "https://127.0.0.1:8444/",
    tokenAudience: "https://127.0.0.1:8443/",
  });
  assert.throws(() => resolveCloud("AzureStackCloud"), /AZURE_ENVIRONMENT_FILEPATH/);
  assert.throws(() => resolveCloud("AzureStackCloud", { path: "e", text: "{" }), /e: not JSON/);
  assert.throws(
    () => resolveCloud("AzureStackCloud", { path: "e", text: '{"resourceManagerEndpoint":"x"}' }),
    /needs resourceManagerEndpoint and activeDirectoryEndpoint/,
  );
});
