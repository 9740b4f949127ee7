// The process that holds a kubelet sandbox (`sandbox up --kubelet`): `up` starts it detached; it starts a
// real cluster (holding the machine-wide lock of node/cluster.ts while it runs), serves the emulator's admin
// API for `sandbox identity`, writes what it started to its ready file, and on SIGTERM stops it all and
// exits. One process owns everything the cluster made, so `down` stops one pid and waits for it.
//
//   deno run -A kubelet_supervisor.ts <state dir> <log dir> <nodes> <ready file>

import { type RealCluster, startRealCluster } from "./node/cluster.ts";
import { resolveNodeBinaries } from "./node/binaries.ts";
import { startAdmin } from "./azure/main.ts";
import type { NodeRecord } from "./node/node.ts";
import type { SandboxRecord } from "./sandbox_state.ts";

/** What the supervisor reports: the cluster's endpoints once it is up, or why it could not start. */
export type KubeletReady =
  | {
    ok: true;
    cluster: NonNullable<SandboxRecord["cluster"]>;
    azure: NonNullable<SandboxRecord["azure"]>;
    ctr: string;
    /** Names, containerd sockets, and what a node made (what `down` must leave none of). */
    nodes: NodeRecord[];
    /** The local images' archives (docker-archive), by reference. */
    images: Record<string, string>;
    timings: Record<string, number>;
  }
  | { ok: false; error: string };

const RESOURCE_GROUP = "MC_realnode";

async function writeReady(path: string, ready: KubeletReady): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(ready, null, 2), { mode: 0o600 });
  await Deno.rename(`${path}.tmp`, path);
}

function describe(c: RealCluster, adminUrl: string, ctr: string): KubeletReady {
  return {
    ok: true,
    cluster: {
      server: c.cp.server,
      kubeconfigPath: c.cp.kubeconfigPath,
      kubectl: c.cp.binaries.kubectl,
      dir: c.cp.dir,
    },
    azure: {
      adminUrl,
      armEndpoint: c.emu.armEndpoint,
      authorityHost: c.emu.authorityHost,
      caCertPath: c.emu.caCertPath,
      subscriptionId: c.emu.subscriptionId,
      tenantId: c.emu.tenantId,
      // Each node's own instance metadata, at the address apps use, inside that node only.
      imdsUrl: "http://169.254.169.254",
      vmssId: c.vmss.id,
      resourceGroup: RESOURCE_GROUP,
    },
    ctr,
    nodes: c.nodes,
    images: c.images.tars,
    timings: c.timings,
  };
}

async function main(args: string[]): Promise<number> {
  const [dir, logDir, nodesArg, readyPath] = args;
  const nodes = Number(nodesArg);
  if (!readyPath || ![1, 2].includes(nodes)) {
    console.error("usage: kubelet_supervisor.ts <state dir> <log dir> <1|2> <ready file>");
    return 2;
  }
  // The cluster logs its first line once it holds the machine's lock and has its binaries, before it makes
  // anything: a stop asked for until then ends at once (`down` while waiting for another cluster); after
  // it, the stop waits for the start to finish (it cannot be cut short) and then undoes it all.
  let making = false;
  const stop = Promise.withResolvers<void>();
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => making ? stop.resolve() : Deno.exit(0));
  }
  const log = (line: string) => {
    making = true;
    console.log(`[${new Date().toISOString()}] ${line}`);
  };
  let c: RealCluster;
  try {
    c = await startRealCluster({ nodes, dir, logDir, log });
  } catch (e) {
    await writeReady(readyPath, { ok: false, error: e instanceof Error ? e.message : String(e) });
    throw e;
  }
  const admin = startAdmin(c.emu);
  try {
    const ctr = `${(await resolveNodeBinaries()).containerdBinDir}/ctr`;
    await writeReady(readyPath, describe(c, `http://127.0.0.1:${admin.addr.port}`, ctr));
    log("ready");
    await stop.promise;
    log("stopping");
  } finally {
    await admin.shutdown();
    await c.stop();
  }
  log(`stopped; timings ${JSON.stringify(c.timings)}`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`kubelet supervisor: ${e instanceof Error ? e.stack ?? e.message : e}`);
    Deno.exit(1);
  }
}
