// Benchmark of MIC:
//   - planner time for 10,000 bound pods / 1,000 bindings / 500 nodes (pure, in process): first plan
//     (everything to create) and steady state (everything Assigned)
//   - pod created -> AzureAssignedIdentity Assigned, with the emulator's LRO at 0, MIC as a real process:
//     a pod needing a new identity on its scale set (one GET + PATCH), and one whose identity is already there
//   - ARM calls against the minimum for those scenarios and for a burst over 4 scale sets
//   - MIC's RSS with 10,000 bound pods (all Assigned), from /proc
// Run: deno task bench mic [--pods=10000] [--latency=30]

import { normalizeAzureIdentity, normalizeAzureIdentityBinding } from "../../lib/api/normalize.ts";
import { API_VERSION, type AzureAssignedIdentity } from "../../lib/api/types.ts";
import { parseProviderId } from "../../lib/azure/provider_id.ts";
import { loadKubeConnection } from "../../lib/kube/config.ts";
import { Informer } from "../../lib/kube/informer.ts";
import { KubeClient, Resources } from "../../lib/kube/rest.ts";
import type { KubeObject } from "../../lib/kube/types.ts";
import { createLogger } from "../../lib/log.ts";
import { MIC_ENTRYPOINT, MIC_PERMISSIONS } from "../../mic/permissions.ts";
import type { BoundPod, ObservedState } from "../../mic/plan_types.ts";
import { plan } from "../../mic/planner.ts";
import { installCrds, startControlPlane } from "../sandbox/control_plane.ts";
import { startAzureEmulator } from "../sandbox/azure/emulator.ts";

function arg(name: string, fallback: number): number {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split("=")[1]) : fallback;
}
const PODS = arg("pods", 10_000);
const LATENCY = arg("latency", 30);
const PROBE_PORT = arg("probe-port", 18_931);
const root = new URL("../../", import.meta.url).pathname;
const rows: [string, string, string][] = [];
const row = (what: string, value: string, target = "") => {
  rows.push([what, value, target]);
  console.error(`  ${what}: ${value}`);
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};

// ---- 1. planner -------------------------------------------------------------------------------------
function plannerBench(): void {
  console.error("planner: 10,000 pods / 1,000 bindings / 500 nodes");
  const rid = (i: number) =>
    `/subscriptions/s/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id${i}`;
  const identities = Array.from({ length: 1000 }, (_, i) =>
    normalizeAzureIdentity({
      apiVersion: API_VERSION,
      kind: "AzureIdentity",
      metadata: { name: `id${i}`, namespace: `ns${i % 10}`, uid: `u${i}`, resourceVersion: "1" },
      spec: { type: 0, resourceID: rid(i), clientID: crypto.randomUUID() },
    }));
  const bindings = Array.from({ length: 1000 }, (_, i) =>
    normalizeAzureIdentityBinding({
      apiVersion: API_VERSION,
      kind: "AzureIdentityBinding",
      metadata: { name: `b${i}`, namespace: `ns${i % 10}`, uid: `ub${i}`, resourceVersion: "1" },
      spec: { azureIdentity: `id${i}`, selector: `sel${i}` },
    }));
  const nodes = new Map(Array.from({ length: 500 }, (_, n) => [
    `node${n}`,
    parseProviderId(
      `azure:///subscriptions/s/resourceGroups/mc/providers/Microsoft.Compute/virtualMachineScaleSets/pool${
        Math.floor(n / 20)
      }/virtualMachines/${n % 20}`,
    ),
  ]));
  const pods: BoundPod[] = Array.from({ length: 10_000 }, (_, i) => ({
    name: `pod${i}`,
    namespace: `ns${i % 10}`,
    nodeName: `node${i % 500}`,
    labels: { aadpodidbinding: `sel${i % 1000}` },
  }));
  const state: ObservedState = { pods, nodes, identities, bindings, assigned: [] };
  const opts = { forceNamespaced: false, immutableClientIds: [] };
  const time = (s: ObservedState) => {
    const runs: number[] = [];
    let last = plan(s, opts);
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      last = plan(s, opts);
      runs.push(performance.now() - t0);
    }
    return { ms: median(runs), plan: last };
  };
  const cold = time(state);
  const assigned: AzureAssignedIdentity[] = cold.plan.create.map((a, i) => ({
    ...a,
    metadata: { ...a.metadata, resourceVersion: String(i + 10), uid: `a${i}` },
    status: { status: "Assigned", availableReplicas: 1 },
  }));
  const steady = time({ ...state, assigned });
  row("planner, first plan (10,000 to create, 25 scale sets)", `${cold.ms.toFixed(1)} ms`, "< 100 ms");
  row("planner, steady state (10,000 Assigned, nothing to do)", `${steady.ms.toFixed(1)} ms`, "< 100 ms");
  if (steady.plan.create.length || steady.plan.targets.length) throw new Error("steady plan is not empty");
}

