// Retry pacing of the reflector, driven by a scripted HTTP server (the real apiserver cannot be made to
// answer 429 or to end watches at once on demand; its behaviour is covered by the integration tests).

import assert from "node:assert/strict";
import { Reflector } from "../../../lib/kube/reflector.ts";
import { KubeClient, Resources } from "../../../lib/kube/rest.ts";
import { Store } from "../../../lib/kube/store.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { memoryLogger } from "../../../lib/log.ts";

/** Answers one request; `n` counts requests of each kind so far, this one included. */
type Answer = (isWatch: boolean, n: { list: number; watch: number }) => Response;

async function withServer(
  answer: Answer,
  body: (client: KubeClient, seen: { list: number[]; watch: number[] }) => Promise<void>,
) {
  const counts = { list: 0, watch: 0 };
  const seen = { list: [] as number[], watch: [] as number[] };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const params = new URL(req.url).searchParams;
    const isWatch = params.get("watch") === "1";
    // The reflector's first LIST is preceded by a one-object probe for the current resourceVersion; the
    // scripted answers are about the LISTs and watches, so the probe is answered here and not counted.
    if (!isWatch && params.get("limit") === "1") return emptyList();
    const kind = isWatch ? "watch" : "list";
    counts[kind]++;
    seen[kind].push(Date.now());
    return answer(isWatch, counts);
  });
  const httpClient = Deno.createHttpClient({});
  const client = new KubeClient({
    server: `http://127.0.0.1:${server.addr.port}`,
    client: httpClient,
    authHeader: () => Promise.resolve(undefined),
    source: "test",
    close: () => httpClient.close(),
  });
  try {
    await body(client, seen);
  } finally {
    httpClient.close();
    await server.shutdown();
  }
}

const emptyList = () =>
  Response.json({ kind: "ConfigMapList", metadata: { resourceVersion: "5" }, items: [] });
const status = (code: number, reason: string, headers: Record<string, string> = {}) =>
  Response.json({ kind: "Status", status: "Failure", code, reason, message: `${reason} says the test` }, {
    status: code,
    headers,
  });

/** A watch that stays open, sending nothing, until the client goes away. */
const idleWatch = () => new Response(new ReadableStream({ pull: () => new Promise(() => {}) }));

async function runFor(client: KubeClient, ms: number, backoff = { initialMs: 50, maxMs: 400, jitter: 0 }) {
  const log = memoryLogger();
  const store = new Store<KubeObject>();
  const reflector = new Reflector<KubeObject>({
    client,
    resource: Resources.configMaps,
    store,
    log,
    backoff,
  });
  const ctrl = new AbortController();
  const run = reflector.run(ctrl.signal);
  await new Promise((r) => setTimeout(r, ms));
  ctrl.abort();
  await run;
  return { reflector, log, store };
}

Deno.test("reflector retry: 429 Retry-After is honored over a shorter backoff", async () => {
  await withServer(
    (watch, n) =>
      watch
        ? idleWatch()
        : n.list <= 2
        ? status(429, "TooManyRequests", { "Retry-After": "1" })
        : emptyList(),
    async (client, seen) => {
      const { reflector, log } = await runFor(client, 2_600);
      assert.equal(seen.list.length, 3);
      assert.ok(seen.list[1] - seen.list[0] >= 990, `gap ${seen.list[1] - seen.list[0]} ms`);
      assert.ok(seen.list[2] - seen.list[1] >= 990, `gap ${seen.list[2] - seen.list[1]} ms`);
      assert.equal(reflector.stats.lists, 1);
      const lines = log.records.filter((r) => r.level !== "info").map((r) => r.msg);
      assert.deepEqual(lines, ["list configmaps: 429 TooManyRequests says the test"]);
      assert.match(log.records.at(-1)!.msg, /list configmaps: recovered after 2 failed attempt/);
    },
  );
});

