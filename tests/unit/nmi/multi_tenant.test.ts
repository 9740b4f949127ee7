import assert from "node:assert/strict";
import { auxiliaryTenantsOf, tokenAnswerJson, withAuxiliary } from "../../../nmi/multi_tenant.ts";
import type { Token } from "../../../nmi/token.ts";
import { identity } from "./fixtures.ts";
import { assertImdsTokenFields } from "../../support/imds_token.ts";

const token = (accessToken: string, expiresOn: number): Token => ({
  accessToken,
  expiresOn,
  notBefore: 1000,
  resource: "https://management.azure.com/",
  tokenType: "Bearer",
  clientId: "",
});

Deno.test("a multi-tenant token is answered as an array: primary first, then auxiliary tenants in order, each IMDS-shaped", () => {
  const t = withAuxiliary(token("primary", 5000), [token("aux1", 5000), token("aux2", 5000)]);
  const body = tokenAnswerJson(t, "client-a", 2000);
  assert.ok(Array.isArray(body));
  assert.deepEqual(body.map((b) => b.access_token), ["primary", "aux1", "aux2"]);
  for (const b of body) {
    assertImdsTokenFields(b);
    assert.equal(b.client_id, "client-a");
    assert.equal(b.expires_in, "3000");
    assert.equal(b.resource, "https://management.azure.com/");
  }
  // The wire form is a JSON array (the original marshalled []msiResponse).
  assert.match(JSON.stringify(body), /^\[\{"access_token":"primary"/);
});

Deno.test("a token without auxiliary tenants is answered as one object, as before", () => {
  const body = tokenAnswerJson(token("only", 5000), "client-a", 2000);
  assert.ok(!Array.isArray(body));
  assert.equal(body.access_token, "only");
});

Deno.test("the bundle expires with its shortest-lived token (the cache never serves an expired auxiliary token)", () => {
  const t = withAuxiliary(token("primary", 5000), [token("aux1", 4000)]);
  assert.equal(t.expiresOn, 4000);
  assert.equal(t.auxiliary?.[0].expiresOn, 4000);
  assert.equal(withAuxiliary(token("p", 3000), [token("a", 4000)]).expiresOn, 3000);
});

Deno.test("auxiliary tenants: type 1 only, one to three, no empty entry", () => {
  const sp = (aux: string[], type = 1) =>
    identity("ns", "sp", { type, tenantID: "t0", auxiliaryTenantIDs: aux });
  assert.deepEqual(auxiliaryTenantsOf(sp(["t1", "t2"])), ["t1", "t2"]);
  assert.deepEqual(auxiliaryTenantsOf(sp([])), []);
  // The original's certificate path took no auxiliary tenants.
  assert.deepEqual(auxiliaryTenantsOf(sp(["t1"], 2)), []);
  assert.throws(() => auxiliaryTenantsOf(sp(["t1", "t2", "t3", "t4"])), /4 auxiliaryTenantIDs.*one to three/);
  assert.throws(() => auxiliaryTenantsOf(sp(["t1", " "])), /empty tenant id/);
});
