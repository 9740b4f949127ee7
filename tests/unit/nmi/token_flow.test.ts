// Promises of the token flow and the token service that mutations survived before (issue 19 item 10):
// - authorisation is checked again after a slow token fetch: a binding deleted during the fetch gets no token;
// - a rotated service-principal secret never serves the token fetched with the old one;
// and the domain outcomes server.ts maps to statuses (one place, unchanged statuses).

import assert from "node:assert/strict";
import type { IdentityCatalog } from "../../../lib/api/matching.ts";
import type { AzureAssignedIdentity, AzureIdentity, AzureIdentityBinding } from "../../../lib/api/types.ts";
import { createLogger } from "../../../lib/log.ts";
import type { NmiCaches, Secret } from "../../../nmi/caches.ts";
import { ChangeFeed } from "../../../nmi/change_feed.ts";
import type { ImdsClient } from "../../../nmi/imds_client.ts";
import { refusal } from "../../../nmi/refusal.ts";
import { RefusalLog } from "../../../nmi/refusal_log.ts";
import { readCappedBody, refusalAnswer } from "../../../nmi/server.ts";
import { TokenCache } from "../../../nmi/token_cache.ts";
import { TokenFlow } from "../../../nmi/token_flow.ts";
import { TokenService } from "../../../nmi/token_service.ts";
import type { Token } from "../../../nmi/token.ts";
import { assigned, binding, identity } from "./fixtures.ts";

const log = createLogger({ format: "text", level: "error" });
const NODE = "node-a";
const pod = { name: "web", namespace: "apps", labels: { aadpodidbinding: "sel" }, uid: "u1", nodeName: NODE };
const query = { resource: "https://vault.azure.net" };

/** Caches holding one identity, its binding and an Assigned assignment; `unbind()` deletes the binding. */
function fakeCaches(id: AzureIdentity, b: AzureIdentityBinding) {
  const changes = new ChangeFeed();
  let bindings = [b];
  const aai: AzureAssignedIdentity = assigned(id, b, pod, NODE, "Assigned");
  const catalog: IdentityCatalog = {
    bindingsForSelector: (s) => bindings.filter((x) => x.spec.selector === s),
    identity: (ns, name) => (ns === id.metadata.namespace && name === id.metadata.name ? id : undefined),
  };
  const caches = {
    changes,
    catalog: () => catalog,
    exceptionsIn: () => [],
    assignedFor: () => [aai],
  } as unknown as NmiCaches;
  return {
    caches,
    unbind: () => {
      bindings = [];
      changes.notify();
    },
  };
}

const tokenFor = (access: string): Token => ({
  accessToken: access,
  expiresOn: Math.floor(Date.now() / 1000) + 3600,
  notBefore: 0,
  resource: query.resource,
  tokenType: "Bearer",
  clientId: "",
});

Deno.test("token flow: a binding deleted while the token is being fetched gets no token", async () => {
  const id = identity("apps", "id-a");
  const b = binding("apps", "b-a", "id-a", "sel");
  const { caches, unbind } = fakeCaches(id, b);
  // Each fetch signals that it started and waits until the test lets it finish.
  let started!: Promise<void>;
  let fetching!: () => void;
  let finish!: () => void;
  const arm = () => {
    started = new Promise<void>((r) => fetching = r);
  };
  const tokens = {
    principalIdOf: () => undefined,
    learnPrincipals: () => Promise.resolve(),
    forIdentity: async () => {
      const slow = new Promise<void>((r) => finish = r);
      fetching();
      await slow;
      return tokenFor("secret-token");
    },
  } as unknown as TokenService;
  const flow = new TokenFlow({
    mode: "standard",
    node: NODE,
    micNamespace: "kube-system",
    micServiceAccount: "mic",
    forceNamespaced: false,
    waitDeadlineMs: 2000,
    caches,
    tokens,
    log,
  });
  // Bound at first: served.
  arm();
  const before = flow.run(pod, query);
  await started;
  finish();
  assert.equal((await before).ok, true);

  arm();
  const during = flow.run(pod, query);
  await started; // the fetch is under way: the binding is deleted now
  unbind();
  finish();
  const result = await during;
  assert.ok(!result.ok, "the token fetched for a binding deleted meanwhile is not handed out");
  assert.ok(["invalid", "forbidden"].includes(result.refusal.kind), result.refusal.message);
});

