import assert from "node:assert/strict";
import { imdsRetryDelay } from "../../../lib/azure/imds_token_client.ts";
import { refreshAt, TokenCache } from "../../../lib/azure/token_cache.ts";
import type { AccessToken } from "../../../lib/azure/token_credential.ts";

const MIN = 60_000;

Deno.test("token cache: refreshed 5 min before expiry, or at half the lifetime when short", () => {
  assert.equal(refreshAt(0, 60 * MIN), 55 * MIN);
  assert.equal(refreshAt(0, 4 * MIN), 2 * MIN);
  assert.equal(refreshAt(10, 5), 5, "an already expired token is refreshed at once");
});

Deno.test("token cache: one fetch for concurrent callers, reused until refresh time, then one new fetch", async () => {
  let clock = 0;
  let fetches = 0;
  let release!: () => void;
  const cache = new TokenCache(async (scope) => {
    fetches++;
    await new Promise<void>((r) => release = r);
    return { token: `${scope}#${fetches}`, expiresOnTimestamp: clock + 60 * MIN };
  }, () => clock);
  const waiting = Array.from({ length: 10 }, () => cache.get("arm/.default"));
  await Promise.resolve();
  release();
  const got = await Promise.all(waiting);
  assert.equal(fetches, 1);
  assert.ok(got.every((t) => t.token === "arm/.default#1"));
  clock = 54 * MIN;
  assert.equal((await cache.get("arm/.default")).token, "arm/.default#1");
  assert.equal(fetches, 1);
  clock = 55 * MIN;
  const next = cache.get("arm/.default");
  await Promise.resolve();
  release();
  assert.equal((await next).token, "arm/.default#2");
  assert.equal(fetches, 2);
});

Deno.test("token cache: a failed refresh keeps a still-valid token; an expired one is not handed out", async () => {
  let clock = 0;
  let fail = false;
  const cache = new TokenCache((): Promise<AccessToken> => {
    if (fail) return Promise.reject(new Error("Azure AD down"));
    return Promise.resolve({ token: "t1", expiresOnTimestamp: clock + 60 * MIN });
  }, () => clock);
  assert.equal((await cache.get("s")).token, "t1");
  fail = true;
  clock = 56 * MIN;
  assert.equal((await cache.get("s")).token, "t1", "refresh failed, 4 min left: kept");
  clock = 60 * MIN - 10_000;
  await assert.rejects(cache.get("s"), /Azure AD down/);
});

Deno.test("token cache: a caller's abort ends its wait only, the shared fetch serves the others", async () => {
  let release!: () => void;
  let fetches = 0;
  const cache = new TokenCache(async () => {
    fetches++;
    await new Promise<void>((r) => release = r);
    return { token: "t", expiresOnTimestamp: Date.now() + 60 * MIN };
  });
  const ac = new AbortController();
  const a = cache.get("s", ac.signal);
  const b = cache.get("s");
  ac.abort(new Error("caller left"));
  await assert.rejects(a, /caller left/);
  release();
  assert.equal((await b).token, "t");
  assert.equal(fetches, 1);
});

Deno.test("IMDS retries as Microsoft documents: 404/429/5xx backoff 5 times, 410 for 70 s, Retry-After honoured", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => imdsRetryDelay(500, n, 0, undefined)), [
    800,
    1_600,
    3_200,
    6_400,
    12_800,
    undefined,
  ]);
  assert.equal(imdsRetryDelay(404, 1, 0, undefined), 800);
  assert.equal(imdsRetryDelay(429, 1, 0, 5_000), 5_000);
  assert.equal(imdsRetryDelay(429, 1, 0, 3_600_000), 60_000);
  assert.equal(imdsRetryDelay(410, 9, 60_000, undefined), 60_000);
  assert.equal(imdsRetryDelay(410, 1, 0, undefined), 3_000);
  assert.equal(imdsRetryDelay(410, 2, 71_000, undefined), undefined);
  assert.equal(imdsRetryDelay(400, 1, 0, undefined), undefined);
  assert.equal(imdsRetryDelay(403, 1, 0, undefined), undefined);
});
