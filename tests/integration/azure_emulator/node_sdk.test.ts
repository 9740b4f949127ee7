// The unmodified @azure/identity under Node.js (as an application in a pod runs it) against the emulator.
// ClientCertificateCredential is tested here, not in-process: inside Deno 2.9.6 node:crypto's
// createPrivateKey rejects the key+certificate PEM the credential reads, which Node accepts.

import assert from "node:assert/strict";
import { createClientCertificate } from "../../../scripts/sandbox/azure/client_certificate.ts";
import { type Harness, startHarness } from "./helpers.ts";

const client = new URL("../../clients/node/get_token.mjs", import.meta.url).pathname;

async function nodeGetToken(h: Harness, kind: string, scope: string, env: Record<string, string>) {
  const out = await new Deno.Command("node", {
    args: [client, kind, scope],
    env: { NODE_EXTRA_CA_CERTS: h.emu.caCertPath, AZURE_AUTHORITY_HOST: h.emu.authorityHost, ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("Node @azure/identity ClientCertificateCredential gets a token naming its service principal", async () => {
  const h = await startHarness();
  const dir = await Deno.makeTempDir({ prefix: "node-sp-cert-" });
  try {
    const cert = await createClientCertificate(dir, "app");
    const stranger = await createClientCertificate(dir, "stranger");
    const sp = h.emu.registerServicePrincipal({ certificatePem: cert.certificatePem });
    const env = { AZURE_TENANT_ID: sp.tenantId, AZURE_CLIENT_ID: sp.clientId };

    const ok = await nodeGetToken(h, "certificate", "https://vault.azure.net/.default", {
      ...env,
      AZURE_CLIENT_CERTIFICATE_PATH: cert.combinedPath,
    });
    assert.equal(ok.code, 0, ok.stderr);
    const claims = await h.emu.verifyToken(JSON.parse(ok.stdout).token);
    assert.equal(claims.appid, sp.clientId);
    assert.equal(claims.oid, sp.objectId);
    assert.equal(claims.tid, sp.tenantId);
    assert.equal(claims.aud, "https://vault.azure.net");
    assert.equal(claims.appidacr, "2"); // 2 = authenticated with a certificate
    assert.equal(h.emu.requests.count({ route: "aad.token", status: 200 }), 1);

    // Another key pair with the same client id: the emulated Azure AD refuses it, as the real one would.
    const bad = await nodeGetToken(h, "certificate", "https://vault.azure.net/.default", {
      ...env,
      AZURE_CLIENT_CERTIFICATE_PATH: stranger.combinedPath,
    });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /AADSTS/);
    assert.ok(!bad.stdout.includes("token"), "no token may be printed for the wrong certificate");
  } finally {
    await Deno.remove(dir, { recursive: true });
    await h.close();
  }
});

Deno.test("Node @azure/identity ClientSecretCredential: right secret gets a token, wrong secret an AADSTS error", async () => {
  const h = await startHarness();
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s3cret~value" });
    const env = { AZURE_TENANT_ID: sp.tenantId, AZURE_CLIENT_ID: sp.clientId };
    const ok = await nodeGetToken(h, "secret", "https://management.azure.com/.default", {
      ...env,
      AZURE_CLIENT_SECRET: "s3cret~value",
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((await h.emu.verifyToken(JSON.parse(ok.stdout).token)).appid, sp.clientId);
    const bad = await nodeGetToken(h, "secret", "https://management.azure.com/.default", {
      ...env,
      AZURE_CLIENT_SECRET: "wrong",
    });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /AADSTS7000215/);
  } finally {
    await h.close();
  }
});
