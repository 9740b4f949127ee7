// Server-side filtering as NMI uses it: pods of one node by field selector, pods and CRD objects by label
// selector (an object leaving the selector is a delete, coming back an add), and bookmarks that move the
// resourceVersion without any handler call.

import assert from "node:assert/strict";
import { sharedCluster } from "../../support/cluster.ts";
import { Informer, podIndexers } from "../../../lib/kube/informer.ts";
import { type KubeClient, Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { memoryLogger } from "../../../lib/log.ts";
import { clientFor, journal, waitUntil } from "./helpers.ts";

type Pod = KubeObject & { spec: { nodeName?: string }; status?: { podIP?: string; phase?: string } };

function podOn(name: string, namespace: string, node: string, labels: Record<string, string> = {}): Pod {
  return {
    metadata: { name, namespace, labels },
    spec: { nodeName: node, containers: [{ name: "app", image: "registry.invalid/app:1" }] } as Pod["spec"],
  };
}

function names<T extends KubeObject>(informer: Informer<T>): string[] {
  return informer.store.list().map((o) => o.metadata.name!).sort();
}

Deno.test("reflector selectors and bookmarks", async (t) => {
  const cluster = await sharedCluster();
  const client: KubeClient = await clientFor(cluster.kubeconfigPath);
  const ctrl = new AbortController();
  const runs: Promise<void>[] = [];
  const start = <T extends KubeObject>(i: Informer<T>) => (runs.push(i.start(ctrl.signal)), i.synced);
  try {
    await t.step("pods: field selector spec.nodeName and a label selector", async () => {
      const namespace = await cluster.namespace("kube-sel");
      for (
        const [name, node, labels] of [
          ["a1", "node-a", { aadpodidbinding: "web" }],
          ["a2", "node-a", {}],
          ["b1", "node-b", { aadpodidbinding: "web" }],
        ] as const
      ) await client.create<Pod>(Resources.pods, podOn(name, namespace, node, labels));

      const onNode = new Informer<Pod>({
        client,
        resource: Resources.pods,
        fieldSelector: `spec.nodeName=node-a,metadata.namespace=${namespace}`,
        indexers: podIndexers,
        log: memoryLogger(),
      });
      const labelled = new Informer<Pod>({
        client,
        resource: Resources.pods,
        namespace,
        labelSelector: "aadpodidbinding",
        log: memoryLogger(),
      });
      const j = journal<Pod>();
      labelled.addHandler(j.handler);
      await Promise.all([start(onNode), start(labelled)]);
      assert.deepEqual(names(onNode), ["a1", "a2"]);
      assert.deepEqual(names(labelled), ["a1", "b1"]);
      // The cache keeps objects without managedFields (the server sends them; nothing here reads them).
      assert.ok(onNode.store.list().every((p) => !("managedFields" in p.metadata)));
      // Listed objects carry their kind like watched ones do.
      assert.ok(onNode.store.list().every((p) => p.kind === "Pod" && p.apiVersion === "v1"));
      assert.ok("managedFields" in (await client.get<Pod>(Resources.pods, "a1", namespace)).metadata);

      // A pod on node-b never shows up in node-a's cache; status updates do, and feed the IP index.
      await client.create<Pod>(Resources.pods, podOn("b2", namespace, "node-b"));
      const a2 = await client.get<Pod>(Resources.pods, "a2", namespace);
      await client.updateStatus<Pod>(Resources.pods, {
        ...a2,
        status: { phase: "Running", podIP: "10.244.0.7" },
      });
      await waitUntil("a2's IP in the index", () => onNode.store.byIndex("byIP", "10.244.0.7").length === 1);
      assert.deepEqual(names(onNode), ["a1", "a2"]);

      // Losing the label is a delete for the labelled cache; regaining it an add.
      await client.patch(Resources.pods, "a1", "merge", { metadata: { labels: { aadpodidbinding: null } } }, {
        namespace,
      });
      await waitUntil("a1 to leave", () => labelled.store.getByName("a1", namespace) === undefined);
      await client.patch(
        Resources.pods,
        "a1",
        "merge",
        { metadata: { labels: { aadpodidbinding: "web" } } },
        {
          namespace,
        },
      );
      await waitUntil("a1 to return", () => labelled.store.getByName("a1", namespace) !== undefined);
      const a1 = [...j.byUid.values()].find((es) => es.length > 1)!;
      assert.deepEqual(a1.map((e) => e.type), ["add", "delete", "add"]);
    });

    await t.step("CRD objects by label: assigned identities of one node", async () => {
      const namespace = await cluster.namespace("kube-crd-sel");
      const aai = (name: string, node: string): KubeObject =>
        ({
          metadata: { name, namespace, labels: { nodename: node } },
          spec: { pod: name, podNamespace: namespace, nodename: node },
        }) as KubeObject;
      await client.create(Resources.azureAssignedIdentities, aai("p1-id", "node-a"));
      await client.create(Resources.azureAssignedIdentities, aai("p2-id", "node-b"));
      const informer = new Informer<KubeObject>({
        client,
        resource: Resources.azureAssignedIdentities,
        namespace,
        labelSelector: "nodename=node-a",
        log: memoryLogger(),
      });
      await start(informer);
      assert.deepEqual(names(informer), ["p1-id"]);
      await client.create(Resources.azureAssignedIdentities, aai("p3-id", "node-a"));
      await client.patch(Resources.azureAssignedIdentities, "p2-id", "merge", {
        metadata: { labels: { nodename: "node-a" } },
      }, {
        namespace,
      });
      await waitUntil("node-a's identities", () => names(informer).join() === "p1-id,p2-id,p3-id");
    });

    await t.step("bookmarks advance the resourceVersion with no handler call", async () => {
      const quiet = await cluster.namespace("kube-bookmark");
      const busy = await cluster.namespace("kube-bookmark-other");
      await client.create(Resources.configMaps, { metadata: { name: "only", namespace: quiet } });
      // The apiserver sends a bookmark shortly before a watch's timeout: a short timeout makes it prompt.
      const informer = new Informer<KubeObject>({
        client,
        resource: Resources.configMaps,
        namespace: quiet,
        watchTimeoutSeconds: 4,
        log: memoryLogger(),
      });
      let calls = 0;
      informer.addHandler({ onAdd: () => calls++, onUpdate: () => calls++, onDelete: () => calls++ });
      await start(informer);
      assert.equal(calls, 1);
      const listed = Number(informer.reflector.resourceVersion);
      // Writes elsewhere move the global resourceVersion; only a bookmark can carry it to this watch.
      for (let i = 0; i < 5; i++) {
        await client.create(Resources.configMaps, { metadata: { name: `x${i}`, namespace: busy } });
      }
      await waitUntil("a bookmark", () => informer.stats.bookmarks > 0, 15_000);
      assert.ok(Number(informer.reflector.resourceVersion) > listed, "bookmark advanced the resourceVersion");
      assert.equal(calls, 1);
      assert.equal(informer.stats.events, 0);
    });
  } finally {
    ctrl.abort();
    await Promise.all(runs);
    client.conn.close();
  }
});