Deno.test("token service: a rotated service-principal secret never serves the old secret's token", async () => {
  // Azure AD stand-in: the token names the secret it was issued for.
  const aad = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const form = new URLSearchParams(await req.text());
    return Response.json({
      access_token: `issued-for-${form.get("client_secret")}`,
      expires_on: String(Math.floor(Date.now() / 1000) + 3600),
      resource: form.get("resource"),
      token_type: "Bearer",
    });
  });
  let secret: Secret = {
    metadata: { name: "sp", namespace: "apps", resourceVersion: "1" },
    data: { clientSecret: btoa("first") },
  };
  const caches = { secret: () => Promise.resolve(secret) } as unknown as NmiCaches;
  const service = new TokenService({
    imds: {} as ImdsClient,
    cache: new TokenCache({ minLifetimeMs: 60_000, refreshAheadMs: 120_000 }),
    caches,
    defaultAdEndpoint: `http://127.0.0.1:${aad.addr.port}/`,
    timeoutMs: 5000,
    userAgent: "test",
    log,
  });
  const sp = identity("apps", "sp-id", {
    type: 1,
    tenantID: "tenant",
    clientPassword: { name: "sp", namespace: "apps" },
  });
  try {
    const call = () => ({ deadlineAt: performance.now() + 5000 });
    assert.equal((await service.forIdentity(sp, query.resource, call())).accessToken, "issued-for-first");
    assert.equal((await service.forIdentity(sp, query.resource, call())).accessToken, "issued-for-first");
    secret = {
      metadata: { name: "sp", namespace: "apps", resourceVersion: "2" },
      data: { clientSecret: btoa("rotated") },
    };
    assert.equal((await service.forIdentity(sp, query.resource, call())).accessToken, "issued-for-rotated");
  } finally {
    await aad.shutdown();
  }
});

Deno.test("server: refusals map to the statuses and bodies clients have always seen", () => {
  const cases: [ReturnType<typeof refusal>, number | undefined, number, string, string | undefined][] = [
    [refusal("invalid", "m"), undefined, 400, "invalid_request", undefined],
    [refusal("forbidden", "m"), undefined, 403, "forbidden", undefined],
    [refusal("forbidden", "m", "invalid_client"), undefined, 403, "invalid_client", undefined],
    [refusal("not_found", "m"), undefined, 404, "not_found", undefined],
    [refusal("pending", "m"), undefined, 404, "not_found", undefined],
    [refusal("pending", "m"), 20, 503, "service_unavailable", "20"],
    [refusal("unavailable", "m"), 20, 503, "service_unavailable", "1"],
    [refusal("internal", "m"), undefined, 500, "server_error", undefined],
  ];
  for (const [r, retryAfter, status, error, header] of cases) {
    const a = refusalAnswer(r, retryAfter);
    assert.deepEqual([a.status, a.error, a.description, a.headers?.["retry-after"]], [
      status,
      error,
      "m",
      header,
    ]);
  }
});

Deno.test("server: a proxied body is capped while it is read, and a large Content-Length before", async () => {
  let pulled = 0;
  // An endless body: reading it whole (the old proxy's arrayBuffer()) would never end.
  const endless = new ReadableStream<Uint8Array>({
    pull(c) {
      pulled += 16384;
      c.enqueue(new Uint8Array(16384));
    },
  });
  const req = new Request("http://nmi/metadata/scheduledevents", { method: "POST", body: endless });
  assert.equal(await readCappedBody(req, 65536), undefined);
  assert.ok(pulled <= 65536 + 3 * 16384, `pulled ${pulled} bytes`);
  const declared = new Request("http://nmi/x", {
    method: "POST",
    headers: { "content-length": "157286400" },
    body: new ReadableStream({
      pull() {
        throw new Error("read although Content-Length was over the cap");
      },
    }),
  });
  assert.equal(await readCappedBody(declared, 65536), undefined);
  const small = new Request("http://nmi/x", { method: "POST", body: "ack" });
  assert.equal(new TextDecoder().decode(await readCappedBody(small, 65536)), "ack");
});

Deno.test("server: refused requests are logged at most 10 lines a second, reasons cut at 300 characters", () => {
  const lines: string[] = [];
  let now = 0;
  const refusals = new RefusalLog(createLogger({ format: "json", write: (l) => lines.push(l) }), {
    now: () => now,
  });
  for (let i = 0; i < 1000; i++) refusals.refused("apps/flood", 403, "x".repeat(2048));
  assert.equal(lines.length, 10);
  assert.ok(lines.every((l) => l.length < 600), `a line of ${Math.max(...lines.map((l) => l.length))} chars`);
  now = 1500;
  refusals.refused("apps/flood", 403, "again");
  assert.match(lines[10], /"count":990/);
  assert.match(lines[11], /"reason":"again"/);
});
