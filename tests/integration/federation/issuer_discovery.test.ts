// The sandbox apiserver is an OIDC issuer Azure AD can verify: its own https URL is the service-account
// issuer, and anyone (no credentials) may read its discovery document and JWKS.

import assert from "node:assert/strict";
import { decodeJwt, importRsaPublicKey, verifySignature } from "../../../scripts/sandbox/azure/jwt.ts";
import { sharedCluster } from "../../support/cluster.ts";
import { clusterCaPem } from "../../support/federation.ts";

Deno.test("the apiserver serves issuer discovery to unauthenticated callers and signs tokens it can verify", async () => {
  const cluster = await sharedCluster();
  const client = Deno.createHttpClient({ caCerts: [await clusterCaPem(cluster)] });
  try {
    const res = await fetch(`${cluster.server}/.well-known/openid-configuration`, { client });
    assert.equal(res.status, 200);
    const discovery = await res.json();
    assert.equal(discovery.issuer, cluster.server);
    assert.equal(discovery.jwks_uri, `${cluster.server}/openid/v1/jwks`);
    const jwksRes = await fetch(discovery.jwks_uri, { client });
    assert.equal(jwksRes.status, 200);
    const jwks = await jwksRes.json() as { keys: (JsonWebKey & { kid: string })[] };

    const ns = await cluster.namespace("issuer");
    assert.equal((await cluster.kubectl(["-n", ns, "create", "serviceaccount", "workload"])).code, 0);
    const created = await cluster.kubectl([
      "-n",
      ns,
      "create",
      "token",
      "workload",
      "--audience=api://AzureADTokenExchange",
      "--duration=10m",
    ]);
    assert.equal(created.code, 0, created.stderr);
    const jwt = decodeJwt(created.stdout.trim());
    assert.equal(jwt.payload.iss, cluster.server);
    assert.equal(jwt.payload.sub, `system:serviceaccount:${ns}:workload`);
    assert.deepEqual(jwt.payload.aud, ["api://AzureADTokenExchange"]);
    const jwk = jwks.keys.find((k) => k.kid === jwt.header.kid);
    assert.ok(jwk, "the token's kid is in the JWKS");
    assert.ok(await verifySignature(jwt, await importRsaPublicKey(jwk, "RS256")));
  } finally {
    client.close();
  }
});
