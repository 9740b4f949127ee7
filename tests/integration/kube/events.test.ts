import assert from "node:assert/strict";
import { sharedCluster } from "../../support/cluster.ts";
import { type CoreEvent, EVENT_COMPONENT, EventRecorder, type EventType } from "../../../lib/kube/events.ts";
import { type KubeClient, Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { memoryLogger } from "../../../lib/log.ts";
import { clientFor, TcpRelay } from "./helpers.ts";

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

async function target(client: KubeClient, namespace: string, name: string): Promise<KubeObject> {
  const cm = await client.create<KubeObject>(Resources.configMaps, { metadata: { name, namespace } });
  return { ...cm, apiVersion: "v1", kind: "ConfigMap" };
}

async function eventsOn(client: KubeClient, namespace: string, name: string): Promise<CoreEvent[]> {
  const all = (await client.list<CoreEvent>(Resources.events, { namespace })).items;
  return all.filter((e) => e.involvedObject.name === name);
}

Deno.test("events: a per-object spam filter stops a flood after the burst; other objects are unaffected", async () => {
  const cluster = await sharedCluster();
  const namespace = await cluster.namespace("kube-events-spam");
  const client = await clientFor(cluster.kubeconfigPath);
  try {
    const noisy = await target(client, namespace, "noisy");
    const quiet = await target(client, namespace, "quiet");
    const rec = new EventRecorder({ client, instance: "mic-0", log: memoryLogger() });
    // Distinct reasons: neither counted as repeats nor folded as similar; only the token bucket applies.
    await Promise.all(Array.from({ length: 30 }, (_, i) => rec.record(noisy, "Normal", `reason-${i}`, "m")));
    await rec.record(quiet, "Normal", "reason-0", "m");
    assert.equal((await eventsOn(client, namespace, "noisy")).length, 25);
    assert.equal((await eventsOn(client, namespace, "quiet")).length, 1);
    assert.equal(rec.stats.spamFiltered, 5);
  } finally {
    client.conn.close();
  }
});

Deno.test("events: similar events with different messages fold into one combined event", async () => {
  const cluster = await sharedCluster();
  const namespace = await cluster.namespace("kube-events-agg");
  const client = await clientFor(cluster.kubeconfigPath);
  try {
    const cm = await target(client, namespace, "target");
    const rec = new EventRecorder({ client, instance: "mic-0", log: memoryLogger() });
    for (let i = 0; i < 12; i++) await rec.record(cm, "Warning", "update failed", `attempt ${i}: conflict`);
    const events = await eventsOn(client, namespace, "target");
    const combined = events.filter((e) => e.message.startsWith("(combined from similar events): "));
    assert.equal(events.length, 10, events.map((e) => e.message).join("\n"));
    assert.equal(combined.length, 1);
    assert.equal(combined[0].count, 3);
    assert.equal(combined[0].message, "(combined from similar events): attempt 11: conflict");
    assert.equal(combined[0].reason, "update failed");
  } finally {
    client.conn.close();
  }
});

Deno.test("events: writes are bounded in flight and in the queue; the oldest waiting are dropped", async () => {
  const cluster = await sharedCluster();
  const namespace = await cluster.namespace("kube-events-queue");
  const client = await clientFor(cluster.kubeconfigPath);
  const proxy = new TcpRelay(cluster.server, { delayMs: 400 });
  const slow = await clientFor(cluster.kubeconfigPath, proxy.url);
  try {
    await slow.request("GET", "/version"); // one warm connection
    const objects = [];
    for (let i = 0; i < 20; i++) objects.push(await target(client, namespace, `obj-${i}`));
    const log = memoryLogger();
    const rec = new EventRecorder({ client: slow, instance: "mic-0", log, concurrency: 2, maxQueue: 5 });
    const started = performance.now();
    await Promise.all(objects.map((o) => rec.record(o, "Normal", "Synced", "ok")));
    const took = performance.now() - started;
    // Two written at once, five waiting; the 13 that arrived while the queue was full pushed out the oldest.
    const written = (await client.list<CoreEvent>(Resources.events, { namespace })).items
      .map((e) => e.involvedObject.name).sort();
    assert.deepEqual(written, ["obj-0", "obj-1", "obj-15", "obj-16", "obj-17", "obj-18", "obj-19"]);
    assert.equal(rec.stats.dropped, 13);
    assert.equal(rec.stats.written, 7);
    // 7 writes, 2 at a time, each answer held 400 ms: 4 rounds.
    assert.ok(took >= 4 * 400 - 50, `took ${Math.round(took)} ms: more than 2 writes in flight`);
    assert.equal(log.records.filter((r) => /event queue full/.test(r.msg)).length, 1);
  } finally {
    slow.conn.close();
    client.conn.close();
    await proxy.close();
  }
});

Deno.test("events: record() never throws, whatever the input or the apiserver does", async () => {
  const cluster = await sharedCluster();
  const namespace = await cluster.namespace("kube-events-bad");
  const client = await clientFor(cluster.kubeconfigPath);
  const relay = new TcpRelay(cluster.server);
  const cut = await clientFor(cluster.kubeconfigPath, relay.url);
  try {
    relay.cut();
    const cm = await target(client, namespace, "target");
    const log = memoryLogger();
    const rec = new EventRecorder({ client, instance: "mic-0", log });
    const bad = [
      () => rec.record(undefined as unknown as KubeObject, "Normal", "r", "m"),
      () => rec.record({} as KubeObject, "Normal", "r", "m"),
      () => rec.record({ metadata: {} }, "Normal", "r", "m"),
      () => rec.record(cm, "Bogus" as EventType, "r", "m"),
      () => rec.record(cm, "Normal", "", "m"),
      () => rec.record(cm, "Normal", "r", 42 as unknown as string),
    ];
    for (const call of bad) await call();
    assert.equal(rec.stats.invalid, bad.length);
    // An object in a namespace that does not exist: the apiserver refuses the Event (404).
    await rec.record(
      { ...cm, metadata: { ...cm.metadata, namespace: "no-such-namespace" } },
      "Normal",
      "r",
      "m",
    );
    // No apiserver at all.
    const offline = new EventRecorder({ client: cut, instance: "mic-0", log });
    await Promise.all([1, 2, 3].map((i) => offline.record(cm, "Warning", "r", `m${i}`)));
    assert.equal(rec.stats.failed + offline.stats.failed, 4);
    // Each failure cause is logged once per recorder, not once per event.
    const failures = log.records.filter((r) => /not recorded$/.test(r.msg));
    assert.equal(failures.length, 2, failures.map((r) => r.msg).join("\n"));
    assert.equal((await eventsOn(client, namespace, "target")).length, 0);
  } finally {
    cut.conn.close();
    client.conn.close();
    await relay.close();
  }
});
