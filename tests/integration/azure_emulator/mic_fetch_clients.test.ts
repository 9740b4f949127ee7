// MIC's own Azure clients (lib/azure: ARM with fetch, the service-principal and managed-identity token
// clients) against the emulator, which checks what Azure checks: v2 token endpoint and `/.default` scope,
// IMDS's Metadata header and api-version, ARM's api-version, bearer token and content type.

import assert from "node:assert/strict";
import { ServicePrincipalCredential } from "../../../lib/azure/aad_token_client.ts";
import { ArmError, createArmClient } from "../../../lib/azure/arm_client.ts";
import { ManagedIdentityCredential } from "../../../lib/azure/imds_token_client.ts";
import { parseProviderId } from "../../../lib/azure/provider_id.ts";
import { TokenRequestError } from "../../../lib/azure/token_credential.ts";
import { emulatorTls } from "../../../scripts/sandbox/azure/tls.ts";
import { startHarness } from "./helpers.ts";

const ARM = "https://management.azure.com/";

Deno.test("MIC's fetch clients: secret -> v2 token -> GET and PATCH with its LRO, the final GET as the SDK's", async () => {
  const h = await startHarness({ lroDurationMs: 300 });
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "mic-secret" });
    const id = h.emu.addUserAssignedIdentity({ resourceGroup: "ids", name: "id1" });
    const ss = h.emu.addVmss({ resourceGroup: "mc", name: "a" });
    const t = parseProviderId(`azure://${ss.id}/virtualMachines/0`)!;
    const credential = new ServicePrincipalCredential({
      authorityHost: h.emu.authorityHost,
      tenantId: sp.tenantId,
      clientId: sp.clientId,
      proof: { kind: "secret", secret: "mic-secret" },
    });
    const arm = createArmClient({
      credential,
      endpoint: h.emu.armEndpoint,
      audience: ARM,
      pollIntervalMs: 20,
    });
    assert.deepEqual((await arm.getIdentity(t))?.userAssigned, []);
    const body = { type: "UserAssigned" as const, userAssignedIdentities: { [id.id]: {} } };
    const after = await arm.patchIdentity(t, body);
    assert.deepEqual(after?.userAssigned.map((u) => u.clientId), [id.clientId]);
    assert.equal(h.emu.requests.count({ route: "aad.token" }), 1, "one token for every call");
    assert.equal(h.emu.requests.count({ route: "vmss.patch" }), 1);
    assert.equal(
      h.emu.requests.count({ route: "vmss.get" }),
      2,
      "the read before, the final GET after the LRO",
    );
    const missing = parseProviderId(`azure://${ss.id.replace(/\/a$/, "/nope")}/virtualMachines/0`)!;
    assert.equal(await arm.getIdentity(missing), undefined, "404 -> undefined");
  } finally {
    await h.close();
  }
});

Deno.test("MIC's fetch clients: a wrong secret is Azure AD's error, without the secret in it", async () => {
  const h = await startHarness();
  try {
    const sp = h.emu.registerServicePrincipal({ secret: "right-secret" });
    const credential = new ServicePrincipalCredential({
      authorityHost: h.emu.authorityHost,
      tenantId: sp.tenantId,
      clientId: sp.clientId,
      proof: { kind: "secret", secret: "wrong-secret-value" },
    });
    await assert.rejects(credential.getToken(`${ARM}.default`), (e) => {
      assert.ok(e instanceof TokenRequestError);
      assert.equal(e.code, "invalid_client");
      assert.doesNotMatch(e.message, /wrong-secret-value/);
      return true;
    });
  } finally {
    await h.close();
  }
});

Deno.test("MIC's fetch clients: managed identity from IMDS, a 500 retried, a refusal not", async () => {
  const h = await startHarness();
  try {
    const micId = h.emu.addUserAssignedIdentity({ resourceGroup: "ids", name: "mic" });
    const pool = h.emu.addVmss({ resourceGroup: "mc", name: "pool", userAssignedIdentities: [micId.id] });
    const imds = await h.emu.startImds({ vmssResourceId: pool.id, instance: 0 });
    try {
      const retry = { maxRetries: 5, baseMs: 20, goneForMs: 100, maxDelayMs: 100 };
      h.emu.faults.inject({ route: "imds.token", status: 500, times: 2 });
      const cred = new ManagedIdentityCredential({ host: imds.url, clientId: micId.clientId, retry });
      const t = await cred.getToken(`${ARM}.default`);
      assert.ok(t.token.length > 20 && t.expiresOnTimestamp > Date.now() + 60_000);
      assert.equal(h.emu.requests.count({ route: "imds.token" }), 3);
      await cred.getToken(`${ARM}.default`);
      assert.equal(h.emu.requests.count({ route: "imds.token" }), 3, "cached");
      const other = new ManagedIdentityCredential({ host: imds.url, clientId: crypto.randomUUID(), retry });
      await assert.rejects(
        other.getToken(`${ARM}.default`),
        (e) => e instanceof TokenRequestError && e.status === 400,
      );
      assert.equal(h.emu.requests.count({ route: "imds.token" }), 4, "a 400 is not retried");
    } finally {
      await imds.stop();
    }
  } finally {
    await h.close();
  }
});

Deno.test("MIC's ARM client: an endless answer body is cut at 4 MiB with a clear error; no token over http", async () => {
  const { cert, key } = await emulatorTls();
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert, key, signal: ac.signal, onListen() {} },
    () => {
      const chunk = new Uint8Array(64 * 1024).fill(0x20);
      let sent = 0;
      return new Response(
        new ReadableStream({
          pull(c) {
            if (sent++ > 1_000) return c.close();
            c.enqueue(chunk);
          },
        }),
        { headers: { "content-type": "application/json" } },
      );
    },
  );
  try {
    const opts = {
      credential: {
        getToken: () => Promise.resolve({ token: "t", expiresOnTimestamp: Date.now() + 3_600_000 }),
      },
      endpoint: `https://127.0.0.1:${server.addr.port}`,
      audience: ARM,
    };
    const arm = createArmClient(opts);
    const t = parseProviderId(
      "azure:///subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
    )!;
    await assert.rejects(
      arm.getIdentity(t),
      (e) => e instanceof ArmError && e.code === "BodyTooLarge" && /4194304 bytes/.test(e.message),
    );
    const plain = createArmClient({ ...opts, endpoint: `http://127.0.0.1:${server.addr.port}` });
    await assert.rejects(plain.getIdentity(t), (e) => e instanceof ArmError && e.code === "InsecureEndpoint");
  } finally {
    ac.abort();
    await server.finished;
  }
});
