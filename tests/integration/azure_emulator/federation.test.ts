// Workload identity federation in the emulator: federated identity credentials managed with the real
// @azure/arm-msi, and the v2 token endpoint exchanging an external issuer's assertion for a managed
// identity's token, with each refusal Azure AD gives (issuer, subject, audience, time, discovery, key).

import assert from "node:assert/strict";
/** What the SDK throws for an ARM error (its RestError). */
interface RestError {
  statusCode?: number;
  code?: string;
  message: string;
}
import { type RunningServer, serveHandler } from "../../../scripts/sandbox/azure/http_server.ts";
import { generateSigningKey, type SigningKey, signRs256 } from "../../../scripts/sandbox/azure/jwt.ts";
import { emulatorTls } from "../../../scripts/sandbox/azure/tls.ts";
import { type Harness, sdkClients, startHarness, tokenFor } from "./helpers.ts";

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const EXCHANGE = "api://AzureADTokenExchange";
const SUBJECT = "system:serviceaccount:demo:workload";

/** A minimal OIDC issuer over HTTPS (the sandbox CA), as a cluster's service-account issuer is. */
interface Issuer {
  url: string;
  key: SigningKey;
  /** When false, discovery answers 404. */
  serving: { discovery: boolean };
  sign(claims: Record<string, unknown>): Promise<string>;
  server: RunningServer;
}

async function startIssuer(): Promise<Issuer> {
  const tls = await emulatorTls();
  const key = await generateSigningKey();
  const serving = { discovery: true };
  let url = "";
  const server = await serveHandler({ hostname: "127.0.0.1", port: 0, tls }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/.well-known/openid-configuration" && serving.discovery) {
      return Response.json({ issuer: url, jwks_uri: `${url}/openid/v1/jwks` });
    }
    if (path === "/openid/v1/jwks") return Response.json({ keys: [key.jwk] });
    return new Response("not found", { status: 404 });
  });
  url = server.url;
  return {
    url,
    key,
    serving,
    server,
    sign: (claims) => {
      const now = Math.floor(Date.now() / 1000);
      return signRs256({
        iss: url,
        sub: SUBJECT,
        aud: [EXCHANGE],
        iat: now,
        nbf: now,
        exp: now + 600,
        ...claims,
      }, key);
    },
  };
}

