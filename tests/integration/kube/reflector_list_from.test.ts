// Where the reflector's LISTs come from: the first from the watch cache at "any version" but never older
// than the server's resourceVersion when the informer started, a re-list at "not older than" what the
// cache holds, a quorum read when that version is refused, and never a list older than the cache (a
// lagging server's answer is refused, not applied). The lagging server is the real apiserver's own earlier
// answer, replayed by a client wrapper; everything else is the real apiserver.

import assert from "node:assert/strict";
import { sharedCluster } from "../../support/cluster.ts";
import { Informer, type InformerOptions } from "../../../lib/kube/informer.ts";
import {
  KubeApiError,
  KubeClient,
  Resources,
  type ResourceType,
  type WireFormat,
} from "../../../lib/kube/rest.ts";
import type { ListOptions, WatchOptions } from "../../../lib/kube/request_options.ts";
import type { KubeList, KubeObject } from "../../../lib/kube/types.ts";
import { memoryLogger } from "../../../lib/log.ts";
import { clientFor, journal, journalProblems, sameSnapshot, snapshot, waitUntil } from "./helpers.ts";

type ConfigMap = KubeObject & { data?: Record<string, string> };
const rt = Resources.configMaps;

/** The real apiserver, except for the answers a test scripts: a stale list, a refused version, a 410 watch. */
class ScriptedClient extends KubeClient {
  calls: string[] = [];
  /** Answers for the next LIST calls, in order (undefined: ask the apiserver). */
  listScript: (((opts: ListOptions) => KubeList<KubeObject> | Promise<KubeList<KubeObject>>) | undefined)[] =
    [];
  failNextWatch = false;

  constructor(base: KubeClient) {
    super(base.conn);
  }

  override list<T extends KubeObject>(rt: ResourceType, opts: ListOptions = {}, signal?: AbortSignal) {
    this.calls.push(`list rv=${opts.resourceVersion ?? "-"} match=${opts.resourceVersionMatch ?? "-"}`);
    const scripted = this.listScript.shift();
    if (scripted) return Promise.resolve(scripted(opts)) as Promise<KubeList<T>>;
    return super.list<T>(rt, opts, signal);
  }

  override watch(rt: ResourceType, opts: WatchOptions, signal?: AbortSignal, format?: WireFormat) {
    if (this.failNextWatch) {
      this.failNextWatch = false;
      return Promise.reject(new KubeApiError(410, "Expired", "too old resource version"));
    }
    return super.watch(rt, opts, signal, format);
  }
}

async function seeded(client: KubeClient, namespace: string): Promise<KubeList<ConfigMap>> {
  for (let i = 0; i < 4; i++) {
    await client.create<ConfigMap>(rt, { metadata: { name: `cm-${i}`, namespace }, data: { v: "0" } });
  }
  return client.list<ConfigMap>(rt, { namespace });
}

/** Deletes cm-0 and updates cm-1: what a stale answer would undo. */
async function moveOn(client: KubeClient, namespace: string): Promise<void> {
  await client.delete(rt, "cm-0", { namespace });
  await client.patch(rt, "cm-1", "merge", { data: { v: "1" } }, { namespace });
}

/** An informer on a ScriptedClient with a handler journal, started; `stop` ends it. */
function started(
  direct: KubeClient,
  namespace: string,
  opts: Partial<InformerOptions<ConfigMap>> = {},
  firstAnswer?: ScriptedClient["listScript"][number],
) {
  const client = new ScriptedClient(direct);
  if (firstAnswer) client.listScript.push(firstAnswer);
  const log = memoryLogger();
  const informer = new Informer<ConfigMap>({ client, resource: rt, namespace, log, ...opts });
  const j = journal<ConfigMap>();
  informer.addHandler(j.handler);
  const ctrl = new AbortController();
  const run = informer.start(ctrl.signal);
  const stop = async () => {
    ctrl.abort();
    await run;
  };
  return { client, log, informer, j, stop };
}