// ---- 2-4. MIC as a process --------------------------------------------------------------------------
async function liveBench(): Promise<void> {
  console.error("starting a control plane and the Azure emulator (LRO 0)");
  const cp = await startControlPlane();
  const emu = await startAzureEmulator({ lroDurationMs: 0, computeThrottle: false });
  const dir = await Deno.makeTempDir({ prefix: "mic-bench-" });
  const ctrl = new AbortController();
  let mic: Deno.ChildProcess | undefined;
  try {
    await installCrds(cp);
    const conn = await loadKubeConnection({ kubeconfigPath: cp.kubeconfigPath });
    const client = new KubeClient(conn, { userAgent: "mic-bench" });
    const sp = emu.registerServicePrincipal({ displayName: "mic" });
    await Deno.writeTextFile(
      `${dir}/cloud.json`,
      JSON.stringify({
        name: "AzureStackCloud",
        resourceManagerEndpoint: emu.armEndpoint,
        activeDirectoryEndpoint: emu.authorityHost,
      }),
    );
    await Deno.writeTextFile(
      `${dir}/azure.json`,
      JSON.stringify({
        cloud: "AzureStackCloud",
        tenantId: sp.tenantId,
        subscriptionId: emu.subscriptionId,
        aadClientId: sp.clientId,
        aadClientSecret: sp.secret,
      }),
    );
    const ns = "bench";
    await client.create(Resources.namespaces, { metadata: { name: ns } } as KubeObject);
    const sets = [0, 1, 2, 3].map((i) => emu.addVmss({ resourceGroup: "mc", name: `pool${i}` }));
    for (let n = 0; n < 20; n++) {
      await client.create(Resources.nodes, {
        metadata: { name: `node${n}` },
        spec: { providerID: `azure://${sets[Math.floor(n / 5)].id}/virtualMachines/${n % 5}` },
      } as KubeObject);
    }
    const identity = async (name: string, selector: string) => {
      const u = emu.addUserAssignedIdentity({ resourceGroup: "ids", name });
      await client.create(Resources.azureIdentities, {
        apiVersion: API_VERSION,
        kind: "AzureIdentity",
        metadata: { name, namespace: ns },
        spec: { type: 0, resourceID: u.id, clientID: u.clientId },
      } as KubeObject);
      await client.create(Resources.azureIdentityBindings, {
        apiVersion: API_VERSION,
        kind: "AzureIdentityBinding",
        metadata: { name: `b-${name}`, namespace: ns },
        spec: { azureIdentity: name, selector },
      } as KubeObject);
    };
    const assignedAt = new Map<string, number>();
    const aais = new Informer<KubeObject & { status?: { status?: string } }>({
      client,
      resource: Resources.azureAssignedIdentities,
      log: createLogger({ level: "error" }),
    });
    const seen = (o: KubeObject & { status?: { status?: string } }) => {
      if (o.status?.status === "Assigned" && !assignedAt.has(o.metadata.name!)) {
        assignedAt.set(o.metadata.name!, performance.now());
      }
    };
    aais.addHandler({ onAdd: seen, onUpdate: (_, o) => seen(o) });
    aais.start(ctrl.signal);
    await aais.synced;
    const pod = (name: string, node: number, selector: string) =>
      client.create(Resources.pods, {
        metadata: { name, namespace: ns, labels: { aadpodidbinding: selector } },
        spec: { nodeName: `node${node}`, containers: [{ name: "app", image: "registry.invalid/app:1" }] },
      } as KubeObject);
    const waitAssigned = async (names: string[], timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (!names.every((n) => assignedAt.has(n))) {
        if (Date.now() > deadline) {
          throw new Error(`timed out: ${names.filter((n) => !assignedAt.has(n)).length} left`);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    };

    for (let i = 0; i < LATENCY; i++) await identity(`lat${i}`, `lat${i}`);
    mic = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...MIC_PERMISSIONS,
        `${root}${MIC_ENTRYPOINT}`,
        `--kubeconfig=${cp.kubeconfigPath}`,
        `--cloudconfig=${dir}/azure.json`,
        `--leader-election-namespace=${ns}`,
        `--http-probe-port=${PROBE_PORT}`,
        `--prometheus-port=${PROBE_PORT}`,
        "--probe-address=127.0.0.1",
      ],
      env: {
        NODE_EXTRA_CA_CERTS: emu.caCertPath,
        AZURE_ENVIRONMENT_FILEPATH: `${dir}/cloud.json`,
        MIC_POD_NAMESPACE: ns,
      },
      stdout: "null",
      stderr: "null",
    }).spawn();
    const rss = async () => {
      const status = await Deno.readTextFile(`/proc/${mic!.pid}/status`);
      return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
    };
    const heap = async () => {
      const text = await (await fetch(`http://127.0.0.1:${PROBE_PORT}/metrics`)).text();
      return Number(/mic_memory_bytes\{kind="heap_used"\} (\S+)/.exec(text)![1]) / 2 ** 20;
    };
    // Leading once the lease names it: wait for the first assignment of a throwaway pod.
    await identity("warm", "warm");
    await pod("warm", 0, "warm");
    await waitAssigned([`warm-${ns}-warm`], 60_000);
    const idleRss = await rss();

    console.error(
      `latency: ${LATENCY} pods each needing a new identity, then ${LATENCY} whose identity is there`,
    );
    const armLat: number[] = [];
    const patchesBefore = emu.requests.count({ route: "vmss.patch" });
    for (let i = 0; i < LATENCY; i++) {
      const t0 = performance.now();
      await pod(`lat${i}`, 5, `lat${i}`);
      await waitAssigned([`lat${i}-${ns}-lat${i}`], 30_000);
      armLat.push(assignedAt.get(`lat${i}-${ns}-lat${i}`)! - t0);
    }
    const latPatches = emu.requests.count({ route: "vmss.patch" }) - patchesBefore;
    const freeLat: number[] = [];
    const before = emu.requests.count({ service: "arm" });
    for (let i = 0; i < LATENCY; i++) {
      const t0 = performance.now();
      await pod(`free${i}`, 6, "lat0");
      await waitAssigned([`free${i}-${ns}-lat0`], 30_000);
      freeLat.push(assignedAt.get(`free${i}-${ns}-lat0`)! - t0);
    }
    const freeCalls = emu.requests.count({ service: "arm" }) - before;
    row(
      "pod -> Assigned, new identity on its scale set (median / p99)",
      `${median(armLat).toFixed(0)} / ${pct(armLat, 0.99).toFixed(0)} ms`,
      "< 1 s",
    );
    row(
      "pod -> Assigned, identity already on the scale set (median / p99)",
      `${median(freeLat).toFixed(0)} / ${pct(freeLat, 0.99).toFixed(0)} ms`,
      "< 1 s",
    );
    row(`ARM PATCHes for ${LATENCY} pods each with a new identity`, `${latPatches}`, `minimum ${LATENCY}`);
    row(`ARM calls for ${LATENCY} pods whose identity is already there`, `${freeCalls}`, "minimum 0");

    console.error(`burst: 200 pods over 20 nodes / 4 scale sets, 4 new identities`);
    for (let i = 0; i < 4; i++) await identity(`burst${i}`, `burst${i}`);
    const burstBefore = emu.requests.list({ service: "arm" }).length;
    const names: string[] = [];
    await pool(200, 20, async (i) => {
      const sel = `burst${Math.floor(i / 20) % 4}`;
      await pod(`burst-p${i}`, i % 20, sel);
      names.push(`burst-p${i}-${ns}-${sel}`);
    });
    await waitAssigned(names, 120_000);
    const burstCalls = emu.requests.list({ service: "arm" }).slice(burstBefore);
    const count = (route: string) => burstCalls.filter((r) => r.route === route).length;
    row(
      "ARM calls for the burst (PATCH / GET / LRO polls)",
      `${count("vmss.patch")} / ${count("vmss.get")} / ${count("operation.get")}`,
      "minimum 4 PATCHes",
    );

    console.error(`RSS: ${PODS} bound pods`);
    const bulk: string[] = [];
    const t0 = performance.now();
    await pool(PODS, 32, async (i) => {
      await pod(`bulk${i}`, i % 20, "lat0");
      bulk.push(`bulk${i}-${ns}-lat0`);
    });
    await waitAssigned(bulk, 900_000);
    const bulkSeconds = (performance.now() - t0) / 1000;
    const total = PODS + 2 * LATENCY + 201;
    row("MIC RSS, idle (a handful of pods)", `${idleRss.toFixed(0)} MiB`);
    const memory = async () => `${(await rss()).toFixed(0)} / ${(await heap()).toFixed(0)} MiB`;
    await new Promise((r) => setTimeout(r, 3_000));
    row(`MIC RSS / V8 heap used, ${total} pods Assigned, 3 s later`, await memory(), "< 200 MB");
    // Each request's 30 s timeout keeps its signal alive until it fires; V8 then collects lazily.
    await new Promise((r) => setTimeout(r, 40_000));
    row(`MIC RSS / V8 heap used, ${total} pods Assigned, 43 s later`, await memory(), "< 200 MB");
    row(`${PODS} pods created and all Assigned in`, `${bulkSeconds.toFixed(0)} s`);
    client.conn.close();
  } finally {
    ctrl.abort();
    try {
      mic?.kill("SIGTERM");
      await mic?.status;
    } catch {
      // already gone
    }
    await emu.stop();
    await cp.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function pool(n: number, concurrency: number, job: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await job(next++);
  }));
}

plannerBench();
await liveBench();
const w = [0, 1, 2].map((c) =>
  Math.max(...rows.map((r) => r[c].length), ["measure", "value", "target"][c].length)
);
const line = (r: string[]) => `| ${r.map((x, i) => x.padEnd(w[i])).join(" | ")} |`;
console.log(line(["measure", "value", "target"]));
console.log(`|${w.map((n) => "-".repeat(n + 2)).join("|")}|`);
for (const r of rows) console.log(line(r));
