import assert from "node:assert/strict";
import type { Pod } from "../../../lib/kube/core.ts";
import { callerPod, pickCaller } from "../../../nmi/caller.ts";

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
