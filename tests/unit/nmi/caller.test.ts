import assert from "node:assert/strict";
import type { Pod } from "../../../lib/kube/core.ts";
import { podIndexers } from "../../../lib/kube/informer.ts";
import { KubeApiError, type KubeClient } from "../../../lib/kube/rest.ts";
import { Store } from "../../../lib/kube/store.ts";
import { callerPod, CallerResolver, pickCaller } from "../../../nmi/caller.ts";

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
  spec: { nodeName: o.node ?? "n1", hostNetwork: o.host },
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
  assert.ok(far && !far.ok && far.answer.status === 403);
  assert.equal(pickCaller([pod("a", "10.0.0.1", { phase: "Succeeded" })], "10.0.0.1", "n1"), undefined);
  assert.equal(pickCaller([pod("a", "10.0.0.1", { host: true })], "10.0.0.1", "n1"), undefined);
  const replaced = pickCaller(
    [pod("old", "10.0.0.1", { deleting: true }), pod("new", "10.0.0.1")],
    "10.0.0.1",
    "n1",
  );
  assert.ok(replaced?.ok && replaced.pod.metadata.name === "new");
  const twins = pickCaller([pod("x", "10.0.0.1"), pod("y", "10.0.0.1")], "10.0.0.1", "n1");
  assert.ok(twins && !twins.ok && twins.answer.status === 403);
  assert.equal(callerPod(pod("a", "1.1.1.1")).replicaSet, "mic-1");
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
