import assert from "node:assert/strict";
import {
  type AccessTokenClaims,
  base64UrlDecode,
  base64UrlEncode,
  decodeJwt,
  generateSigningKey,
  JwtError,
  signRs256,
  verifyToken,
} from "../../../scripts/sandbox/azure/jwt.ts";
import { TokenIssuer } from "../../../scripts/sandbox/azure/tokens.ts";

const key = await generateSigningKey();
const other = await generateSigningKey();
const issuer = new TokenIssuer(key, () => "https://login.example");
const subject = { clientId: "app-1", objectId: "obj-1", tenantId: "tenant-1", appidacr: "1" as const };

async function rejects(p: Promise<unknown>, reason: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof JwtError && e.reason === reason);
}

Deno.test("base64url round-trips bytes, including those that need + and / in base64", () => {
  const bytes = new Uint8Array([0xfb, 0xff, 0xbf, 0x00, 0x3e]);
  const text = base64UrlEncode(bytes);
  assert.ok(!/[+/=]/.test(text));
  assert.deepEqual(base64UrlDecode(text), bytes);
  assert.throws(() => base64UrlDecode("a+b"), JwtError);
});

Deno.test("issued tokens carry the claims that name the principal and verify with the emulator key", async () => {
  const token = await issuer.issue(
    { ...subject, miResourceId: "/subscriptions/s/resourcegroups/rg/x" },
    "aud-1",
    600,
  );
  const claims: AccessTokenClaims = await verifyToken(token.accessToken, key.publicKey, {
    audience: "aud-1",
  });
  assert.equal(claims.appid, "app-1");
  assert.equal(claims.azp, "app-1");
  assert.equal(claims.oid, "obj-1");
  assert.equal(claims.sub, "obj-1");
  assert.equal(claims.tid, "tenant-1");
  assert.equal(claims.iss, "https://login.example/tenant-1/");
  assert.equal(claims.xms_mirid, "/subscriptions/s/resourcegroups/rg/x");
  assert.equal(claims.exp - token.expiresOn, 0);
  assert.equal(decodeJwt(token.accessToken).header.kid, key.kid);
  // The same token verifies against the exported PEM and JWK forms of the key.
  assert.equal((await verifyToken(token.accessToken, key.publicKeyPem)).oid, "obj-1");
  assert.equal((await verifyToken(token.accessToken, key.jwk)).oid, "obj-1");
});

Deno.test("verification fails on another key, a tampered payload, expiry, nbf and audience", async () => {
  const { accessToken } = await issuer.issue(subject, "aud-1", 600);
  await rejects(verifyToken(accessToken, other.publicKey), "signature");
  const [h, p, s] = accessToken.split(".");
  const forged = JSON.parse(new TextDecoder().decode(base64UrlDecode(p)));
  forged.oid = "someone-else";
  await rejects(
    verifyToken(`${h}.${base64UrlEncode(JSON.stringify(forged))}.${s}`, key.publicKey),
    "signature",
  );
  await rejects(verifyToken(accessToken, key.publicKey, { audience: ["aud-2"] }), "audience");
  const now = Math.floor(Date.now() / 1000);
  await rejects(verifyToken(accessToken, key.publicKey, { now: now + 601 }), "expired");
  await rejects(verifyToken(accessToken, key.publicKey, { now: now - 400 }), "not_yet_valid");
  await rejects(verifyToken("a.b", key.publicKey), "malformed");
  await rejects(verifyToken("x.y.z", key.publicKey), "malformed");
});

Deno.test("verification insists on RS256 and on the full claim set", async () => {
  const noClaims = await signRs256({ aud: "a" }, key);
  await rejects(verifyToken(noClaims, key.publicKey), "malformed");
  const [, p, s] = noClaims.split(".");
  const none = `${base64UrlEncode(JSON.stringify({ alg: "none" }))}.${p}.${s}`;
  await rejects(verifyToken(none, key.publicKey), "algorithm");
});
