import assert from "node:assert/strict";
import { freshness, TokenCache } from "../../../nmi/token_cache.ts";
import { imdsJson, objectIdOfToken, type Token, tokenFromUpstream } from "../../../nmi/token.ts";
import { UpstreamLimiter } from "../../../nmi/limiter.ts";

const policy = { minLifetimeMs: 5 * 60_000, refreshAheadMs: 15 * 60_000 };
const tok = (expiresOn: number, access = "t"): Token => ({
  accessToken: access,
  expiresOn,
  notBefore: 0,
  resource: "r",
  tokenType: "Bearer",
  clientId: "c",
});

Deno.test("freshness: fresh, refresh ahead, unusable below the minimum lifetime", () => {
  const now = 1_000_000_000;
  assert.equal(freshness(tok(now / 1000 + 3600), now, policy), "fresh");
  assert.equal(freshness(tok(now / 1000 + 600), now, policy), "refresh_ahead");
  assert.equal(freshness(tok(now / 1000 + 299), now, policy), "unusable");
});

Deno.test("concurrent identical requests share one upstream call; later ones hit the cache", async () => {
  let now = 1_000_000_000;
  const cache = new TokenCache(policy, { now: () => now });
  let calls = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const fetch = async () => {
    calls++;
    await gate;
    return tok(now / 1000 + 3600);
  };
  const all = Array.from({ length: 1000 }, () => cache.get("k", fetch));
  release();
  const results = await Promise.all(all);
  assert.equal(calls, 1);
  assert.equal(results.filter((r) => r.from === "upstream").length, 1);
  assert.equal(results.filter((r) => r.from === "shared").length, 999);
  assert.equal((await cache.get("k", fetch)).from, "cache");
  // Past refresh-ahead: served from cache, one background refresh.
  now += (3600 - 600) * 1000;
  assert.equal((await cache.get("k", fetch)).from, "cache");
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(calls, 2);
  // Below the minimum lifetime: never served, fetched again.
  now += 3600 * 1000;
  const r = await cache.get("k", fetch);
  assert.equal(r.from, "upstream");
});

Deno.test("errors are not cached; forget drops an identity's tokens", async () => {
  const cache = new TokenCache(policy, { now: () => 0 });
  await assert.rejects(cache.get("id1|r", () => Promise.reject(new Error("boom"))));
  assert.equal(cache.size, 0);
  await cache.get("id1|r", () => Promise.resolve(tok(7200)));
  await cache.get("id2|r", () => Promise.resolve(tok(7200)));
  cache.forget("id1|");
  assert.equal(cache.size, 1);
  // A token already too short-lived is handed out but not kept.
  await cache.get("id3|r", () => Promise.resolve(tok(10)));
  assert.equal(cache.size, 1);
});

Deno.test("upstream shapes: IMDS and AAD v1 answers become all-string IMDS JSON with client_id", () => {
  const t = tokenFromUpstream(
    {
      access_token: "a",
      expires_in: "3599",
      expires_on: "2000",
      not_before: "1000",
      resource: "r",
      token_type: "Bearer",
    },
    { resource: "r", clientId: "cid" },
    1000,
  );
  const json = imdsJson(t, 1500);
  assert.equal(json.client_id, "cid");
  assert.equal(json.expires_in, "500");
  for (const v of Object.values(json)) assert.equal(typeof v, "string");
  for (const k of ["expires_in", "expires_on", "not_before", "ext_expires_in"]) {
    assert.match(json[k], /^\d+$/);
  }
  const onlyIn = tokenFromUpstream(
    { access_token: "a", expires_in: 60 },
    { resource: "r", clientId: "c" },
    100,
  );
  assert.equal(onlyIn.expiresOn, 160);
  assert.throws(() => tokenFromUpstream({ access_token: "a" }, { resource: "r", clientId: "c" }, 0));
  assert.throws(() => tokenFromUpstream({ expires_in: "1" }, { resource: "r", clientId: "c" }, 0));
});

Deno.test("object id of a JWT access token", () => {
  const b64 = (o: object) =>
    btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  assert.equal(objectIdOfToken(`${b64({ alg: "none" })}.${b64({ oid: "o-1" })}.x`), "o-1");
  assert.equal(objectIdOfToken("not-a-jwt"), undefined);
});

Deno.test("limiter: never more than maxConcurrent in flight nor perSecond started per rolling second", async () => {
  const limiter = new UpstreamLimiter({ maxConcurrent: 3, perSecond: 6 });
  let inflight = 0;
  let peak = 0;
  const starts: number[] = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 12 }, () =>
    limiter.run(async () => {
      starts.push(performance.now() - t0);
      peak = Math.max(peak, ++inflight);
      await new Promise((r) => setTimeout(r, 20));
      inflight--;
    })));
  limiter.close();
  assert.equal(peak, 3);
  for (let i = 6; i < starts.length; i++) assert.ok(starts[i] - starts[i - 6] >= 999, `start ${i}`);
});

Deno.test("limiter: an aborted waiter leaves the queue", async () => {
  const limiter = new UpstreamLimiter({ maxConcurrent: 1, perSecond: 100 });
  let release!: () => void;
  const first = limiter.run(() => new Promise<void>((r) => release = r));
  const ac = new AbortController();
  const second = limiter.run(() => Promise.resolve("ran"), ac.signal);
  ac.abort(new Error("gone"));
  await assert.rejects(second, /gone/);
  assert.equal(limiter.queued, 0);
  release();
  await first;
  assert.equal(await limiter.run(() => Promise.resolve(1)), 1);
});
