// The REST layer against the real apiserver: every verb, each patch type, pagination, optimistic
// concurrency, the status subresource, and typed errors.

import assert from "node:assert/strict";
import { sharedCluster } from "../../support/cluster.ts";
import { KubeApiError, Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { clientFor } from "./helpers.ts";

type ConfigMap = KubeObject & { data?: Record<string, string> };
type Pod = KubeObject & { spec: Record<string, unknown>; status?: { phase?: string; podIP?: string } };

async function apiError(p: Promise<unknown>): Promise<KubeApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KubeApiError) return e;
    throw e;
  }
  throw new Error("expected a KubeApiError");
}

Deno.test("rest: verbs, patches, pagination, conflicts and errors", async () => {
  const cluster = await sharedCluster();
  const namespace = await cluster.namespace("kube-rest");
  const client = await clientFor(cluster.kubeconfigPath);
  const cm = Resources.configMaps;
  try {
    const created = await client.create<ConfigMap>(cm, {
      metadata: { name: "a", namespace },
      data: { x: "1" },
    });
    assert.equal((await client.get<ConfigMap>(cm, "a", namespace)).data?.x, "1");

    const dup = await apiError(client.create<ConfigMap>(cm, { metadata: { name: "a", namespace } }));
    assert.ok(dup.isAlreadyExists && dup.status === 409);

    const updated = await client.update<ConfigMap>(cm, { ...created, data: { x: "2" } });
    // A write from a stale resourceVersion loses: the compare-and-swap leader election relies on.
    const stale = await apiError(client.update<ConfigMap>(cm, { ...created, data: { x: "3" } }));
    assert.ok(stale.isConflict && stale.reason === "Conflict");

    await client.patch(cm, "a", "merge", { data: { y: "m" } }, { namespace });
    await client.patch(cm, "a", "json", [{ op: "replace", path: "/data/x", value: "j" }], { namespace });
    await client.patch(cm, "a", "strategic", { metadata: { labels: { s: "1" } } }, { namespace });
    await client.patch(cm, "a", "apply", {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "a" },
      data: { z: "a" },
    }, {
      namespace,
      fieldManager: "kube-test",
      force: true,
    });
    const now = await client.get<ConfigMap>(cm, "a", namespace);
    assert.deepEqual(now.data, { x: "j", y: "m", z: "a" });
    assert.equal(now.metadata.labels?.s, "1");
    assert.notEqual(now.metadata.resourceVersion, updated.metadata.resourceVersion);

    for (let i = 0; i < 7; i++) {
      await client.create<ConfigMap>(cm, { metadata: { name: `p${i}`, namespace } });
    }
    const page = await client.list<ConfigMap>(cm, { namespace, limit: 3 });
    assert.equal(page.items.length, 3);
    assert.ok(page.metadata.continue);
    const all = await client.listAll<ConfigMap>(cm, { namespace, limit: 3 });
    assert.equal(all.items.length, 8);
    assert.ok(all.metadata.resourceVersion);
    const labelled = await client.list<ConfigMap>(cm, { namespace, labelSelector: "s=1" });
    assert.deepEqual(labelled.items.map((o) => o.metadata.name), ["a"]);

    const pod = await client.create<Pod>(Resources.pods, {
      metadata: { name: "pod", namespace },
      spec: { nodeName: "n1", containers: [{ name: "c", image: "registry.invalid/c:1" }] },
    });
    const withStatus = await client.updateStatus<Pod>(Resources.pods, {
      ...pod,
      status: { phase: "Running", podIP: "10.1.2.3" },
    });
    assert.equal(withStatus.status?.podIP, "10.1.2.3");
    const byField = await client.list<Pod>(Resources.pods, {
      namespace,
      fieldSelector: "status.podIP=10.1.2.3",
    });
    assert.equal(byField.items.length, 1);

    await client.delete(cm, "a", { namespace, preconditions: { uid: created.metadata.uid } });
    const gone = await apiError(client.get(cm, "a", namespace));
    assert.ok(gone.isNotFound && gone.reason === "NotFound");
    assert.match(gone.message, /configmaps "a" not found/);

    assert.throws(() => client.get(Resources.nodes, "n", "ns"), /cluster-scoped/);
  } finally {
    client.conn.close();
  }
});
