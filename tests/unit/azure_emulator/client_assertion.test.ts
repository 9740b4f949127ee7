import assert from "node:assert/strict";
import { constants, createPrivateKey, sign } from "node:crypto";
import { checkClientAssertion } from "../../../scripts/sandbox/azure/client_assertion.ts";
import { createClientCertificate } from "../../../scripts/sandbox/azure/client_certificate.ts";
import { parseCertificate, type RegisteredCertificate } from "../../../scripts/sandbox/azure/directory.ts";
import { base64UrlEncode } from "../../../scripts/sandbox/azure/jwt.ts";

const dir = await Deno.makeTempDir({ prefix: "assertion-test-" });
const good = await createClientCertificate(dir, "good");
const rogue = await createClientCertificate(dir, "rogue");
const goodKey = createPrivateKey(await Deno.readTextFile(good.keyPath));
const rogueKey = createPrivateKey(await Deno.readTextFile(rogue.keyPath));
const registered: RegisteredCertificate = parseCertificate(await Deno.readTextFile(good.combinedPath));
await Deno.remove(dir, { recursive: true });

const CLIENT = "11111111-2222-3333-4444-555555555555";
const AUD = "https://login.example/tenant/oauth2/v2.0/token";
const NOW = Math.floor(Date.now() / 1000);

function assertion(
  opts: {
    alg?: "RS256" | "PS256";
    header?: Record<string, unknown>;
    claims?: Record<string, unknown>;
    key?: typeof goodKey;
  } = {},
): string {
  const alg = opts.alg ?? "PS256";
  const header = {
    alg,
    typ: "JWT",
    ...(alg === "PS256" ? { "x5t#S256": registered.x5tS256 } : { x5t: registered.x5t }),
    ...opts.header,
  };
  const claims = {
    aud: AUD,
    iss: CLIENT,
    sub: CLIENT,
    jti: crypto.randomUUID(),
    nbf: NOW,
    exp: NOW + 600,
    ...opts.claims,
  };
  const input = `${base64UrlEncode(JSON.stringify(header))}.${base64UrlEncode(JSON.stringify(claims))}`;
  const signature = alg === "RS256"
    ? sign("sha256", new TextEncoder().encode(input), opts.key ?? goodKey)
    : sign("sha256", new TextEncoder().encode(input), {
      key: opts.key ?? goodKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    });
  return `${input}.${base64UrlEncode(new Uint8Array(signature))}`;
}

const check = (jwt: string, now = NOW) =>
  checkClientAssertion(jwt, {
    clientId: CLIENT,
    audiences: [AUD],
    certificates: [registered],
    now,
    skewSeconds: 300,
  });

Deno.test("assertions signed PS256 (x5t#S256) and RS256 (x5t) by the registered certificate are accepted", async () => {
  assert.equal(await check(assertion({ alg: "PS256" })), undefined);
  assert.equal(await check(assertion({ alg: "RS256" })), undefined);
  // Audience comparison ignores a trailing slash and casing, as Azure AD does.
  assert.equal(await check(assertion({ claims: { aud: AUD.toUpperCase() + "/" } })), undefined);
});

Deno.test("assertions are rejected with Azure AD's codes for each failure", async () => {
  const cases: [string, string, number][] = [
    ["garbage", "not.a.jwt", 50027],
    ["unsupported alg", assertion({ header: { alg: "ES256" } }), 5002738],
    ["no thumbprint", assertion({ header: { "x5t#S256": undefined } }), 700027],
    ["unregistered certificate", assertion({ header: { "x5t#S256": "AAAA" } }), 700027],
    ["signed by another key", assertion({ key: rogueKey }), 700027],
    ["iss is another app", assertion({ claims: { iss: "someone-else" } }), 700021],
    ["sub is another app", assertion({ claims: { sub: "someone-else" } }), 700021],
    [
      "wrong audience",
      assertion({ claims: { aud: "https://login.example/other/oauth2/v2.0/token" } }),
      700023,
    ],
    ["expired beyond skew", assertion({ claims: { exp: NOW - 301, nbf: NOW - 900 } }), 700024],
    ["not yet valid", assertion({ claims: { nbf: NOW + 301 } }), 700024],
    ["no exp", assertion({ claims: { exp: undefined } }), 50027],
  ];
  for (const [name, jwt, code] of cases) {
    const failure = await check(jwt);
    assert.equal(failure?.code, code, name);
  }
});

Deno.test("an expired registered certificate no longer authenticates", async () => {
  const failure = await check(assertion(), Math.floor(registered.notAfter / 1000) + 1);
  assert.equal(failure?.code, 700027);
  assert.match(failure!.description, /expired/);
});