Deno.test("reflector LISTs from the watch cache without ever moving the cache back in time", async (t) => {
  const cluster = await sharedCluster();
  const direct = await clientFor(cluster.kubeconfigPath);
  const truth = async (namespace: string) => (await direct.list<ConfigMap>(rt, { namespace })).items;
  try {
    await t.step(
      "a re-list that gets an answer older than the cache refuses it and reads the newest",
      async () => {
        const namespace = await cluster.namespace("kube-listfrom");
        const stale = await seeded(direct, namespace);
        await moveOn(direct, namespace);
        // Watches end every 2 s, so the scripted 410 comes soon.
        const { client, log, informer, j, stop } = started(direct, namespace, { watchTimeoutSeconds: 2 });
        try {
          await informer.synced;
          const held = informer.reflector.resourceVersion!;
          assert.equal(informer.store.getByName("cm-0", namespace), undefined);
          // The watch expires; the re-list is answered by a lagging server with the pre-delete state.
          client.listScript.push(() => stale);
          client.failNextWatch = true;
          await waitUntil("the re-list", () => informer.stats.lists >= 2);
          assert.equal(client.calls[0], "list rv=0 match=-");
          assert.deepEqual(client.calls.slice(1, 3), [
            `list rv=${held} match=NotOlderThan`,
            "list rv=- match=-",
          ]);
          assert.ok(BigInt(informer.reflector.resourceVersion!) >= BigInt(held));
          assert.equal(informer.store.getByName("cm-0", namespace), undefined, "cm-0 stays deleted");
          assert.equal(informer.store.getByName("cm-1", namespace)?.data?.v, "1", "cm-1 keeps its update");
          const cm0 = [...j.byUid.values()].find((es) => j.names.get(es[0].uid) === "cm-0");
          assert.equal(cm0, undefined, "no handler ever saw cm-0");
          assert.ok(log.records.some((r) => /not served, listing the newest/.test(r.msg)));
          await waitUntil(
            "cache equals the server",
            async () => sameSnapshot(snapshot(informer.store.list()), snapshot(await truth(namespace))),
          );
          assert.deepEqual(j.errors, []);
        } finally {
          await stop();
        }
      },
    );

    await t.step("a first answer that falls behind while it travels is caught up by the watch", async () => {
      const namespace = await cluster.namespace("kube-listfrom");
      await seeded(direct, namespace);
      // The real answer, overtaken by a delete and an update before it arrives: not older than the server
      // was when the informer started, so it is applied, and the watch from it replays what it missed.
      const { client, informer, j, stop } = started(direct, namespace, {}, async (opts) => {
        const answer = await direct.list<ConfigMap>(rt, opts);
        await moveOn(direct, namespace);
        return answer;
      });
      try {
        await informer.synced;
        assert.deepEqual(client.calls, ["list rv=0 match=-"]);
        assert.ok(informer.store.getByName("cm-0", namespace), "the answer still had cm-0");
        const now = await truth(namespace);
        await waitUntil(
          "cache equals the server",
          () => sameSnapshot(snapshot(informer.store.list()), snapshot(now)),
        );
        // The watch from the answer's version replayed the delete and the update as events, not a re-list.
        assert.equal(informer.stats.relists, 0);
        const deletes = [...j.byUid.values()].flat().filter((e) => e.type === "delete");
        assert.equal(deletes.length, 1);
        assert.equal(deletes[0].finalStateUnknown, false);
        assert.deepEqual(journalProblems(j.byUid, now), []);
        assert.deepEqual(j.errors, []);
      } finally {
        await stop();
      }
    });

    await t.step(
      "a first answer older than the server was when the informer started is refused for the newest",
      async () => {
        const namespace = await cluster.namespace("kube-listfrom");
        const stale = await seeded(direct, namespace);
        await moveOn(direct, namespace);
        // A watch cache lagging behind etcd: it answers "any version" with the state before the writes.
        const { client, log, informer, j, stop } = started(direct, namespace, {}, () => stale);
        try {
          await informer.synced;
          assert.deepEqual(client.calls, ["list rv=0 match=-", "list rv=- match=-"]);
          // Synced means everything: cm-0 was deleted before the informer started, so no handler saw it.
          assert.equal(informer.store.getByName("cm-0", namespace), undefined);
          assert.equal(informer.store.getByName("cm-1", namespace)?.data?.v, "1");
          assert.ok(sameSnapshot(snapshot(informer.store.list()), snapshot(await truth(namespace))));
          assert.equal([...j.names.values()].includes("cm-0"), false, "no handler ever saw cm-0");
          assert.ok(
            log.records.some((r) => /0 \(the watch cache\) not served, listing the newest/.test(r.msg)),
          );
          assert.deepEqual(j.errors, []);
        } finally {
          await stop();
        }
      },
    );

    await t.step(
      "a re-list version the apiserver refuses (410) falls back to a quorum read at once",
      async () => {
        const namespace = await cluster.namespace("kube-listfrom");
        await seeded(direct, namespace);
        const { client, informer, stop } = started(direct, namespace, {
          watchTimeoutSeconds: 2,
          backoff: { initialMs: 60_000, maxMs: 60_000 },
        });
        try {
          await informer.synced;
          client.listScript.push(() => {
            throw new KubeApiError(410, "Expired", "The resourceVersion for the provided list is too old.");
          });
          client.failNextWatch = true;
          await moveOn(direct, namespace);
          // With a 60 s backoff, only an immediate fallback gets the second LIST done in time.
          await waitUntil("the quorum re-list", () => informer.stats.lists >= 2, 10_000);
          assert.match(client.calls[1], /^list rv=\d+ match=NotOlderThan$/);
          assert.equal(client.calls[2], "list rv=- match=-");
          await waitUntil(
            "cache equals the server",
            async () => sameSnapshot(snapshot(informer.store.list()), snapshot(await truth(namespace))),
          );
          // After a good quorum read, the next re-list is served from the watch cache again. (An event in
          // between, or the reflector would take the next 410 for a second one in a row and back off.)
          await direct.create<ConfigMap>(rt, { metadata: { name: "poke", namespace } });
          await waitUntil("the poke event", () => informer.store.getByName("poke", namespace) !== undefined);
          client.failNextWatch = true;
          await waitUntil("the third list", () => informer.stats.lists >= 3, 10_000);
          assert.match(client.calls[3], /match=NotOlderThan$/);
        } finally {
          await stop();
        }
      },
    );
  } finally {
    direct.conn.close();
  }
});
