// 2,000 interleaved creates, updates and deletes while an informer watches: at the end the cache equals a
// fresh LIST and every object's handler journal is exactly the sequence of versions the writes produced.

import assert from "node:assert/strict";
import { sharedCluster } from "../../support/cluster.ts";
import { Informer } from "../../../lib/kube/informer.ts";
import { KubeApiError, Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { memoryLogger } from "../../../lib/log.ts";
import { clientFor, journal, rng, sameSnapshot, snapshot, waitUntil } from "./helpers.ts";

type ConfigMap = KubeObject & { data?: Record<string, string> };

Deno.test("reflector: 2,000 interleaved writes leave the cache equal to a LIST, with exact per-object sequences", async () => {
  const cluster = await sharedCluster();
  const namespace = await cluster.namespace("kube-churn");
  const client = await clientFor(cluster.kubeconfigPath);
  const ctrl = new AbortController();
  const log = memoryLogger();
  // Small pages so the first LIST really paginates over the objects created up front.
  const informer = new Informer<ConfigMap>({
    client,
    resource: Resources.configMaps,
    namespace,
    pageSize: 7,
    log,
  });
  const j = journal<ConfigMap>();
  informer.addHandler(j.handler);
  try {
    const random = rng(20261129);
    const rt = Resources.configMaps;
    // What the writes produced, per uid: the resourceVersion of each create/update in order, and whether deleted.
    const expected = new Map<string, { rvs: string[]; deleted: boolean }>();
    const live = new Map<string, string>(); // name -> uid
    const busy = new Set<string>();
    const names = Array.from({ length: 120 }, (_, i) => `cm-${i}`);
    for (const name of names.slice(0, 40)) {
      const o = await client.create<ConfigMap>(rt, { metadata: { name, namespace }, data: { v: "0" } });
      live.set(name, o.metadata.uid!);
      expected.set(o.metadata.uid!, { rvs: [o.metadata.resourceVersion!], deleted: false });
    }
    const run = informer.start(ctrl.signal);
    await informer.synced;
    assert.ok(informer.stats.lists === 1 && informer.store.size === 40);

    let ops = 0;
    const total = 2000;
    const worker = async () => {
      while (ops < total) {
        const name = names[Math.floor(random() * names.length)];
        if (busy.has(name)) {
          await Promise.resolve();
          continue;
        }
        busy.add(name);
        ops++;
        try {
          const uid = live.get(name);
          const roll = random();
          if (!uid) {
            const o = await client.create<ConfigMap>(rt, {
              metadata: { name, namespace },
              data: { v: String(ops) },
            });
            live.set(name, o.metadata.uid!);
            expected.set(o.metadata.uid!, { rvs: [o.metadata.resourceVersion!], deleted: false });
          } else if (roll < 0.65) {
            const o = await client.patch<ConfigMap>(rt, name, "merge", { data: { v: String(ops) } }, {
              namespace,
            });
            expected.get(uid)!.rvs.push(o.metadata.resourceVersion!);
          } else {
            await client.delete(rt, name, { namespace });
            live.delete(name);
            expected.get(uid)!.deleted = true;
          }
        } finally {
          busy.delete(name);
        }
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 6 }, worker));
    const writeMs = performance.now() - t0;

    const truth = snapshot((await client.listAll<ConfigMap>(rt, { namespace })).items);
    await waitUntil(
      "cache to equal a fresh LIST",
      () => sameSnapshot(snapshot(informer.store.list()), truth),
    );

    assert.deepEqual(j.errors, []);
    for (const [uid, want] of expected) {
      const seen = j.byUid.get(uid) ?? [];
      const wantTypes = [
        ...want.rvs.map((_, i) => i === 0 ? "add" : "update"),
        ...(want.deleted ? ["delete"] : []),
      ];
      assert.deepEqual(seen.map((e) => e.type), wantTypes, `handler sequence for uid ${uid}`);
      assert.deepEqual(
        seen.filter((e) => e.type !== "delete").map((e) => e.rv),
        want.rvs,
        `versions for uid ${uid}`,
      );
      assert.ok(seen.every((e) => !e.finalStateUnknown), "every delete came from the watch itself");
    }
    const ghosts = [...j.byUid.keys()].filter((uid) => !expected.has(uid));
    assert.deepEqual(ghosts, []);
    assert.equal(informer.stats.relists, 0);
    assert.deepEqual(log.records.filter((r) => r.level !== "debug").map((r) => r.msg), []);
    console.log(
      `churn: ${total} writes in ${Math.round(writeMs)} ms, ${informer.stats.events} events applied`,
    );
    ctrl.abort();
    await run;
  } catch (e) {
    if (e instanceof KubeApiError) console.error(e.status, e.reason, e.message);
    throw e;
  } finally {
    ctrl.abort();
    client.conn.close();
  }
});
