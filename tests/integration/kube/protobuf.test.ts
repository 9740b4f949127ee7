// Protobuf on the wire for built-in kinds: the same objects listed and watched in protobuf (slim
// projection) and in JSON (whole objects, then cut by the same projection) must give identical caches,
// through a LIST, watch updates, status writes, deletes and ERROR answers.

import assert from "node:assert/strict";
import { sharedCluster } from "../../support/cluster.ts";
import { Informer } from "../../../lib/kube/informer.ts";
import {
  isProtobuf,
  KubeApiError,
  type KubeClient,
  PROTOBUF_ACCEPT,
  Resources,
  type ResourceType,
} from "../../../lib/kube/rest.ts";
import { builtinCodec } from "../../../lib/kube/builtin_proto.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { memoryLogger } from "../../../lib/log.ts";
import { clientFor, waitUntil } from "./helpers.ts";

type Obj = KubeObject & Record<string, unknown>;

function pod(name: string, namespace: string, extra: Partial<Obj["metadata"]> = {}, spec = {}): Obj {
  return {
    metadata: { name, namespace, ...extra },
    spec: { containers: [{ name: "app", image: "registry.invalid/app:1" }], ...spec },
  };
}

/** Two informers over the same objects: protobuf (default) and JSON whole objects projected. */
function pair(
  client: KubeClient,
  resource: ResourceType,
  scope: { namespace?: string; labelSelector?: string },
) {
  const codec = builtinCodec(resource)!;
  const log = memoryLogger();
  const proto = new Informer<Obj>({ client, resource, ...scope, log });
  const json = new Informer<Obj>({ client, resource, ...scope, log, encoding: "json" });
  return { proto, json, log, project: (o: Obj) => codec.project(o) };
}

function byKey(objs: KubeObject[]): Map<string, KubeObject> {
  return new Map(objs.map((o) => [`${o.metadata.namespace}/${o.metadata.name}`, o]));
}

function sameCaches(p: Informer<Obj>, j: Informer<Obj>, project: (o: Obj) => KubeObject): boolean {
  const a = byKey(p.store.list());
  const b = byKey(j.store.list().map(project));
  try {
    assert.deepStrictEqual(a, b);
    return true;
  } catch {
    return false;
  }
}

/** Annotations of every kind of value (long, empty, non-ASCII). */
const ANNOTATIONS = { "a.example/x": "1".repeat(200), empty: "", unicode: "välue ✓ 日本" };

/** A controller owner reference to `owner` (a ConfigMap), blockOwnerDeletion explicitly false. */
const ownedBy = (owner: KubeObject) => [{
  apiVersion: "v1",
  kind: "ConfigMap",
  name: "owner",
  uid: owner.metadata.uid!,
  controller: true,
  blockOwnerDeletion: false,
}];

