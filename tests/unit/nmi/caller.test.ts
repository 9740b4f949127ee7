import assert from "node:assert/strict";
import type { Pod } from "../../../lib/kube/core.ts";
import { podIndexers } from "../../../lib/kube/informer.ts";
import { KubeApiError, type KubeClient } from "../../../lib/kube/rest.ts";
import { Store } from "../../../lib/kube/store.ts";
import { callerPod, CallerResolver, pickCaller } from "../../../nmi/caller.ts";
import { WatchFreshness } from "../../../nmi/watch_freshness.ts";

const pod = (
  name: string,
  ip: string,
  o: { node?: string; phase?: string; deleting?: boolean; host?: boolean; v6?: string } = {},
): Pod => ({
  metadata: {
    name,
    namespace: "ns",
    deletionTimestamp: o.deleting ? "2026-01-01T00:00:00Z" : undefined,
    ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "mic-1", uid: "u" }],
  },
  spec: { nodeName: o.node ?? "n1", hostNetwork: o.host, serviceAccountName: "sa-1" },
  status: {
    phase: (o.phase ?? "Running") as "Running",
    podIP: ip,
    podIPs: [{ ip }, ...(o.v6 ? [{ ip: o.v6 }] : [])],
  },
});

Deno.test("pickCaller: live pod on this node, IPv6 too; other node refused; ambiguity refused", () => {
  const r = pickCaller([pod("a", "10.0.0.1")], "10.0.0.1", "n1");
  assert.ok(r?.ok && r.pod.metadata.name === "a");
  const v6 = pickCaller([pod("a", "10.0.0.1", { v6: "fd00::1" })], "fd00::1", "n1");
  assert.ok(v6?.ok);
  const far = pickCaller([pod("a", "10.0.0.1", { node: "n2" })], "10.0.0.1", "n1");
  assert.ok(far && !far.ok && far.refusal.kind === "forbidden");
  assert.equal(pickCaller([pod("a", "10.0.0.1", { phase: "Succeeded" })], "10.0.0.1", "n1"), undefined);
  assert.equal(pickCaller([pod("a", "10.0.0.1", { host: true })], "10.0.0.1", "n1"), undefined);
  const replaced = pickCaller(
    [pod("old", "10.0.0.1", { deleting: true }), pod("new", "10.0.0.1")],
    "10.0.0.1",
    "n1",
  );
  assert.ok(replaced?.ok && replaced.pod.metadata.name === "new");
  const twins = pickCaller([pod("x", "10.0.0.1"), pod("y", "10.0.0.1")], "10.0.0.1", "n1");
  assert.ok(twins && !twins.ok && twins.refusal.kind === "forbidden");
  assert.equal(callerPod(pod("a", "1.1.1.1")).serviceAccountName, "sa-1");
});

/** A stand-in for the apiserver's pod LISTs (field selectors status.podIP= and metadata.name=). */
function fakeApi(pods: () => Pod[]) {
  const calls: string[] = [];
  let stalled = false;
  const client = {
    list: (_rt: unknown, opts: { fieldSelector?: string }, signal?: AbortSignal) => {
      calls.push(opts.fieldSelector ?? "");
      if (stalled) {
        return new Promise((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason)));
      }
      const [field, value] = (opts.fieldSelector ?? "").split("=");
      const items = pods().filter((p) =>
        field === "status.podIP" ? p.status?.podIP === value : p.metadata.name === value
      );
      return Promise.resolve({ items });
    },
  } as unknown as KubeClient;
  return { client, calls, stall: (on: boolean) => stalled = on };
}

Deno.test("unknown source IPs: one cluster-wide lookup, then remembered until a pod event names the IP", async () => {
  const store = new Store<Pod>({ indexers: { byIP: podIndexers.byIP } });
  const api = fakeApi(() => []);
  const callers = new CallerResolver({ pods: store, client: api.client, node: "n1" });
  for (let i = 0; i < 20; i++) {
    const r = await callers.byIp("10.0.0.9");
    assert.ok(!r.ok && r.refusal.kind === "not_found");
  }
  assert.equal(api.calls.length, 1, "one LIST for 20 requests from an unknown address");
  store.upsert({ ...pod("new", "10.0.0.9"), metadata: { ...pod("new", "10.0.0.9").metadata, uid: "u-new" } });
  assert.ok((await callers.byIp("10.0.0.9")).ok, "a pod event for the IP ends the negative entry");
});

