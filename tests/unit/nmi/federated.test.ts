import assert from "node:assert/strict";
import { aadstsCode, federationHint, scopeFor, subjectOf, tokenRequestBody } from "../../../nmi/federated.ts";

Deno.test("federated: the v2 scope keeps a resource's trailing slash (the token's aud is the resource asked for)", () => {
  assert.equal(scopeFor("https://management.azure.com/"), "https://management.azure.com//.default");
  assert.equal(scopeFor("https://vault.azure.net"), "https://vault.azure.net/.default");
  assert.equal(scopeFor("api://my-app"), "api://my-app/.default");
});

Deno.test("federated: the TokenRequest is bound to the pod, one audience, 600 s", () => {
  const body = tokenRequestBody({
    name: "p",
    namespace: "ns",
    uid: "u-1",
    serviceAccount: "sa",
    nodeName: "n",
  }) as { spec: Record<string, unknown> };
  assert.deepEqual(body.spec, {
    audiences: ["api://AzureADTokenExchange"],
    expirationSeconds: 600,
    boundObjectRef: { apiVersion: "v1", kind: "Pod", name: "p", uid: "u-1" },
  });
  assert.equal(subjectOf({ namespace: "ns", serviceAccount: "sa" }), "system:serviceaccount:ns:sa");
});

Deno.test("federated: AADSTS codes read from error_codes or the description; each has a hint", () => {
  assert.equal(aadstsCode({ error_codes: [700213] }), 700213);
  assert.equal(aadstsCode({ error_description: "AADSTS700211: No matching" }), 700211);
  assert.equal(aadstsCode({}), undefined);
  assert.equal(aadstsCode(null), undefined);
  assert.match(federationHint(700213, "system:serviceaccount:a:b", "https://i"), /subject must be/);
  assert.match(federationHint(700211, "s", "https://i"), /issuer 'https:\/\/i'/);
  assert.match(federationHint(700212, "s", "i"), /AzureADTokenExchange/);
  assert.match(federationHint(90061, "s", "https://i"), /openid-configuration/);
  assert.match(federationHint(7000272, "s", "i"), /JWKS/);
  assert.match(federationHint(700024, "s", "i"), /clocks/);
  assert.match(federationHint(70021, "s", "i"), /propagate/);
});
