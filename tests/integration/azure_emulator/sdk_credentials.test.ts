// @azure/identity's confidential-client credentials against the emulated Azure AD: the tokens they get
// name the right principal, and Azure AD's refusals reach the caller as AuthenticationError.

import assert from "node:assert/strict";
import { constants, createHash, createPrivateKey, sign } from "node:crypto";
import { ClientAssertionCredential, ClientSecretCredential } from "@azure/identity";
import {
  type ClientCertificate,
  createClientCertificate,
} from "../../../scripts/sandbox/azure/client_certificate.ts";
import { base64UrlEncode } from "../../../scripts/sandbox/azure/jwt.ts";
import { type Harness, sdkTls, startHarness } from "./helpers.ts";

function authority(h: Harness) {
  return { authorityHost: h.emu.authorityHost, disableInstanceDiscovery: true, ...sdkTls(h) };
}

Deno.test("ClientSecretCredential gets a token whose claims name its service principal", async () => {
  const h = await startHarness();
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "abc~123" });
    const other = h.emu.registerServicePrincipal({ secret: "other" });
    const credential = new ClientSecretCredential(sp.tenantId, sp.clientId, "abc~123", authority(h));
    const token = await credential.getToken("https://vault.azure.net/.default");
    const claims = await h.emu.verifyToken(token.token, { audience: "https://vault.azure.net" });
    assert.equal(claims.appid, sp.clientId);
    assert.equal(claims.oid, sp.objectId);
    assert.notEqual(claims.oid, other.objectId);
    assert.equal(claims.tid, h.emu.tenantId);
    assert.equal(claims.appidacr, "1");
    assert.equal(claims.xms_mirid, undefined);
    assert.ok(token.expiresOnTimestamp > Date.now() + 3000 * 1000);
    // MSAL fetched the tenant's OpenID configuration, then the token; no secret appears in the log.
    assert.deepEqual(h.emu.requests.routes(), ["aad.discovery", "aad.token"]);
    assert.ok(!JSON.stringify(h.emu.requests.list()).includes("abc~123"));
  } finally {
    await h.close();
  }
});

Deno.test("ClientSecretCredential with a wrong secret fails with AADSTS7000215", async () => {
  const h = await startHarness();
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "right" });
    const credential = new ClientSecretCredential(sp.tenantId, sp.clientId, "wrong", authority(h));
    // @azure/identity reports Azure AD's error code and description in the message.
    await assert.rejects(
      credential.getToken("https://management.azure.com/.default"),
      (e: unknown) =>
        e instanceof Error && /invalid_client/.test(e.message) && /AADSTS7000215/.test(e.message),
    );
    const unknown = new ClientSecretCredential(sp.tenantId, crypto.randomUUID(), "right", authority(h));
    await assert.rejects(
      unknown.getToken("https://management.azure.com/.default"),
      (e: unknown) =>
        e instanceof Error && /unauthorized_client/.test(e.message) && /AADSTS700016/.test(e.message),
    );
    assert.deepEqual(h.emu.requests.list({ route: "aad.token" }).map((r) => r.status), [401, 400]);
  } finally {
    await h.close();
  }
});

/**
 * The assertion MSAL builds from a certificate (msal-node ClientAssertion): PS256 with x5t#S256, or
 * RS256 with x5t. ClientCertificateCredential itself cannot run on Deno 2.9.6: Deno's createPrivateKey
 * rejects the PEM holding key and certificate that it is given, before any request is sent.
 */
function certificateAssertion(
  cert: ClientCertificate,
  keyPem: string,
  clientId: string,
  aud: string,
  alg: "PS256" | "RS256",
) {
  const der = Uint8Array.from(
    atob(cert.certificatePem.replace(/-----[A-Z ]+-----|\s/g, "")),
    (c) => c.charCodeAt(0),
  );
  const header = alg === "PS256"
    ? {
      alg,
      typ: "JWT",
      "x5t#S256": base64UrlEncode(new Uint8Array(createHash("sha256").update(der).digest())),
    }
    : { alg, typ: "JWT", x5t: base64UrlEncode(new Uint8Array(createHash("sha1").update(der).digest())) };
  const now = Math.floor(Date.now() / 1000);
  const payload = { aud, iss: clientId, sub: clientId, jti: crypto.randomUUID(), nbf: now, exp: now + 600 };
  const input = `${base64UrlEncode(JSON.stringify(header))}.${base64UrlEncode(JSON.stringify(payload))}`;
  const key = createPrivateKey(keyPem);
  const signature = alg === "PS256"
    ? sign("sha256", new TextEncoder().encode(input), {
      key,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    })
    : sign("sha256", new TextEncoder().encode(input), key);
  return `${input}.${base64UrlEncode(new Uint8Array(signature))}`;
}

Deno.test("a certificate client assertion (PS256 and RS256) gets a token for its service principal", async () => {
  const h = await startHarness();
  const dir = await Deno.makeTempDir({ prefix: "sp-cert-" });
  try {
    const cert = await createClientCertificate(dir, "controller");
    const stranger = await createClientCertificate(dir, "stranger");
    const keyPem = await Deno.readTextFile(cert.keyPath);
    const strangerKey = await Deno.readTextFile(stranger.keyPath);
    const sp = h.emu.registerServicePrincipal({ certificatePem: cert.certificatePem });
    assert.equal(sp.secret, undefined);
    const tokenEndpoint = `${h.emu.authorityHost}/${sp.tenantId}/oauth2/v2.0/token`;

    for (const alg of ["PS256", "RS256"] as const) {
      const credential = new ClientAssertionCredential(
        sp.tenantId,
        sp.clientId,
        () => Promise.resolve(certificateAssertion(cert, keyPem, sp.clientId, tokenEndpoint, alg)),
        authority(h),
      );
      const token = await credential.getToken("https://management.azure.com/.default");
      const claims = await h.emu.verifyToken(token.token);
      assert.equal(claims.appid, sp.clientId, alg);
      assert.equal(claims.oid, sp.objectId, alg);
      assert.equal(claims.appidacr, "2", alg);
    }

    // Same thumbprint header, wrong key: the signature does not verify against the registered certificate.
    const impostor = new ClientAssertionCredential(
      sp.tenantId,
      sp.clientId,
      () => Promise.resolve(certificateAssertion(cert, strangerKey, sp.clientId, tokenEndpoint, "PS256")),
      authority(h),
    );
    await assert.rejects(
      impostor.getToken("https://management.azure.com/.default"),
      (e: unknown) => e instanceof Error && /AADSTS700027/.test(e.message),
    );
    assert.deepEqual(h.emu.requests.list({ route: "aad.token" }).map((r) => r.status), [200, 200, 401]);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await h.close();
  }
});
