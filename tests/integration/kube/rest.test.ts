// The REST layer against the real apiserver: every verb, each patch type, pagination, optimistic
// concurrency, the status subresource, and typed errors.

import assert from "node:assert/strict";
import { sharedCluster } from "../../support/cluster.ts";
import { KubeApiError, Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { loadKubeConnection } from "../../../lib/kube/config.ts";
import { KubeClient } from "../../../lib/kube/rest.ts";
import { clientFor, TcpRelay } from "./helpers.ts";

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

Deno.test("rest: force goes only with apply patches; other patch types ignore it", async () => {
  const cluster = await sharedCluster();
  const namespace = await cluster.namespace("kube-rest-force");
  const client = await clientFor(cluster.kubeconfigPath);
  const cm = Resources.configMaps;
  try {
    await client.create<ConfigMap>(cm, { metadata: { name: "f", namespace }, data: { a: "1" } });
    // The apiserver answers 422 "may not be specified for non-apply patch" if force reaches it here.
    for (
      const [type, patch] of [
        ["merge", { data: { b: "m" } }],
        ["strategic", { data: { c: "s" } }],
        ["json", [{ op: "add", path: "/data/d", value: "j" }]],
      ] as const
    ) {
      await client.patch(cm, "f", type, patch, { namespace, fieldManager: "other", force: true });
    }
    await client.patch(cm, "f", "apply", {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "f" },
      data: { a: "applied" },
    }, { namespace, fieldManager: "kube-test", force: true });
    const now = await client.get<ConfigMap>(cm, "f", namespace);
    assert.deepEqual(now.data, { a: "applied", b: "m", c: "s", d: "j" });
  } finally {
    client.conn.close();
  }
});

Deno.test("rest: a request's timeout timer ends with its answer, not 30 s later", async () => {
  const cluster = await sharedCluster();
  const conn = await loadKubeConnection({ kubeconfigPath: cluster.kubeconfigPath });
  // A delay no other timer of the client uses, so only the request timeouts are counted.
  const timeoutMs = 29_731;
  const client = new KubeClient(conn, { requestTimeoutMs: timeoutMs });
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  const running = new Set<unknown>();
  let started = 0;
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    const id = realSet(() => {
      running.delete(id);
      fn();
    }, ms);
    if (ms === timeoutMs) {
      started++;
      running.add(id);
    }
    return id;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((id?: number) => {
    running.delete(id);
    realClear(id);
  }) as typeof clearTimeout;
  try {
    for (let i = 0; i < 5; i++) await client.get(Resources.namespaces, "default");
    await client.list(Resources.namespaces);
    await apiError(client.get(Resources.namespaces, "no-such-namespace"));
    // A timer that outlives its request keeps the request's signal and what hangs on it for the whole
    // timeout: 10,000 writes in a burst held over 100 MiB that way (deno task bench mic).
    assert.equal(started, 7, "each request runs under a timeout of its own");
    assert.equal(running.size, 0, `${running.size} request timeouts still running after their answers`);
  } finally {
    globalThis.setTimeout = realSet;
    globalThis.clearTimeout = realClear;
    conn.close();
  }
});

Deno.test("rest: the request timeout is a KubeApiError of kind timeout; a caller's abort is not", async () => {
  const cluster = await sharedCluster();
  const proxy = new TcpRelay(cluster.server);
  const conn = await loadKubeConnection({ kubeconfigPath: cluster.kubeconfigPath });
  const slow = new KubeClient({ ...conn, server: proxy.url }, { requestTimeoutMs: 400 });
  try {
    // Connected first, then every answer is held 1.5 s: the requests below wait for answers, not for a
    // TLS handshake through the delay (which the next request would share).
    await slow.request("GET", "/version");
    proxy.delayMs = 1_500;
    const started = performance.now();
    const timedOut = await apiError(slow.get(Resources.namespaces, "default"));
    assert.ok(timedOut.isTimeout && timedOut.kind === "timeout", `${timedOut.kind}: ${timedOut.message}`);
    assert.equal(timedOut.status, 0);
    assert.match(timedOut.message, /within 400 ms/);
    assert.ok(performance.now() - started < 1_400, "the timeout did not end the request");

    const ctrl = new AbortController();
    const reason = new Error("caller gave up");
    setTimeout(() => ctrl.abort(reason), 100);
    const aborted = await slow.request("GET", "/api/v1/namespaces/default", { signal: ctrl.signal })
      .then(() => undefined, (e) => e);
    assert.equal(aborted, reason);

    // Without a delay the same client answers, and other failures keep their own kinds.
    proxy.delayMs = 0;
    // The answers to the two requests above are still held in the relay, ahead of any new one on the same
    // connection (one TCP stream keeps its order): let them drain.
    await new Promise((r) => setTimeout(r, 1_600));
    const missing = await apiError(slow.get(Resources.namespaces, "no-such-namespace"));
    assert.equal(missing.kind, "status");
    assert.ok(!missing.isTimeout);
  } finally {
    conn.close();
    await proxy.close();
  }
});
