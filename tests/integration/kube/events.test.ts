import assert from "node:assert/strict";
import { sharedCluster } from "../../support/cluster.ts";
import { type CoreEvent, EVENT_COMPONENT, EventRecorder } from "../../../lib/kube/events.ts";
import { Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { memoryLogger } from "../../../lib/log.ts";
import { clientFor } from "./helpers.ts";

Deno.test("events: recorded on the object, repeats aggregated into one Event's count", async () => {
  const cluster = await sharedCluster();
  const namespace = await cluster.namespace("kube-events");
  const client = await clientFor(cluster.kubeconfigPath);
  try {
    const cm = await client.create<KubeObject>(Resources.configMaps, {
      metadata: { name: "target", namespace },
    });
    const log = memoryLogger();
    const rec = new EventRecorder({ client, instance: "mic-0", log });
    await Promise.all(
      [1, 2, 3].map(() => rec.record(cm, "Warning", "binding apply error", "identity x not found")),
    );
    await rec.record(cm, "Normal", "binding applied", "Binding b applied on node n for pod p");
    assert.deepEqual(log.records, []);
    const events = (await client.list<CoreEvent>(Resources.events, { namespace })).items;
    assert.equal(events.length, 2);
    const warning = events.find((e) => e.type === "Warning")!;
    assert.equal(warning.count, 3);
    assert.equal(warning.reason, "binding apply error");
    assert.equal(warning.source.component, EVENT_COMPONENT);
    assert.equal(warning.reportingComponent, EVENT_COMPONENT);
    assert.deepEqual(
      [warning.involvedObject.kind, warning.involvedObject.name, warning.involvedObject.uid],
      ["ConfigMap", "target", cm.metadata.uid],
    );
    assert.equal(events.find((e) => e.type === "Normal")!.count, 1);
  } finally {
    client.conn.close();
  }
});
