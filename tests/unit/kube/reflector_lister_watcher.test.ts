// The reflector's resourceVersion rules against a fake ListerWatcher, as client-go tests its reflector: each
// test scripts the LIST and watch answers and checks the exact requests the reflector made (which
// resourceVersion each LIST and watch asked for), what its store holds, and how long it waited between
// failures. The HTTP side of the same rules is covered by the integration tests on a real apiserver.

import assert from "node:assert/strict";
import { KubeApiError } from "../../../lib/kube/api_error.ts";
import type { ListerWatcher, PageRequest, WatchRequest } from "../../../lib/kube/lister_watcher.ts";
import { Reflector } from "../../../lib/kube/reflector.ts";
import { Resources } from "../../../lib/kube/resource.ts";
import { Store } from "../../../lib/kube/store.ts";
import type { KubeList, KubeObject } from "../../../lib/kube/types.ts";
import type { WatchEvent } from "../../../lib/kube/watch_stream.ts";
import { memoryLogger } from "../../../lib/log.ts";

type Obj = KubeObject;
type Ev = WatchEvent<Obj>;
type ListAnswer = KubeList<Obj> | Error;
/** One scripted watch: refused (an error), or these batches and then the server ends it. */
type WatchAnswer = Error | Ev[][];

const obj = (name: string, rv: string): Obj => ({ metadata: { name, namespace: "ns", resourceVersion: rv } });
const list = (rv: string, ...names: string[]): KubeList<Obj> => ({
  metadata: { resourceVersion: rv },
  items: names.map((n) => obj(n, rv)),
});
const added = (name: string, rv: string): Ev => ({ type: "ADDED", object: obj(name, rv) });
const deleted = (name: string, rv: string): Ev => ({ type: "DELETED", object: obj(name, rv) });
const bookmark = (rv: string): Ev => ({ type: "BOOKMARK", object: { metadata: { resourceVersion: rv } } });
const expired = (): Ev => ({
  type: "ERROR",
  object: { kind: "Status", code: 410, reason: "Expired", message: "too old resource version" },
});
const gone = () => new KubeApiError(410, "Expired", "too old resource version");

/**
 * Answers from the scripts in order and records every call. Once a script runs out, the watch stays open
 * (silent until the reflector stops) and `idle` resolves, so a test knows the reflector has done
 * everything scripted.
 */
class FakeListerWatcher implements ListerWatcher<Obj> {
  calls: string[] = [];
  times: number[] = [];
  readonly idle = Promise.withResolvers<void>();
  constructor(
    readonly currentRv: string,
    readonly lists: ListAnswer[],
    readonly watches: WatchAnswer[],
  ) {}

  list(req: PageRequest): Promise<KubeList<Obj>> {
    this.#record(`list ${describe(req)}`);
    const answer = this.lists.shift();
    if (!answer) return Promise.reject(new Error("no LIST scripted"));
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(structuredClone(answer));
  }

  watch(req: WatchRequest, signal: AbortSignal): Promise<AsyncIterable<Ev[]>> {
    this.#record(`watch rv=${req.resourceVersion} bookmarks=${req.allowWatchBookmarks}`);
    const answer = this.watches.shift();
    if (answer instanceof Error) return Promise.reject(answer);
    if (answer) return Promise.resolve(batches(answer));
    this.idle.resolve();
    return Promise.resolve(silentUntil(signal));
  }

  currentResourceVersion(): Promise<string | undefined> {
    this.#record("probe");
    return Promise.resolve(this.currentRv);
  }

  #record(call: string) {
    this.calls.push(call);
    this.times.push(performance.now());
  }
}

