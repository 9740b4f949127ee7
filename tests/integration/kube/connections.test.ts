// One TLS connection per process: informers started together (as NMI and MIC start theirs) must share one
// HTTP/2 connection instead of each opening its own, since every handshake is a client-certificate check on
// the apiserver. Counted with `ss` on this process's own sockets to the apiserver's port.

import assert from "node:assert/strict";
import { sharedCluster } from "../../support/cluster.ts";
import { loadKubeConnection } from "../../../lib/kube/config.ts";
import { Informer } from "../../../lib/kube/informer.ts";
import { KubeClient, Resources } from "../../../lib/kube/rest.ts";
import { memoryLogger } from "../../../lib/log.ts";

async function ownConnections(port: string): Promise<number> {
  const out = await new Deno.Command("ss", {
    args: ["-tnpH", "state", "established", `( dport = :${port} )`],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  return text.split("\n").filter((l) => l.includes(`pid=${Deno.pid},`)).length;
}

Deno.test("informers started together share one connection to the apiserver", async () => {
  const cluster = await sharedCluster();
  // A connection of its own, so no earlier request in this process has opened it yet.
  const conn = await loadKubeConnection({ kubeconfigPath: cluster.kubeconfigPath });
  const client = new KubeClient(conn, { userAgent: "kube-connections-test" });
  const port = new URL(conn.server).port;
  const ctrl = new AbortController();
  const informers = Array.from({ length: 30 }, (_, i) =>
    new Informer({
      client,
      resource: i % 2 ? Resources.pods : Resources.configMaps,
      fieldSelector: "metadata.name=none",
      log: memoryLogger(),
    }));
  let most = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      most = Math.max(most, await ownConnections(port));
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const runs = informers.map((i) => i.start(ctrl.signal));
  try {
    await Promise.all(informers.map((i) => i.synced));
    most = Math.max(most, await ownConnections(port));
    assert.ok(most >= 1, "ss saw this process's connection");
    assert.ok(most <= 2, `${most} connections for 30 informers`);
  } finally {
    watching = false;
    await watcher;
    ctrl.abort();
    await Promise.all(runs);
    conn.close();
  }
});
