// The emulated Azure AD over plain HTTP: discovery documents, both token endpoints' success shapes, and
// each refusal with Azure AD's status, `error`, AADSTS code and body shape.

import assert from "node:assert/strict";
import { verifyToken } from "../../../scripts/sandbox/azure/jwt.ts";
import { type Harness, startHarness } from "./helpers.ts";

type Json = Record<string, unknown>;

async function post(
  h: Harness,
  path: string,
  params: Record<string, string>,
  headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" },
): Promise<{ status: number; body: Json }> {
  const res = await h.fetch(`${h.emu.authorityHost}${path}`, {
    method: "POST",
    headers,
    body: new URLSearchParams(params).toString(),
  });
  return { status: res.status, body: await res.json() };
}

function assertAadError(
  r: { status: number; body: Json },
  status: number,
  error: string,
  code: number,
): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.error, error);
  assert.deepEqual(r.body.error_codes, [code]);
  assert.match(String(r.body.error_description), new RegExp(`^AADSTS${code}: `));
}

Deno.test("a wrong client secret gets AADSTS7000215 in Azure AD's exact error shape", async () => {
  const h = await startHarness();
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "correct horse" });
    const correlation = crypto.randomUUID();
    const r = await post(h, `/${sp.tenantId}/oauth2/v2.0/token`, {
      grant_type: "client_credentials",
      client_id: sp.clientId,
      client_secret: "battery staple",
      scope: "https://management.azure.com/.default",
    }, { "content-type": "application/x-www-form-urlencoded", "client-request-id": correlation });
    assertAadError(r, 401, "invalid_client", 7000215);
    assert.deepEqual(Object.keys(r.body).sort(), [
      "correlation_id",
      "error",
      "error_codes",
      "error_description",
      "error_uri",
      "timestamp",
      "trace_id",
    ]);
    assert.equal(r.body.correlation_id, correlation);
    assert.match(String(r.body.timestamp), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
    assert.match(String(r.body.trace_id), /^[0-9a-f-]{36}$/);
    const description = String(r.body.error_description);
    assert.ok(
      description.includes(`Trace ID: ${r.body.trace_id}`) &&
        description.includes(`Correlation ID: ${correlation}`),
    );
    assert.ok(description.includes(sp.clientId));
    assert.ok(!JSON.stringify(h.emu.requests.list()).includes("battery staple"));
  } finally {
    await h.close();
  }
});

