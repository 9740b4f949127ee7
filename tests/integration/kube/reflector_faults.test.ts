// Faults on a control plane of the test's own: a network partition with and without the apiserver's watch
// cache (resume vs. forced 410 and re-list), and the apiserver killed while objects change, including
// deletes made during the outage. After each, the cache must equal the server and the handlers' journals
// must tell the same story, deletes as deletes.

import assert from "node:assert/strict";
import { type ControlPlane, startControlPlane } from "../../../scripts/sandbox/control_plane.ts";
import { Informer } from "../../../lib/kube/informer.ts";
import { KubeClient, Resources, type ResourceType } from "../../../lib/kube/rest.ts";
import type { ListOptions } from "../../../lib/kube/request_options.ts";
import { Reflector } from "../../../lib/kube/reflector.ts";
import { Store } from "../../../lib/kube/store.ts";
import type { KubeList } from "../../../lib/kube/types.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { memoryLogger } from "../../../lib/log.ts";
import {
  clientFor,
  etcdDelete,
  journal,
  journalProblems,
  sameSnapshot,
  snapshot,
  TcpRelay,
  waitUntil,
} from "./helpers.ts";

type ConfigMap = KubeObject & { data?: Record<string, string> };
const rt = Resources.configMaps;

async function seed(client: KubeClient, namespace: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await client.create<ConfigMap>(rt, { metadata: { name: `cm-${i}`, namespace }, data: { v: "0" } });
  }
}

async function createNamespace(client: KubeClient, name: string): Promise<void> {
  await client.create(Resources.namespaces, { metadata: { name } });
}

/** Creates, updates and deletes a few objects: the changes a client must not miss. */
async function mutate(client: KubeClient, namespace: string, tag: string): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await client.create<ConfigMap>(rt, {
      metadata: { name: `${tag}-new-${i}`, namespace },
      data: { v: tag },
    });
  }
  for (const i of [1, 2]) await client.patch(rt, `cm-${i}`, "merge", { data: { v: tag } }, { namespace });
  await client.delete(rt, "cm-3", { namespace });
  // Same name, new object: must come out as delete + add.
  await client.delete(rt, "cm-4", { namespace });
  await client.create<ConfigMap>(rt, { metadata: { name: "cm-4", namespace }, data: { v: `${tag}-again` } });
}

function truthName(uid: string, names: Map<string, string>): string {
  return names.get(uid) ?? "";
}

async function converged(
  client: KubeClient,
  informer: Informer<ConfigMap>,
  namespace: string,
): Promise<ConfigMap[]> {
  let truth: ConfigMap[] = [];
  await waitUntil(
    "cache to converge to the server",
    async () => {
      truth = (await client.listAll<ConfigMap>(rt, { namespace })).items;
      return sameSnapshot(snapshot(informer.store.list()), snapshot(truth));
    },
    40_000,
    200,
  );
  return truth;
}

async function withPartition(cp: ControlPlane, expectRelist: boolean): Promise<void> {
  const direct = await clientFor(cp.kubeconfigPath);
  const relay = new TcpRelay(cp.server);
  const viaRelay = await clientFor(cp.kubeconfigPath, relay.url);
  const namespace = `partition-${expectRelist ? "nocache" : "cache"}`;
  const ctrl = new AbortController();
  const log = memoryLogger();
  const informer = new Informer<ConfigMap>({
    client: viaRelay,
    resource: rt,
    namespace,
    log,
    backoff: { initialMs: 300, maxMs: 600, jitter: 0 },
  });
  const j = journal<ConfigMap>();
  informer.addHandler(j.handler);
  try {
    await createNamespace(direct, namespace);
    await seed(direct, namespace, 6);
    const run = informer.start(ctrl.signal);
    await informer.synced;
    relay.cut();
    // Several failed reconnects, so the log-once rule below is really exercised.
    await waitUntil("reconnects to fail during the partition", () => informer.stats.errors >= 3);
    await mutate(direct, namespace, "partition");
    await cp.compactEtcd();
    relay.restore();
    const truth = await converged(direct, informer, namespace);
    assert.deepEqual(journalProblems(j.byUid, truth), []);
    const deletes = [...j.byUid.values()].flat().filter((e) => e.type === "delete");
    assert.equal(deletes.length, 2, "cm-3 and the first cm-4");
    if (expectRelist) {
      assert.ok(informer.stats.relists >= 1, `expected a re-list, stats ${JSON.stringify(informer.stats)}`);
      assert.ok(deletes.every((d) => d.finalStateUnknown), "deletes inferred by the re-list diff");
      assert.ok(log.records.some((r) => /resourceVersion expired, re-listing/.test(r.msg)));
    } else {
      assert.equal(informer.stats.relists, 0, "the watch cache still serves the old resourceVersion");
      assert.ok(deletes.every((d) => !d.finalStateUnknown), "deletes seen as watch events");
    }
    // Each cause of the outage is logged once, however many retries it took.
    const warnings = log.records.filter((r) => r.level === "warn" || r.level === "error").map((r) => r.msg);
    assert.ok(warnings.length >= 1 && warnings.length < informer.stats.errors, warnings.join("\n"));
    assert.equal(new Set(warnings).size, warnings.length, warnings.join("\n"));
    ctrl.abort();
    await run;
  } finally {
    ctrl.abort();
    await relay.close();
    direct.conn.close();
    viaRelay.conn.close();
  }
}

