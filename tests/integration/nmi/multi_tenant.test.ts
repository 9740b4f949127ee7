// Multi-tenant service principals (AzureIdentity type 1 with spec.auxiliaryTenantIDs) through the real
// apiserver, the emulated Azure AD (one application registered in three tenants, as a multi-tenant app has a
// service principal in each) and NMI: the answer is a JSON array, primary tenant first, as the original's.

import assert from "node:assert/strict";
import { Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { startHarness, tokenPath, waitUntil } from "./harness.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const RESOURCE = "https://management.azure.com/";

async function run(cmd: string, args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(cmd, { args, env, cwd: ROOT, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The Python of the test clients `deno task setup` installs (azure-identity). */
async function pythonBin(): Promise<string> {
  const fromEnv = Deno.env.get("AAD_PYTHON");
  if (fromEnv) return fromEnv;
  const text = await Deno.readTextFile(`${Deno.env.get("HOME")}/.cache/aad-pod-identity-sandbox/clients.env`);
  const python = /^AAD_PYTHON=(.*)$/m.exec(text)?.[1];
  assert.ok(python, "the Python client is installed by `deno task setup`");
  return python;
}

Deno.test("multi-tenant service principal: an array of primary + auxiliary tokens, cached as one, refused as one", async () => {
  const h = await startHarness();
  try {
    const primary = h.emu.registerServicePrincipal();
    const [aux1, aux2, noApp] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    const sps = [aux1, aux2].map((tenantId) =>
      h.emu.registerServicePrincipal({ tenantId, clientId: primary.clientId, secret: primary.secret })
    );
    // A tenant that exists but where the application has no service principal: Azure AD refuses it.
    h.emu.registerServicePrincipal({ tenantId: noApp });
    await h.kube.create(Resources.secrets, {
      metadata: { name: "mt-secret", namespace: h.ns },
      data: { clientSecret: btoa(primary.secret!) },
    } as KubeObject);
    const spec = (aux: string[]) => ({
      type: 1 as const,
      clientID: primary.clientId,
      tenantID: primary.tenantId,
      auxiliaryTenantIDs: aux,
      clientPassword: { name: "mt-secret", namespace: h.ns },
    });
    const good = await h.createIdentity("mt-good", spec([aux1, aux2]));
    const bad = await h.createIdentity("mt-bad", spec([aux1, noApp]));
    const many = await h.createIdentity("mt-many", spec([aux1, aux2, noApp, aux1]));
    const bg = await h.createBinding("b-good", "mt-good", "mt-good");
    const bb = await h.createBinding("b-bad", "mt-bad", "mt-bad");
    const bm = await h.createBinding("b-many", "mt-many", "mt-many");
    const pg = await h.createPod("p-good", { aadpodidbinding: "mt-good" });
    const pb = await h.createPod("p-bad", { aadpodidbinding: "mt-bad" });
    const pm = await h.createPod("p-many", { aadpodidbinding: "mt-many" });
    await h.assign(pg, good, bg, "Assigned");
    await h.assign(pb, bad, bb, "Assigned");
    await h.assign(pm, many, bm, "Assigned");

    const aad = () => h.emu.requests.count({ service: "aad", route: "aad.token" });
    const before = aad();
    const r = await h.get(pg.ip, tokenPath(RESOURCE));
    assert.equal(r.status, 200, r.text);
    assert.ok(Array.isArray(r.json), `an array: ${r.text.slice(0, 80)}`);
    assert.equal(r.json.length, 3);
    const expected = [primary, ...sps];
    for (const [i, t] of (r.json as Record<string, string>[]).entries()) {
      for (const v of Object.values(t)) assert.equal(typeof v, "string");
      assert.equal(t.client_id, primary.clientId);
      assert.equal(t.token_type, "Bearer");
      const claims = await h.emu.verifyToken(t.access_token);
      assert.equal(claims.tid, expected[i].tenantId, `token ${i}`);
      assert.equal(claims.oid, expected[i].objectId, `token ${i}`);
      assert.equal(claims.appid, primary.clientId);
      assert.equal(claims.aud, RESOURCE);
    }
    assert.equal(aad() - before, 3, "one Azure AD call per tenant");

    // Second request: the whole array from NMI's cache, no Azure AD call.
    const again = await h.get(pg.ip, tokenPath(RESOURCE));
    assert.equal(again.status, 200);
    assert.deepEqual(
      (again.json as Record<string, string>[]).map((t) => t.access_token),
      (r.json as Record<string, string>[]).map((t) => t.access_token),
    );
    assert.equal(aad() - before, 3, "served from the cache");

    // /host/token answers the primary token alone, as the original (tokens[0]).
    const host = await h.get(
      "127.0.0.1",
      `/host/token/?resource=${encodeURIComponent(RESOURCE)}`,
      { podname: pg.name, podns: h.ns },
    );
    assert.equal(host.status, 200, host.text);
    assert.equal((await h.emu.verifyToken(host.json.token.access_token)).tid, primary.tenantId);

    // One refused auxiliary tenant refuses the whole request (403, as the original), naming the tenant.
    const refused = await h.get(pb.ip, tokenPath(RESOURCE));
    assert.equal(refused.status, 403, refused.text);
    assert.ok(!Array.isArray(refused.json));
    assert.ok(refused.text.includes(`auxiliary tenant ${noApp}`), refused.text);
    assert.doesNotMatch(refused.text, /eyJ/, "no token in a refusal");
    // More than three auxiliary tenants (adal's limit): refused with the reason, before any Azure AD call.
    const calls = aad();
    const tooMany = await h.get(pm.ip, tokenPath(RESOURCE));
    assert.equal(tooMany.status, 403, tooMany.text);
    assert.match(tooMany.text, /4 auxiliaryTenantIDs; Azure AD multi-tenant tokens take one to three/);
    assert.equal(aad(), calls);

    // An unmodified SDK asking for the token: @azure/identity's ManagedIdentityCredential expects one IMDS
    // object and cannot read the array (the original's answer was the same array); only clients that parse
    // the array can use a multi-tenant identity.
    const sdkPod = await h.createPod("p-sdk", { aadpodidbinding: "mt-good" }, { ip: "127.0.0.1" });
    await h.assign(sdkPod, good, bg, "Assigned");
    const env = {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
      AZURE_POD_IDENTITY_AUTHORITY_HOST: `http://127.0.0.1:${h.nmi.port}`,
    };
    const scope = `${RESOURCE}.default`;
    const apps: [string, string[]][] = [
      ["node", ["tests/clients/node/get_token.mjs", "managed", scope]],
      [await pythonBin(), ["tests/clients/python/get_token.py", "managed", scope]],
    ];
    const failures = [/no "expiresOn" property/, /ManagedIdentityCredential authentication unavailable/];
    for (const [i, [cmd, args]] of apps.entries()) {
      const sdk = await run(cmd, args, env);
      assert.notEqual(sdk.code, 0, `${cmd}: ${sdk.stdout}`);
      assert.match(sdk.stderr, failures[i]);
    }
    // Control: the same SDKs, pod and application without auxiliary tenants get the primary token, so the
    // array alone is what they cannot read.
    await h.kube.patch(Resources.azureIdentities, "mt-good", "merge", { spec: { auxiliaryTenantIDs: [] } }, {
      namespace: h.ns,
    });
    await waitUntil(
      "the identity without auxiliary tenants",
      async () => !Array.isArray((await h.get(pg.ip, tokenPath(RESOURCE))).json),
    );
    for (const [cmd, args] of apps) {
      const sdk = await run(cmd, args, env);
      assert.equal(sdk.code, 0, `${cmd}: ${sdk.stderr}`);
      assert.equal((await h.emu.verifyToken(JSON.parse(sdk.stdout).token)).tid, primary.tenantId);
    }

    const logs = h.nmi.logs.join("\n");
    for (const t of r.json as Record<string, string>[]) assert.ok(!logs.includes(t.access_token));
    assert.ok(!logs.includes(primary.secret!));
  } finally {
    await h.close();
  }
});