function describe(req: PageRequest): string {
  return Object.entries(req).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`).join(" ") || "-";
}

async function* batches(script: Ev[][]): AsyncGenerator<Ev[]> {
  for (const b of script) {
    await Promise.resolve();
    yield b;
  }
  // A watch the server ends at once with nothing in it counts as a failure; these all sent something.
}

/** A watch that sends nothing and ends when the reflector stops. */
function silentUntil(signal: AbortSignal): AsyncIterable<Ev[]> {
  const end = new Promise<IteratorResult<Ev[]>>((r) =>
    signal.addEventListener("abort", () => r({ done: true, value: undefined }), { once: true })
  );
  return { [Symbol.asyncIterator]: () => ({ next: () => end }) };
}

/** Runs a reflector over `lw` until its script is done; returns the store's names and the log. */
async function runScript(lw: FakeListerWatcher, backoff = { initialMs: 20, maxMs: 1000, jitter: 0 }) {
  const store = new Store<Obj>();
  const log = memoryLogger();
  const reflector = new Reflector<Obj>({
    listerWatcher: lw,
    resource: Resources.configMaps,
    store,
    namespace: "ns",
    watchTimeoutSeconds: 300,
    backoff,
    log,
  });
  const ctrl = new AbortController();
  const run = reflector.run(ctrl.signal);
  const timeout = setTimeout(() => ctrl.abort(), 10_000);
  await Promise.race([lw.idle.promise, run]);
  clearTimeout(timeout);
  ctrl.abort();
  await run;
  const names = store.list().map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`).sort();
  return { names, reflector, log };
}

Deno.test("reflector: first LIST from the watch cache (rv 0) after a probe, then a watch from the list's version", async () => {
  const lw = new FakeListerWatcher("10", [list("10", "a", "b")], [[[added("c", "11")]]]);
  const { names, reflector } = await runScript(lw);
  assert.deepEqual(lw.calls, [
    "probe",
    "list limit=500 resourceVersion=0",
    "watch rv=10 bookmarks=true",
    "watch rv=11 bookmarks=true",
  ]);
  assert.deepEqual(names, ["a@10", "b@10", "c@11"]);
  assert.equal(reflector.resourceVersion, "11");
});

Deno.test("reflector: bookmarks advance the resume version; deletes apply and advance it too", async () => {
  const lw = new FakeListerWatcher("10", [list("10", "a", "b")], [
    [[added("c", "12"), bookmark("15")], [bookmark("20")]],
    [[deleted("a", "21")]],
  ]);
  const { names, reflector } = await runScript(lw);
  assert.deepEqual(lw.calls.slice(2), [
    "watch rv=10 bookmarks=true",
    "watch rv=20 bookmarks=true",
    "watch rv=21 bookmarks=true",
  ]);
  assert.deepEqual(names, ["b@10", "c@12"]);
  assert.equal(reflector.stats.bookmarks, 2);
});

Deno.test("reflector: 410 on a watch re-lists not older than the held version, at once, with an exact diff", async () => {
  const lw = new FakeListerWatcher("10", [list("10", "a", "b"), list("30", "b", "d"), list("31", "b", "d")], [
    [[added("c", "12")], [expired()]],
    gone(),
  ]);
  const { names, reflector } = await runScript(lw);
  assert.deepEqual(lw.calls, [
    "probe",
    "list limit=500 resourceVersion=0",
    "watch rv=10 bookmarks=true",
    // The watch's ERROR event said 410 after rv 12 was applied: re-list from 12, NotOlderThan.
    "list limit=500 resourceVersion=12 resourceVersionMatch=NotOlderThan",
    "watch rv=30 bookmarks=true",
    // The watch itself refused with 410: re-list from what the last LIST returned.
    "list limit=500 resourceVersion=30 resourceVersionMatch=NotOlderThan",
    "watch rv=31 bookmarks=true",
  ]);
  // a deleted while the watch was gone, c created and deleted, d new: the LIST's state exactly.
  assert.deepEqual(names, ["b@31", "d@31"]);
  assert.equal(reflector.stats.relists, 2);
  assert.equal(reflector.stats.errors, 0);
  // The first 410 re-lists at once; a second one with no event in between backs off (20 ms here).
  const first = lw.times[3] - lw.times[2], second = lw.times[5] - lw.times[4];
  assert.ok(first < 15, `the first 410 re-lists at once (waited ${first.toFixed(0)} ms)`);
  assert.ok(second >= 18, `a second 410 in a row backs off (waited ${second.toFixed(0)} ms)`);
});