Deno.test("reflector faults with the watch cache: partition resumes from the cache; apiserver kill re-lists", async (t) => {
  const cp = await startControlPlane();
  try {
    await t.step(
      "partition + compaction: the watch resumes without a re-list",
      () => withPartition(cp, false),
    );

    await t.step("apiserver killed mid-watch, deletes during the outage arrive as deletes", async () => {
      const direct = await clientFor(cp.kubeconfigPath);
      const namespace = "apiserver-kill";
      const ctrl = new AbortController();
      const log = memoryLogger();
      // A fixed, long retry delay leaves room to change things after the restart before the reflector is back.
      const informer = new Informer<ConfigMap>({
        client: direct,
        resource: rt,
        namespace,
        log,
        backoff: { initialMs: 4_000, maxMs: 4_000, jitter: 0 },
      });
      const j = journal<ConfigMap>();
      informer.addHandler(j.handler);
      try {
        await createNamespace(direct, namespace);
        await seed(direct, namespace, 10);
        const run = informer.start(ctrl.signal);
        await informer.synced;
        await direct.delete(rt, "cm-9", { namespace }); // right before the kill
        await cp.stopApiserver({ kill: true });
        // During the outage: gone from etcd with no apiserver to tell any watcher.
        assert.equal(await etcdDelete(cp.etcdEndpoint, `/registry/configmaps/${namespace}/cm-8`), 1);
        assert.equal(await etcdDelete(cp.etcdEndpoint, `/registry/configmaps/${namespace}/cm-7`), 1);
        await cp.startApiserver();
        await mutate(direct, namespace, "restart");
        await cp.compactEtcd();
        const truth = await converged(direct, informer, namespace);
        assert.deepEqual(journalProblems(j.byUid, truth), []);
        const deleted = [...j.byUid.values()].filter((es) => es.at(-1)!.type === "delete");
        assert.equal(deleted.length, 5, "cm-9, cm-8, cm-7, cm-3 and the first cm-4");
        // Nothing could have streamed the etcd-side deletes: they must come from the re-list diff.
        const outage = deleted.filter((es) => /^cm-[78]$/.test(truthName(es[0].uid, j.names)));
        assert.equal(outage.length, 2);
        assert.ok(outage.every((es) => es.at(-1)!.finalStateUnknown));
        assert.ok(informer.stats.relists >= 1, `expected a re-list, stats ${JSON.stringify(informer.stats)}`);
        ctrl.abort();
        await run;
      } finally {
        ctrl.abort();
        direct.conn.close();
      }
    });
  } finally {
    await cp.stop();
  }
});

/**
 * A client whose first paginated LIST is followed, before the next page is asked for, by a write and an
 * etcd compaction: the continue token now points at a compacted revision and the apiserver answers 410.
 */
class CompactingClient extends KubeClient {
  static #made = 0;
  calls: ListOptions[] = [];
  readonly midListName = `mid-list-${++CompactingClient.#made}`;
  #cp: ControlPlane;
  #compacted = false;

  constructor(base: KubeClient, cp: ControlPlane) {
    super(base.conn);
    this.#cp = cp;
  }

  override async list<T extends KubeObject>(
    rt: ResourceType,
    opts: ListOptions = {},
    signal?: AbortSignal,
  ): Promise<KubeList<T>> {
    this.calls.push(opts);
    const page = await super.list<T>(rt, opts, signal);
    if (page.metadata.continue && !this.#compacted) {
      this.#compacted = true;
      await this.create<ConfigMap>(rt, {
        metadata: { name: this.midListName, namespace: opts.namespace },
      });
      await this.#cp.compactEtcd();
    }
    return page;
  }
}

async function expiredContinue(cp: ControlPlane): Promise<void> {
  const direct = await clientFor(cp.kubeconfigPath);
  const namespace = "expired-continue";
  try {
    await createNamespace(direct, namespace);
    await seed(direct, namespace, 7);
    const shape = (calls: ListOptions[]) =>
      calls.map((o) => `limit=${o.limit ?? "-"} continue=${o.continue ? "y" : "-"}`);

    const forList = new CompactingClient(direct, cp);
    const all = await forList.listAll<ConfigMap>(rt, { namespace, limit: 3 });
    // Page 1, page 2 refused with 410, then one full LIST: it includes the object written mid-listing.
    assert.deepEqual(shape(forList.calls), [
      "limit=3 continue=-",
      "limit=3 continue=y",
      "limit=- continue=-",
    ]);
    assert.equal(all.items.length, 8);
    assert.ok(all.items.some((o) => o.metadata.name === forList.midListName));

    const forReflector = new CompactingClient(direct, cp);
    const store = new Store<ConfigMap>();
    const reflector = new Reflector<ConfigMap>({
      client: forReflector,
      resource: rt,
      namespace,
      store,
      pageSize: 3,
      log: memoryLogger(),
    });
    const ctrl = new AbortController();
    const run = reflector.run(ctrl.signal);
    try {
      await reflector.synced;
      assert.deepEqual(shape(forReflector.calls), [
        "limit=3 continue=-",
        "limit=3 continue=y",
        "limit=- continue=-",
      ]);
      const truth = (await direct.listAll<ConfigMap>(rt, { namespace })).items;
      assert.equal(truth.length, 9);
      assert.ok(sameSnapshot(snapshot(store.list()), snapshot(truth)));
      assert.equal(reflector.stats.lists, 1);
    } finally {
      ctrl.abort();
      await run;
    }
  } finally {
    direct.conn.close();
  }
}

Deno.test("reflector faults without the watch cache: compaction during a partition forces 410 and an exact re-list; an expired continue token falls back to one full LIST", async (t) => {
  const cp = await startControlPlane({ apiserverArgs: ["--watch-cache=false"] });
  try {
    await t.step("partition + compaction: 410 and an exact re-list", () => withPartition(cp, true));
    await t.step(
      "compaction between pages: listAll and the reflector re-list without limit",
      () => expiredContinue(cp),
    );
  } finally {
    await cp.stop();
  }
});