async function exchange(
  h: Harness,
  clientId: string,
  assertion: string,
  scope = "https://vault.azure.net/.default",
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await h.fetch(`${h.emu.authorityHost}/${h.emu.tenantId}/oauth2/v2.0/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: clientId,
      scope,
      client_assertion_type: JWT_BEARER,
      client_assertion: assertion,
    }).toString(),
  });
  return { status: res.status, body: await res.json() };
}

function assertCode(r: { status: number; body: Record<string, unknown> }, code: number): void {
  assert.notEqual(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.error_codes, [code], JSON.stringify(r.body));
  assert.match(String(r.body.error_description), new RegExp(`^AADSTS${code}: `));
  assert.equal(typeof r.body.correlation_id, "string");
}

async function withFederation(fn: (h: Harness, issuer: Issuer) => Promise<void>): Promise<void> {
  const tls = await emulatorTls();
  const ca = await Deno.readTextFile(tls.caCertPath);
  const h = await startHarness({ federationCaCerts: [ca] });
  const issuer = await startIssuer();
  try {
    await fn(h, issuer);
  } finally {
    await issuer.server.stop();
    await h.close();
  }
}

Deno.test("arm-msi creates, reads, lists and deletes federated identity credentials (at most 20)", async () => {
  await withFederation(async (h, issuer) => {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    h.emu.addUserAssignedIdentity({ resourceGroup: "ids", name: "fed" });
    const { msi } = sdkClients(h, sp);
    const created = await msi.federatedIdentityCredentials.createOrUpdate("ids", "fed", "pod-sa", {
      issuer: issuer.url,
      subject: SUBJECT,
      audiences: [EXCHANGE],
    });
    assert.equal(created.name, "pod-sa");
    assert.equal(
      created.type,
      "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
    );
    assert.deepEqual([created.issuer, created.subject, created.audiences], [issuer.url, SUBJECT, [EXCHANGE]]);
    const got = await msi.federatedIdentityCredentials.get("ids", "fed", "pod-sa");
    assert.equal(got.subject, SUBJECT);

    // One audience exactly; an issuer + subject pair once per identity.
    await assert.rejects(
      msi.federatedIdentityCredentials.createOrUpdate("ids", "fed", "two-auds", {
        issuer: issuer.url,
        subject: "x",
        audiences: [EXCHANGE, "other"],
      }),
      (e: RestError) => e.statusCode === 400 && e.code === "InvalidParameter",
    );
    await assert.rejects(
      msi.federatedIdentityCredentials.createOrUpdate("ids", "fed", "same-pair", {
        issuer: issuer.url,
        subject: SUBJECT,
        audiences: [EXCHANGE],
      }),
      (e: RestError) => e.statusCode === 409,
    );
    await assert.rejects(
      msi.federatedIdentityCredentials.createOrUpdate("ids", "fed", "plain-http", {
        issuer: "http://example.test",
        subject: "y",
        audiences: [EXCHANGE],
      }),
      (e: RestError) => e.statusCode === 400,
    );
    for (let i = 1; i < 20; i++) {
      await msi.federatedIdentityCredentials.createOrUpdate("ids", "fed", `fic-${i}`, {
        issuer: issuer.url,
        subject: `sub-${i}`,
        audiences: [EXCHANGE],
      });
    }
    await assert.rejects(
      msi.federatedIdentityCredentials.createOrUpdate("ids", "fed", "fic-21", {
        issuer: issuer.url,
        subject: "sub-21",
        audiences: [EXCHANGE],
      }),
      (e: RestError) => e.statusCode === 400 && /limit is 20/.test(e.message),
    );
    const listed = [];
    for await (const c of msi.federatedIdentityCredentials.list("ids", "fed")) listed.push(c.name);
    assert.equal(listed.length, 20);
    // Replacing an existing one is not a 21st.
    await msi.federatedIdentityCredentials.createOrUpdate("ids", "fed", "fic-1", {
      issuer: issuer.url,
      subject: "sub-1b",
      audiences: [EXCHANGE],
    });
    await msi.federatedIdentityCredentials.delete("ids", "fed", "fic-1");
    await assert.rejects(
      msi.federatedIdentityCredentials.get("ids", "fed", "fic-1"),
      (e: RestError) => e.statusCode === 404,
    );
    // The api-versions before federation existed do not know the type.
    const token = await tokenFor(h, sp);
    const old = await h.fetch(
      `${h.emu.armEndpoint}/subscriptions/${h.emu.subscriptionId}/resourceGroups/ids/providers/` +
        "Microsoft.ManagedIdentity/userAssignedIdentities/fed/federatedIdentityCredentials?api-version=2018-11-30",
      { headers: { authorization: `Bearer ${token}` } },
    );
    assert.equal(old.status, 400);
    assert.equal((await old.json()).error.code, "NoRegisteredProviderFound");
  });
});

Deno.test("Azure AD exchanges a federated assertion for the identity's token and refuses each mismatch with its AADSTS code", async () => {
  await withFederation(async (h, issuer) => {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    const id = h.emu.addUserAssignedIdentity({ resourceGroup: "ids", name: "fed" });
    const { msi } = sdkClients(h, sp);
    const assertion = await issuer.sign({});

    // No credential at all.
    assertCode(await exchange(h, id.clientId, assertion), 70021);

    const put = (props: { issuer?: string; subject?: string; audiences?: string[] }) =>
      msi.federatedIdentityCredentials.createOrUpdate("ids", "fed", "pod-sa", {
        issuer: props.issuer ?? issuer.url,
        subject: props.subject ?? SUBJECT,
        audiences: props.audiences ?? [EXCHANGE],
      });

    await put({ issuer: `${issuer.url}/other` });
    assertCode(await exchange(h, id.clientId, assertion), 700211);
    // Exact, case-sensitive subject.
    await put({ subject: SUBJECT.toUpperCase() });
    assertCode(await exchange(h, id.clientId, assertion), 700213);
    await put({ audiences: ["api://azureadtokenexchange"] });
    assertCode(await exchange(h, id.clientId, assertion), 700212);

    // Fixing the credential heals at once.
    await put({});
    const ok = await exchange(h, id.clientId, assertion);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(typeof ok.body.expires_in, "number");
    const claims = await h.emu.verifyToken(String(ok.body.access_token), {
      audience: "https://vault.azure.net",
    });
    assert.equal(claims.appid, id.clientId);
    assert.equal(claims.oid, id.principalId);
    assert.equal(claims.xms_mirid, id.id);

    // Time: expired beyond the skew, or not yet valid.
    const now = Math.floor(Date.now() / 1000);
    assertCode(await exchange(h, id.clientId, await issuer.sign({ exp: now - 120, nbf: now - 900 })), 700024);
    assertCode(
      await exchange(h, id.clientId, await issuer.sign({ nbf: now + 600, exp: now + 1200 })),
      700024,
    );
    // A key the issuer does not publish.
    const stranger = await generateSigningKey();
    const forged = await signRs256(
      { iss: issuer.url, sub: SUBJECT, aud: [EXCHANGE], nbf: now, exp: now + 600 },
      stranger,
    );
    assertCode(await exchange(h, id.clientId, forged), 7000272);
    // A tampered payload under the right kid.
    const [head, , sig] = assertion.split(".");
    const body = btoa(JSON.stringify({ iss: issuer.url, sub: SUBJECT, aud: [EXCHANGE], exp: now + 9999 }))
      .replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    assertCode(await exchange(h, id.clientId, `${head}.${body}.${sig}`), 700027);
    // The issuer's discovery document unreachable.
    issuer.serving.discovery = false;
    assertCode(await exchange(h, id.clientId, assertion), 90061);
    issuer.serving.discovery = true;
    // A secret is no credential of a managed identity.
    const secret = await h.fetch(`${h.emu.authorityHost}/${h.emu.tenantId}/oauth2/v2.0/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: id.clientId,
        scope: "https://vault.azure.net/.default",
        client_secret: "guess",
      }).toString(),
    });
    assertCode({ status: secret.status, body: await secret.json() }, 7000218);
    assert.equal((await exchange(h, id.clientId, assertion)).status, 200);
    // The v1 endpoint (adal's NewServicePrincipalTokenFromFederatedToken) takes `resource` instead of `scope`.
    const v1 = await h.fetch(`${h.emu.authorityHost}/${h.emu.tenantId}/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: id.clientId,
        resource: "https://management.azure.com/",
        client_assertion_type: JWT_BEARER,
        client_assertion: assertion,
      }).toString(),
    });
    const v1Body = await v1.json();
    assert.equal(v1.status, 200, JSON.stringify(v1Body));
    assert.equal(v1Body.resource, "https://management.azure.com/");
    assert.equal((await h.emu.verifyToken(v1Body.access_token)).appid, id.clientId);
  });
});