Deno.test("reflector retry: watches that end at once, or fail with 503, back off instead of spinning", async () => {
  await withServer(
    (watch, n) => !watch ? emptyList() : n.watch % 2 ? new Response("") : status(503, "ServiceUnavailable"),
    async (client, seen) => {
      const { reflector, log } = await runFor(client, 1_500);
      // 50, 100, 200, 400, 400 ... ms between attempts: a handful in 1.5 s, not thousands.
      assert.ok(seen.watch.length >= 3 && seen.watch.length <= 8, `watch attempts: ${seen.watch.length}`);
      assert.equal(seen.list.length, 1, "no re-list: the resourceVersion is still good");
      assert.equal(reflector.stats.errors, seen.watch.length);
      // Two alternating causes: logged when the cause changes, never more often than attempts.
      const lines = log.records.filter((r) => r.level !== "info");
      assert.ok(lines.length <= seen.watch.length);
      assert.ok(lines.some((l) => /watch configmaps: 503 ServiceUnavailable says the test/.test(l.msg)));
      assert.ok(lines.some((l) => /the watch closed immediately without events/.test(l.msg)));
    },
  );
});

Deno.test("reflector retry: a 410 ERROR event re-lists at once, without backoff", async () => {
  await withServer(
    (watch, n) => {
      if (!watch) return emptyList();
      if (n.watch === 1) {
        return new Response(
          JSON.stringify({
            type: "ERROR",
            object: {
              kind: "Status",
              code: 410,
              reason: "Expired",
              message: "too old resource version: 5 (9)",
            },
          }) + "\n",
        );
      }
      return idleWatch();
    },
    async (client, seen) => {
      const { reflector, log } = await runFor(client, 300, { initialMs: 5_000, maxMs: 5_000, jitter: 0 });
      assert.equal(seen.list.length, 2);
      assert.equal(reflector.stats.relists, 1);
      assert.equal(reflector.stats.errors, 0, JSON.stringify(log.records.map((r) => r.msg)));
    },
  );
});

Deno.test("reflector retry: a 410 that persists after re-listing backs off instead of re-listing in a loop", async () => {
  const expired = () =>
    new Response(
      JSON.stringify({
        type: "ERROR",
        object: { kind: "Status", code: 410, reason: "Expired", message: "too old resource version: 5 (9)" },
      }) + "\n",
    );
  await withServer(
    (watch) => watch ? expired() : emptyList(),
    async (client, seen) => {
      const { reflector, log } = await runFor(client, 1_000);
      // One immediate re-list, then 50, 100, 200, 400 ms apart: a handful in a second, not hundreds.
      assert.ok(seen.list.length >= 3 && seen.list.length <= 8, `lists: ${seen.list.length}`);
      assert.ok(seen.list[1] - seen.list[0] < 50, "the first 410 re-lists at once");
      assert.ok(seen.list[3] - seen.list[2] >= 95, `gap ${seen.list[3] - seen.list[2]} ms`);
      // Logged once for the cause, not once per re-list.
      const lines = log.records.filter((r) => r.level !== "info").map((r) => r.msg);
      assert.equal(lines.length, 1, JSON.stringify(lines));
      assert.equal(reflector.stats.relists, seen.watch.length);
    },
  );
});

Deno.test("large lists: 300,000 items in one page reach the store and listAll (no argument spreading)", async () => {
  const n = 300_000;
  const items = Array.from(
    { length: n },
    (_, i) => ({ metadata: { name: `c${i}`, namespace: "x", uid: `u${i}` } }),
  );
  const body = JSON.stringify({ kind: "ConfigMapList", metadata: { resourceVersion: "5" }, items });
  await withServer(
    (watch) => watch ? idleWatch() : new Response(body, { headers: { "Content-Type": "application/json" } }),
    async (client) => {
      const all = await client.listAll(Resources.configMaps, { limit: 500 });
      assert.equal(all.items.length, n);
      const { reflector, store } = await runFor(client, 3_000);
      assert.equal(reflector.stats.lists, 1);
      assert.equal(store.list().length, n);
    },
  );
});
