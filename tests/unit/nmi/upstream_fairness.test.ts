// One pod must not starve the others' IMDS calls (issue 19 item 5): per-pod queues with fair turns and a
// per-pod cap, calls given up when their clients leave (through the token cache's single flight too), IMDS
// refusals remembered briefly, and the duration metric timing only the upstream call.

import assert from "node:assert/strict";
import { QueueFullError, UpstreamLimiter } from "../../../nmi/limiter.ts";
import { TokenCache } from "../../../nmi/token_cache.ts";
import type { Token } from "../../../nmi/token.ts";
import { ImdsClient } from "../../../nmi/imds_client.ts";

const token = (access: string): Token => ({
  accessToken: access,
  expiresOn: Math.floor(Date.now() / 1000) + 3600,
  notBefore: 0,
  resource: "r",
  tokenType: "Bearer",
  clientId: "c",
});
const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("limiter: sources take turns; a flooding source waits behind its own calls", async () => {
  const limiter = new UpstreamLimiter({ maxConcurrent: 1, perSecond: 1000, maxQueuedPerSource: 100 });
  const order: string[] = [];
  let release!: () => void;
  const blocker = limiter.run(() => new Promise<void>((r) => release = r), undefined, "flood");
  const flood = Array.from({ length: 20 }, (_, i) =>
    limiter.run(
      () => {
        order.push(`flood-${i}`);
        return Promise.resolve();
      },
      undefined,
      "flood",
    ));
  const victim = limiter.run(
    () => {
      order.push("victim");
      return Promise.resolve();
    },
    undefined,
    "victim",
  );
  await tick();
  release();
  await Promise.all([blocker, ...flood, victim]);
  // FIFO would put the victim 21st; with turns it goes right after the flood's first queued call.
  assert.ok(order.indexOf("victim") <= 1, order.join(","));
  limiter.close();
});

Deno.test("limiter: a source over its queue cap is refused at once; others still queue", async () => {
  const limiter = new UpstreamLimiter({ maxConcurrent: 1, perSecond: 1000, maxQueuedPerSource: 3 });
  let release!: () => void;
  const blocker = limiter.run(() => new Promise<void>((r) => release = r), undefined, "a");
  const queued = [1, 2, 3].map(() => limiter.run(() => Promise.resolve(), undefined, "a"));
  await assert.rejects(limiter.run(() => Promise.resolve(), undefined, "a"), QueueFullError);
  const other = limiter.run(() => Promise.resolve("b"), undefined, "b");
  assert.equal(limiter.queued, 4);
  release();
  await Promise.all([blocker, ...queued]);
  assert.equal(await other, "b");
  limiter.close();
});

Deno.test("token cache: a fetch is given up only when every waiting request has left", async () => {
  const cache = new TokenCache({ minLifetimeMs: 1000, refreshAheadMs: 2000 });
  let fetchSignal!: AbortSignal;
  let finish!: (t: Token) => void;
  const fetch = (signal: AbortSignal) => {
    fetchSignal = signal;
    return new Promise<Token>((r) => finish = r);
  };
  const a = new AbortController();
  const b = new AbortController();
  const first = cache.get("k", fetch, a.signal);
  const second = cache.get("k", fetch, b.signal);
  a.abort();
  await assert.rejects(first);
  await tick();
  assert.equal(fetchSignal.aborted, false, "the other waiter still wants it");
  finish(token("shared"));
  assert.equal((await second).token.accessToken, "shared");

  const c = new AbortController();
  const third = cache.get("k2", fetch, c.signal);
  c.abort();
  await assert.rejects(third);
  assert.equal(fetchSignal.aborted, true, "the last waiter left: the upstream call is cancelled");
});

Deno.test("IMDS client: a refusal is remembered; the duration metric excludes queue time", async () => {
  let upstream = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    upstream++;
    const bogus = new URL(req.url).searchParams.get("resource") === "bogus";
    await new Promise((r) => setTimeout(r, 20));
    return bogus
      ? Response.json({ error: "invalid_resource", error_description: "AADSTS500011: not found" }, {
        status: 400,
      })
      : Response.json({ access_token: "a", expires_on: String(Math.floor(Date.now() / 1000) + 3600) });
  });
  const limiter = new UpstreamLimiter({ maxConcurrent: 1, perSecond: 1000 });
  const observed: number[] = [];
  const imds = new ImdsClient({
    baseUrl: `http://127.0.0.1:${server.addr.port}`,
    timeoutMs: 5000,
    limiter,
    userAgent: "test",
    onCall: (_kind, _ok, seconds) => observed.push(seconds),
  });
  try {
    for (let i = 0; i < 5; i++) assert.equal((await imds.token("bogus")).status, 400);
    assert.equal(upstream, 1, "one upstream call for five identical refused requests");
    // Ten calls through one slot: each waits up to ~200 ms in the queue but takes ~20 ms upstream.
    await Promise.all(Array.from({ length: 10 }, (_, i) => imds.token(`r${i}`, {}, { source: `p${i}` })));
    const slowest = Math.max(...observed.slice(1));
    assert.ok(slowest < 0.15, `upstream call timed at ${slowest} s (queue time counted?)`);
  } finally {
    limiter.close();
    await server.shutdown();
  }
});

Deno.test("limiter: one source takes at most two thirds of a second's starts; another is not left for the next second", async () => {
  const limiter = new UpstreamLimiter({ maxConcurrent: 5, perSecond: 15, maxQueuedPerSource: 100 });
  const ac = new AbortController();
  const flood = Array.from({ length: 60 }, () => limiter.run(() => Promise.resolve(), ac.signal, "flood"));
  await new Promise((r) => setTimeout(r, 300));
  const t0 = performance.now();
  await limiter.run(() => Promise.resolve(), undefined, "victim");
  const waited = performance.now() - t0;
  ac.abort();
  await Promise.allSettled(flood);
  limiter.close();
  // A plain rolling window lets the flood take all 15 starts at once: the victim would wait ~700 ms.
  assert.equal(limiter.perSourceShare, 10);
  assert.ok(waited < 200, `victim waited ${waited.toFixed(0)} ms`);
});