Deno.test("reflector: a re-list refused with 410 or answered older than held falls back to a quorum read", async () => {
  const lw = new FakeListerWatcher("10", [list("10", "a"), gone(), list("40", "z")], [[[added("b", "12")], [
    expired(),
  ]]]);
  const { names } = await runScript(lw);
  assert.deepEqual(lw.calls.slice(3, 6), [
    "list limit=500 resourceVersion=12 resourceVersionMatch=NotOlderThan",
    "list limit=500",
    "watch rv=40 bookmarks=true",
  ]);
  assert.deepEqual(names, ["z@40"]);

  // A server that ignores NotOlderThan and answers older than the cache: refused, then a quorum read.
  const stale = new FakeListerWatcher("10", [list("10", "a"), list("11", "old"), list("50", "new")], [[
    [added("b", "12")],
    [expired()],
  ]]);
  const { names: after } = await runScript(stale);
  assert.deepEqual(stale.calls.slice(3, 6), [
    "list limit=500 resourceVersion=12 resourceVersionMatch=NotOlderThan",
    "list limit=500",
    "watch rv=50 bookmarks=true",
  ]);
  assert.deepEqual(after, ["new@50"]);
});

Deno.test("reflector: a first LIST from the cache older than the probe is refused for a quorum read", async () => {
  const lw = new FakeListerWatcher("20", [list("15", "stale"), list("20", "fresh")], []);
  const { names, reflector } = await runScript(lw);
  assert.deepEqual(lw.calls, [
    "probe",
    "list limit=500 resourceVersion=0",
    "list limit=500",
    "watch rv=20 bookmarks=true",
  ]);
  assert.deepEqual(names, ["fresh@20"]);
  assert.equal(reflector.stats.lists, 1);
});

Deno.test("reflector: failures back off exponentially, Retry-After raises the wait, an event resets it", async () => {
  const err = (status: number, retryAfterMs?: number) =>
    new KubeApiError(status, "InternalError", "scripted", undefined, retryAfterMs);
  const lw = new FakeListerWatcher("10", [list("10", "a")], [
    err(500),
    err(500),
    err(500),
    err(429, 300),
    [[added("b", "11")]],
    err(500),
  ]);
  const { reflector, log } = await runScript(lw, { initialMs: 40, maxMs: 10_000, jitter: 0 });
  const watchTimes = lw.times.filter((_, i) => lw.calls[i].startsWith("watch"));
  const gaps = watchTimes.slice(1).map((t, i) => t - watchTimes[i]);
  // 40, 80, 160, then max(Retry-After 300, backoff 320), an event (reset), then 40 again.
  const expected = [40, 80, 160, 320, 0, 40];
  for (let i = 0; i < expected.length; i++) {
    assert.ok(gaps[i] >= expected[i] - 2, `gap ${i}: ${gaps[i].toFixed(0)} ms, expected ${expected[i]}`);
    assert.ok(gaps[i] < expected[i] + 150, `gap ${i}: ${gaps[i].toFixed(0)} ms, expected ${expected[i]}`);
  }
  assert.equal(reflector.stats.errors, 5);
  // One line per distinct cause, not one per retry: 500 and 429 each once, then a recovery line.
  const failures = log.records.filter((r) => r.msg.startsWith("watch configmaps") && r.level === "warn");
  assert.deepEqual(failures.map((r) => r.msg.split(": ")[1].split(" ")[0]), ["500", "429", "500"]);
});

Deno.test("reflector: a Retry-After longer than the backoff is honoured over the backoff", async () => {
  const lw = new FakeListerWatcher("10", [list("10", "a")], [
    new KubeApiError(429, "TooManyRequests", "slow down", undefined, 250),
  ]);
  await runScript(lw, { initialMs: 20, maxMs: 1000, jitter: 0 });
  const gap = lw.times[3] - lw.times[2];
  assert.ok(gap >= 248 && gap < 400, `waited ${gap.toFixed(0)} ms for Retry-After 250 ms`);
});

Deno.test("reflector: needs a client or a ListerWatcher", () => {
  assert.throws(
    () => new Reflector<Obj>({ resource: Resources.configMaps, store: new Store<Obj>() }),
    /neither client nor listerWatcher/,
  );
});
