// The CLI the demo uses: start from a JSON config, print endpoints as JSON, serve until SIGTERM.

import assert from "node:assert/strict";

const MAIN = new URL("../../../scripts/sandbox/azure/main.ts", import.meta.url).pathname;

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  try {
    while (!buffered.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
    }
  } finally {
    await reader.cancel();
  }
  return buffered.split("\n")[0];
}

Deno.test("main.ts starts the emulator from a config, prints its endpoints and stops on SIGTERM", async () => {
  const dir = await Deno.makeTempDir({ prefix: "azure-emulator-cli-" });
  const configPath = `${dir}/config.json`;
  await Deno.writeTextFile(
    configPath,
    JSON.stringify({
      lroDurationMs: 0,
      knownResources: ["https://cli.example"],
      imdsMetadataHeader: "case-insensitive",
      identities: [{
        resourceGroup: "identities",
        name: "demo",
        clientId: "00000000-0000-4000-8000-0000000000de",
      }],
      vmss: [{ resourceGroup: "MC_demo", name: "pool", userAssignedIdentities: ["identities/demo"] }],
      servicePrincipals: [{
        clientId: "7d6f7ffa-0000-4000-8000-00000000c11e",
        secret: "demo-secret",
        writeScopes: [],
      }],
      imds: [{ vmss: "MC_demo/pool", instance: 0 }],
    }),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, configPath],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let client: Deno.HttpClient | undefined;
  try {
    const info = JSON.parse(await firstLine(child.stdout));
    assert.match(info.armEndpoint, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(info.authorityHost, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(info.identities[0].name, "demo");
    assert.equal(
      info.identities[0].clientId,
      "00000000-0000-4000-8000-0000000000de",
      "a fixed client id is kept",
    );
    assert.deepEqual(info.servicePrincipals.map((s: { clientId: string }) => s.clientId), [
      "7d6f7ffa-0000-4000-8000-00000000c11e",
    ]);
    assert.ok(!JSON.stringify(info).includes("demo-secret"), "secrets are not printed");

    client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(info.caCertPath)] });
    const token = await fetch(`${info.authorityHost}/${info.tenantId}/oauth2/v2.0/token`, {
      client,
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: "7d6f7ffa-0000-4000-8000-00000000c11e",
        client_secret: "demo-secret",
        scope: "https://management.azure.com/.default",
      }),
    }).then((r) => r.json());
    const vmss = await fetch(
      `${info.armEndpoint}${info.vmss[0].id}?api-version=2026-04-01`,
      { client, headers: { authorization: `Bearer ${token.access_token}` } },
    ).then((r) => r.json());
    assert.equal(vmss.identity.type, "UserAssigned");
    const mi = await fetch(
      `${
        info.imds[0].url
      }/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net`,
      { headers: { Metadata: "true" } },
    );
    assert.equal(mi.status, 200);
    assert.equal((await mi.json()).client_id, info.identities[0].clientId);

    // The Azure-reality options reach the emulator: a configured resource and header check, and RBAC.
    const custom = await fetch(
      `${
        info.imds[0].url
      }/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://cli.example`,
      { headers: { Metadata: "True" } },
    );
    assert.equal(custom.status, 200);
    await custom.body?.cancel();
    const denied = await fetch(`${info.armEndpoint}${info.vmss[0].id}?api-version=2026-04-01`, {
      client,
      method: "PATCH",
      headers: { authorization: `Bearer ${token.access_token}`, "content-type": "application/json" },
      body: JSON.stringify({ tags: {} }),
    });
    assert.equal(denied.status, 403);
    assert.equal((await denied.json()).error.code, "AuthorizationFailed");
  } finally {
    client?.close();
    child.kill("SIGTERM");
    const status = await child.status;
    await child.stderr.cancel();
    await Deno.remove(dir, { recursive: true });
    assert.equal(status.code, 0);
  }
});

Deno.test("main.ts refuses a config with a mistake and says where", async () => {
  const dir = await Deno.makeTempDir({ prefix: "azure-emulator-cli-" });
  try {
    await Deno.writeTextFile(
      `${dir}/bad.json`,
      JSON.stringify({ vms: [{ resourceGroup: "rg", nmae: "vm" }] }),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, `${dir}/bad.json`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 1);
    assert.equal(new TextDecoder().decode(out.stdout), "");
    assert.match(new TextDecoder().decode(out.stderr), /config \$\.vms\[0\]\.nmae: unknown key/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
