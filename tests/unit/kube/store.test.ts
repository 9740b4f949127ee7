import assert from "node:assert/strict";
import { type EventHandler, Store } from "../../../lib/kube/store.ts";
import { podIndexers } from "../../../lib/kube/informer.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { memoryLogger } from "../../../lib/log.ts";

type Pod = KubeObject & { spec?: { nodeName?: string }; status?: { podIP?: string } };

function pod(name: string, uid: string, rv: string, node?: string, ip?: string): Pod {
  return {
    metadata: { name, namespace: "ns", uid, resourceVersion: rv },
    spec: { nodeName: node },
    status: { podIP: ip },
  };
}

function recorder() {
  const calls: string[] = [];
  const handler: EventHandler<Pod> = {
    onAdd: (o) => calls.push(`add ${o.metadata.name}@${o.metadata.resourceVersion}`),
    onUpdate: (a, b) =>
      calls.push(`update ${b.metadata.name}@${a.metadata.resourceVersion}->${b.metadata.resourceVersion}`),
    onDelete: (o, i) =>
      calls.push(`delete ${o.metadata.name}@${o.metadata.resourceVersion}${i.finalStateUnknown ? "?" : ""}`),
  };
  return { calls, handler };
}

Deno.test("store: watch events reach handlers once; an unchanged resourceVersion is not re-delivered", () => {
  const s = new Store<Pod>();
  const r = recorder();
  s.addHandler(r.handler);
  assert.equal(s.upsert(pod("a", "u1", "1")), "added");
  assert.equal(s.upsert(pod("a", "u1", "1")), "none");
  assert.equal(s.upsert(pod("a", "u1", "2")), "updated");
  assert.equal(s.delete(pod("a", "u1", "3")), "deleted");
  assert.equal(s.delete(pod("a", "u1", "3")), "none");
  assert.deepEqual(r.calls, ["add a@1", "update a@1->2", "delete a@3"]);
  assert.equal(s.size, 0);
});

Deno.test("store: replace emits exactly the diff, recreated names as delete then add", () => {
  const s = new Store<Pod>();
  s.upsert(pod("keep", "k", "1"));
  s.upsert(pod("change", "c", "1"));
  s.upsert(pod("gone", "g", "1"));
  s.upsert(pod("recreated", "old", "1"));
  const r = recorder();
  s.addHandler(r.handler, { replay: false });
  const result = s.replace([
    pod("keep", "k", "1"),
    pod("change", "c", "5"),
    pod("recreated", "new", "6"),
    pod("new", "n", "7"),
  ]);
  assert.deepEqual(result, { added: 2, updated: 1, deleted: 2 });
  assert.deepEqual([...r.calls].sort(), [
    "add new@7",
    "add recreated@6",
    "delete gone@1?",
    "delete recreated@1?",
    "update change@1->5",
  ]);
  const order = r.calls.filter((c) => c.includes("recreated"));
  assert.deepEqual(s.keys().sort(), ["ns/change", "ns/keep", "ns/new", "ns/recreated"]);
  assert.equal(s.getByName("recreated", "ns")?.metadata.uid, "new");
  // Unsorted order for one name: the delete comes before the add.
  assert.ok(r.calls.indexOf("delete recreated@1?") < r.calls.indexOf("add recreated@6"), String(order));
});

Deno.test("store: an ADDED for a name held by another uid deletes the old object first", () => {
  const s = new Store<Pod>();
  const r = recorder();
  s.addHandler(r.handler);
  s.upsert(pod("a", "u1", "1"));
  s.upsert(pod("a", "u2", "4"));
  s.delete(pod("a", "u3", "9"));
  assert.deepEqual(r.calls, ["add a@1", "delete a@1?", "add a@4", "delete a@4?"]);
});

Deno.test("store: indexes follow updates and deletes", () => {
  const s = new Store<Pod>({ indexers: podIndexers });
  s.upsert(pod("a", "1", "1", "node1", "10.0.0.1"));
  s.upsert(pod("b", "2", "1", "node1", "10.0.0.2"));
  s.upsert(pod("c", "3", "1"));
  assert.deepEqual(s.byIndex("byNode", "node1").map((p) => p.metadata.name).sort(), ["a", "b"]);
  s.upsert(pod("a", "1", "2", "node2", "10.0.0.9"));
  assert.deepEqual(s.byIndex("byNode", "node1").map((p) => p.metadata.name), ["b"]);
  assert.deepEqual(s.byIndex("byIP", "10.0.0.1"), []);
  assert.equal(s.byIndex("byIP", "10.0.0.9")[0].metadata.name, "a");
  s.delete(pod("b", "2", "3"));
  assert.deepEqual(s.indexValues("byNode"), ["node2"]);
  assert.throws(() => s.byIndex("nope", "x"), /no index named "nope"/);
});

Deno.test("store: late handlers get a replay; a throwing handler is logged and others still run", () => {
  const log = memoryLogger();
  const s = new Store<Pod>({ log, name: "pods" });
  s.upsert(pod("a", "1", "1"));
  const r = recorder();
  s.addHandler({
    onAdd: () => {
      throw new Error("boom");
    },
  });
  const off = s.addHandler(r.handler);
  s.upsert(pod("b", "2", "1"));
  off();
  s.upsert(pod("c", "3", "1"));
  assert.deepEqual(r.calls, ["add a@1", "add b@1"]);
  assert.equal(log.records.filter((x) => x.level === "error").length, 3);
  assert.match(log.records[0].msg, /pods: onAdd handler threw/);
});