Deno.test("protobuf and JSON give identical caches for pods, nodes and leases", async (t) => {
  const cluster = await sharedCluster();
  const client = await clientFor(cluster.kubeconfigPath);
  const ctrl = new AbortController();
  const runs: Promise<void>[] = [];
  try {
    await t.step("pods: metadata of every kind, spec and status fields, updates and deletes", async () => {
      const namespace = await cluster.namespace("kube-proto");
      const owner = await client.create<Obj>(Resources.configMaps, {
        metadata: { name: "owner", namespace },
      });
      await client.create(
        Resources.pods,
        pod("full", namespace, {
          labels: { aadpodidbinding: "web" },
          annotations: ANNOTATIONS,
          finalizers: ["example.com/hold"],
          ownerReferences: ownedBy(owner),
        }, { nodeName: "node-p", serviceAccountName: "default", hostNetwork: true }),
      );
      await client.create(Resources.pods, pod("bare", namespace, { generateName: "bare-" }));
      await client.updateStatus(Resources.pods, {
        ...(await client.get<Obj>(Resources.pods, "full", namespace)),
        status: {
          phase: "Running",
          hostIP: "10.0.0.1",
          podIP: "10.244.0.7",
          podIPs: [{ ip: "10.244.0.7" }, { ip: "fd00::7" }],
          conditions: [{ type: "Ready", status: "True" }],
        },
      });

      const { proto, json, project } = pair(client, Resources.pods, { namespace });
      runs.push(proto.start(ctrl.signal), json.start(ctrl.signal));
      await Promise.all([proto.synced, json.synced]);
      assert.equal(proto.store.size, 2);
      assert.ok(sameCaches(proto, json, project), "after LIST");
      const full = proto.store.getByName("full", namespace)!;
      assert.deepEqual(full.spec, { nodeName: "node-p", serviceAccountName: "default", hostNetwork: true });
      assert.equal((full.status as { phase: string }).phase, "Running");
      // A cached pod keeps what MIC and NMI read of its metadata; annotations, owners, finalizers and
      // times are cut (the whole ObjectMeta is checked on leases below).
      assert.deepEqual(Object.keys(full.metadata).sort(), [
        "labels",
        "name",
        "namespace",
        "resourceVersion",
        "uid",
      ]);
      // The resourceVersion probe and one LIST.
      assert.equal(proto.stats.listRequests, 2);
      // The apiserver really answered in protobuf (the JSON fallback would give the same cache).
      const res = await client.fetch("GET", `/api/v1/namespaces/${namespace}/pods`, {
        accept: PROTOBUF_ACCEPT,
      });
      assert.ok(isProtobuf(res));
      await res.body?.cancel();

      // Watch path: a new pod, a label change, a graceful delete held by a finalizer, a real delete.
      await client.create(
        Resources.pods,
        pod("later", namespace, { labels: { a: "b" } }, { nodeName: "n2" }),
      );
      await client.patch(Resources.pods, "bare", "merge", { metadata: { labels: { x: "y" } } }, {
        namespace,
      });
      await client.delete(Resources.pods, "full", { namespace });
      await client.delete(Resources.pods, "later", { namespace, gracePeriodSeconds: 0 });
      await waitUntil(
        "deletionTimestamp on full in both caches",
        () =>
          [proto, json].every((i) => i.store.getByName("full", namespace)?.metadata.deletionTimestamp) &&
          [proto, json].every((i) => i.store.getByName("later", namespace) === undefined) &&
          [proto, json].every((i) => i.store.getByName("bare", namespace)?.metadata.labels?.x === "y"),
      );
      assert.ok(sameCaches(proto, json, project), "after watch events");
      assert.ok(proto.stats.events >= 4);
      const held = proto.store.getByName("full", namespace)!;
      assert.equal(typeof held.metadata.deletionGracePeriodSeconds, "number");
      await client.patch(Resources.pods, "full", "json", [{ op: "remove", path: "/metadata/finalizers" }], {
        namespace,
      });
    });

    await t.step("nodes: providerID, taints, unschedulable; leases: every spec field", async () => {
      const label = `proto-${Date.now()}`;
      await client.create<Obj>(Resources.nodes, {
        metadata: { name: `${label}-a`, labels: { t: label } },
        spec: {
          providerID:
            "azure:///subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/a",
          unschedulable: true,
          taints: [{ key: "k", value: "v", effect: "NoSchedule" }, { key: "only", effect: "NoExecute" }],
        },
      });
      await client.create<Obj>(Resources.nodes, { metadata: { name: `${label}-b`, labels: { t: label } } });
      const nodes = pair(client, Resources.nodes, { labelSelector: `t=${label}` });
      runs.push(nodes.proto.start(ctrl.signal), nodes.json.start(ctrl.signal));
      await Promise.all([nodes.proto.synced, nodes.json.synced]);
      assert.equal(nodes.proto.store.size, 2);
      assert.ok(sameCaches(nodes.proto, nodes.json, nodes.project));
      const a = nodes.proto.store.getByName(`${label}-a`)! as Obj & { spec: { taints: unknown[] } };
      // Ours, plus the unschedulable taint the apiserver adds.
      assert.ok(a.spec.taints.length >= 2);
      // NoExecute taints get a timeAdded from the apiserver; it must survive both ways.
      await client.patch(Resources.nodes, `${label}-b`, "merge", { spec: { providerID: "azure:///b" } });
      await waitUntil(
        "node b change in both caches",
        () =>
          [nodes.proto, nodes.json].every((i) =>
            (i.store.getByName(`${label}-b`) as { spec?: { providerID?: string } })?.spec?.providerID ===
              "azure:///b"
          ),
      );
      assert.ok(sameCaches(nodes.proto, nodes.json, nodes.project));
      for (const n of ["a", "b"]) await client.delete(Resources.nodes, `${label}-${n}`);

      const namespace = await cluster.namespace("kube-proto-lease");
      const owner = await client.create<Obj>(Resources.configMaps, {
        metadata: { name: "owner", namespace },
      });
      await client.create<Obj>(Resources.leases, {
        metadata: {
          name: "l1",
          namespace,
          annotations: ANNOTATIONS,
          ownerReferences: ownedBy(owner),
        },
        spec: {
          holderIdentity: "me",
          leaseDurationSeconds: 15,
          acquireTime: "2026-01-02T03:04:05.123456Z",
          renewTime: "2026-01-02T03:04:06.000001Z",
          leaseTransitions: 3,
        },
      });
      await client.create<Obj>(Resources.leases, { metadata: { name: "l2", namespace }, spec: {} });
      const leases = pair(client, Resources.leases, { namespace });
      runs.push(leases.proto.start(ctrl.signal), leases.json.start(ctrl.signal));
      await Promise.all([leases.proto.synced, leases.json.synced]);
      assert.ok(sameCaches(leases.proto, leases.json, leases.project));
      const l1 = leases.proto.store.getByName("l1", namespace)! as Obj & { spec: { renewTime: string } };
      assert.equal(l1.spec.renewTime, "2026-01-02T03:04:06.000001Z");
      // A lease is written back whole: its metadata is kept whole.
      assert.equal(l1.metadata.annotations?.unicode, "välue ✓ 日本");
      assert.equal(l1.metadata.annotations?.empty, "");
      assert.equal(l1.metadata.ownerReferences?.[0].blockOwnerDeletion, false);
      assert.match(l1.metadata.creationTimestamp!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    });

    await t.step("a protobuf request's error answer is decoded as a Status", async () => {
      await assert.rejects(
        client.listProjected(Resources.pods, builtinCodec(Resources.pods)!, {
          namespace: "kube-proto-none",
          labelSelector: "a in (",
        }),
        (e: unknown) => e instanceof KubeApiError && e.status === 400 && e.reason === "BadRequest",
      );
    });
  } finally {
    ctrl.abort();
    await Promise.all(runs);
    client.conn.close();
  }
});