Deno.test("stale pod watch: a cached caller is confirmed by a direct GET; a reused IP is refused with 503", async () => {
  let fresh = true;
  const freshness = { isFresh: () => fresh } as unknown as WatchFreshness;
  const store = new Store<Pod>({ indexers: { byIP: podIndexers.byIP } });
  const old = { ...pod("old", "10.0.0.5"), metadata: { ...pod("old", "10.0.0.5").metadata, uid: "u-old" } };
  store.upsert(old);
  let live: Pod[] = [old];
  const api = fakeApi(() => live);
  const callers = new CallerResolver({ pods: store, client: api.client, node: "n1", freshness });
  const served = await callers.byIp("10.0.0.5");
  assert.ok(served.ok && api.calls.length === 0, "fresh watch: served from the cache, no API call");
  // The watch goes quiet (stalled link); meanwhile the old pod is deleted and its IP reused by another pod.
  fresh = false;
  const reuse = { ...pod("new", "10.0.0.5"), metadata: { ...pod("new", "10.0.0.5").metadata, uid: "u-new" } };
  live = [reuse];
  const refused = await callers.byIp("10.0.0.5");
  assert.ok(!refused.ok && refused.refusal.kind === "unavailable", JSON.stringify(refused));
  // While the apiserver cannot be reached at all, the cached caller is refused too.
  live = [old];
  api.stall(true);
  await new Promise((r) => setTimeout(r, 1100)); // past the confirmation's reuse window
  const stalled = await callers.byIp("10.0.0.5");
  assert.ok(!stalled.ok && stalled.refusal.kind === "unavailable");
  api.stall(false);
  await new Promise((r) => setTimeout(r, 1100));
  const confirmed = await callers.byIp("10.0.0.5");
  assert.ok(confirmed.ok && confirmed.pod.metadata.uid === "u-old");
});

Deno.test("watch freshness: progress within the bound is fresh; silence past it is not", () => {
  let now = 0;
  let progress = 0;
  const f = new WatchFreshness(() => progress, 1000, () => now);
  assert.ok(f.isFresh());
  now = 1500;
  assert.ok(!f.isFresh());
  progress++;
  assert.ok(f.isFresh());
  now = 2400;
  assert.ok(f.isFresh());
  now = 2600;
  assert.ok(!f.isFresh());
});

Deno.test("caller: a failed pod lookup counts as the original's get_pod_list error; a 404 does not", async () => {
  const ops: string[] = [];
  const failing = {
    list: () => Promise.reject(new Error("apiserver unreachable")),
    get: () => Promise.reject(new Error("apiserver unreachable")),
  } as unknown as KubeClient;
  const pods = new Store<Pod>({ indexers: { byIP: podIndexers.byIP } });
  const r = new CallerResolver({ pods, client: failing, node: "n1", onKubeError: (op) => ops.push(op) });
  assert.equal((await r.byIp("10.0.0.9")).ok, false);
  assert.equal((await r.byName("ns", "p")).ok, false);
  assert.deepEqual(ops, ["get_pod_list", "get_pod_list"]);
  const notFound = {
    get: () => Promise.reject(new KubeApiError(404, "NotFound", 'pods "p" not found')),
  } as unknown as KubeClient;
  const quiet = new CallerResolver({ pods, client: notFound, node: "n1", onKubeError: (op) => ops.push(op) });
  assert.equal((await quiet.byName("ns", "p")).ok, false);
  assert.equal(ops.length, 2);
});

Deno.test("caller: a flood of distinct source addresses is bounded: the memo and the unknown list start over past 10,000", async () => {
  const store = new Store<Pod>({ indexers: { byIP: podIndexers.byIP } });
  store.upsert(pod("a", "10.0.0.1"));
  let picks = 0;
  const byIndex = store.byIndex.bind(store);
  store.byIndex =
    ((...args: Parameters<typeof byIndex>) => (picks++, byIndex(...args))) as typeof store.byIndex;
  const api = fakeApi(() => []);
  const callers = new CallerResolver({ pods: store, client: api.client, node: "n1" });
  const ask = async () => [(await callers.byIp("10.0.0.1")).ok, (await callers.byIp("10.1.0.1")).ok];
  assert.deepEqual(await ask(), [true, false]);
  const [picked, looked] = [picks, api.calls.length];
  assert.deepEqual(await ask(), [true, false]);
  assert.deepEqual([picks, api.calls.length], [picked, looked], "both addresses remembered");
  for (let i = 0; i < 10_000; i++) await callers.byIp(`10.2.${i >> 8}.${i & 255}`);
  picks = 0;
  const calls = api.calls.length;
  assert.deepEqual(await ask(), [true, false]);
  assert.equal(picks, 2, "the pod cache is asked again for both: the memo started over");
  assert.equal(
    api.calls.length,
    calls + 1,
    "the unknown address is looked up again: the unknown list started over",
  );
});