Deno.test("token requests are refused with the status and AADSTS code Azure AD uses", async () => {
  const h = await startHarness();
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    const t = sp.tenantId;
    const base = {
      grant_type: "client_credentials",
      client_id: sp.clientId,
      client_secret: "s",
      scope: "api://x/.default",
    };
    const v2 = `/${t}/oauth2/v2.0/token`;

    assertAadError(
      await post(h, v2, { ...base, client_id: "00000000-1111-2222-3333-444444444444" }),
      400,
      "unauthorized_client",
      700016,
    );
    assertAadError(
      await post(h, `/aaaaaaaa-0000-0000-0000-000000000000/oauth2/v2.0/token`, base),
      400,
      "invalid_request",
      90002,
    );
    assertAadError(await post(h, "/common/oauth2/v2.0/token", base), 400, "invalid_request", 50059);
    const { grant_type: _g, ...noGrant } = base;
    assertAadError(await post(h, v2, noGrant), 400, "invalid_request", 900144);
    // Azure AD only reads form bodies: a JSON body is a request without parameters.
    const json = await h.fetch(`${h.emu.authorityHost}${v2}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(base),
    });
    assertAadError({ status: json.status, body: await json.json() }, 400, "invalid_request", 900144);
    const get = await h.fetch(`${h.emu.authorityHost}${v2}`);
    assertAadError({ status: get.status, body: await get.json() }, 400, "invalid_request", 900561);
    assertAadError(
      await post(h, v2, { ...base, grant_type: "password" }),
      400,
      "unsupported_grant_type",
      70003,
    );
    const { client_id: _c, ...noClient } = base;
    assertAadError(await post(h, v2, noClient), 400, "invalid_request", 900144);
    assertAadError(
      await post(h, v2, { ...base, scope: "https://graph.microsoft.com/User.Read" }),
      400,
      "invalid_scope",
      1002012,
    );
    const { scope: _s, ...noScope } = base;
    assertAadError(await post(h, `/${t}/oauth2/token`, noScope), 400, "invalid_request", 900144);
    const { client_secret: _x, ...noCredential } = base;
    assertAadError(await post(h, v2, noCredential), 401, "invalid_client", 7000218);
    assertAadError(
      await post(h, v2, { ...base, client_assertion: "a.b.c", client_assertion_type: "x" }),
      401,
      "invalid_client",
      50012,
    );
    assertAadError(
      await post(h, v2, { ...noCredential, client_assertion: "a.b.c" }),
      400,
      "invalid_request",
      900144,
    );
    assertAadError(
      await post(h, v2, { ...noCredential, client_assertion: "a.b.c", client_assertion_type: "urn:other" }),
      401,
      "invalid_client",
      70002,
    );
    assertAadError(
      await post(h, v2, {
        ...noCredential,
        client_assertion: "not-a-jwt",
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      }),
      401,
      "invalid_client",
      50027,
    );
    assert.equal(h.emu.requests.count({ route: "aad.token", status: 200 }), 0);
  } finally {
    await h.close();
  }
});

Deno.test("v1 and v2 token responses have their own shapes and audiences", async () => {
  const h = await startHarness();
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    const common = { grant_type: "client_credentials", client_id: sp.clientId, client_secret: "s" };
    const v2 = await post(h, `/${sp.tenantId}/oauth2/v2.0/token`, {
      ...common,
      scope: "https://management.azure.com/.default",
    });
    assert.equal(v2.status, 200);
    assert.deepEqual(Object.keys(v2.body).sort(), [
      "access_token",
      "expires_in",
      "ext_expires_in",
      "token_type",
    ]);
    assert.equal(v2.body.token_type, "Bearer");
    assert.equal(typeof v2.body.expires_in, "number");
    assert.equal((await h.emu.verifyToken(String(v2.body.access_token))).aud, "https://management.azure.com");

    const v1 = await post(h, `/${sp.tenantId}/oauth2/token`, {
      ...common,
      resource: "https://management.core.windows.net/",
    });
    assert.equal(v1.status, 200);
    for (const k of ["expires_in", "ext_expires_in", "expires_on", "not_before"]) {
      assert.match(String(v1.body[k]), /^\d+$/, k);
      assert.equal(typeof v1.body[k], "string", k);
    }
    assert.equal(v1.body.resource, "https://management.core.windows.net/");
    const claims = await h.emu.verifyToken(String(v1.body.access_token));
    assert.equal(claims.aud, "https://management.core.windows.net/");
    assert.equal(Number(v1.body.expires_on), claims.exp);
  } finally {
    await h.close();
  }
});

Deno.test("discovery: OpenID configuration, instance discovery and the signing keys", async () => {
  const h = await startHarness();
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "s" });
    const get = async (path: string) => {
      const res = await h.fetch(`${h.emu.authorityHost}${path}`);
      return { status: res.status, body: await res.json() as Json };
    };
    const oidc = await get(`/${sp.tenantId}/v2.0/.well-known/openid-configuration`);
    assert.equal(oidc.status, 200);
    assert.equal(oidc.body.token_endpoint, `${h.emu.authorityHost}/${sp.tenantId}/oauth2/v2.0/token`);
    assert.equal(oidc.body.issuer, `${h.emu.authorityHost}/${sp.tenantId}/v2.0`);
    assert.deepEqual(
      ["authorization_endpoint", "token_endpoint", "issuer", "jwks_uri", "end_session_endpoint"].filter((k) =>
        !(k in oidc.body)
      ),
      [],
    );
    const v1 = await get(`/${sp.tenantId}/.well-known/openid-configuration`);
    assert.equal(v1.body.token_endpoint, `${h.emu.authorityHost}/${sp.tenantId}/oauth2/token`);
    const unknownTenant = await get(
      `/bbbbbbbb-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration`,
    );
    assert.equal(unknownTenant.status, 400);
    assert.equal(unknownTenant.body.error, "invalid_tenant");

    const authorize = encodeURIComponent(`${h.emu.authorityHost}/${sp.tenantId}/oauth2/v2.0/authorize`);
    const instance = await get(
      `/common/discovery/instance?api-version=1.1&authorization_endpoint=${authorize}`,
    );
    const host = new URL(h.emu.authorityHost).host;
    assert.equal(
      instance.body.tenant_discovery_endpoint,
      `${h.emu.authorityHost}/${sp.tenantId}/v2.0/.well-known/openid-configuration`,
    );
    assert.deepEqual(instance.body.metadata, [{
      preferred_network: host,
      preferred_cache: host,
      aliases: [host],
    }]);

    const jwks = await get(String(oidc.body.jwks_uri).replace(h.emu.authorityHost, ""));
    const [jwk] = jwks.body.keys as JsonWebKey[];
    const token = await post(h, `/${sp.tenantId}/oauth2/v2.0/token`, {
      grant_type: "client_credentials",
      client_id: sp.clientId,
      client_secret: "s",
      scope: "https://vault.azure.net/.default",
    });
    // Anyone holding only the published key can verify the emulator's tokens.
    assert.equal((await verifyToken(String(token.body.access_token), jwk)).appid, sp.clientId);
    assert.equal((await verifyToken(String(token.body.access_token), h.emu.publicKeyPem)).appid, sp.clientId);
  } finally {
    await h.close();
  }
});
