// Benchmark of MIC:
//   - planner time for 10,000 bound pods / 1,000 bindings / 500 nodes (pure, in process): first plan
//     (everything to create) and steady state (everything Assigned)
//   - pod created -> AzureAssignedIdentity Assigned, with the emulator's LRO at 0, MIC as a real process:
//     a pod needing a new identity on its scale set (one GET + PATCH), and one whose identity is already there
//   - ARM calls against the minimum for those scenarios and for a burst over 4 scale sets
//   - MIC's RSS with 10,000 bound pods (all Assigned), from /proc
//   - MIC's RSS with 200 pods on 20 nodes (after the burst)
//   - LRO polls per PATCH when Compute's operations take 2 s, without and with a Retry-After header
// Run: deno task bench mic [--pods=10000] [--latency=30] [--lro-ms=2000] [--lro-only | --no-lro]
//        [--lro-latency=0,100]
//        [--mic-v8-flags=--max-semi-space-size=4,...|none]

import { normalizeAzureIdentity, normalizeAzureIdentityBinding } from "../../lib/api/normalize.ts";
import { API_VERSION, type AzureAssignedIdentity } from "../../lib/api/types.ts";
import { parseProviderId } from "../../lib/azure/provider_id.ts";
import type { BoundPod, ObservedState } from "../../mic/plan_types.ts";
import { plan } from "../../mic/planner.ts";
import { type MicEnv, NS, startMicEnv } from "./lib/mic_env.ts";

function arg(name: string, fallback: number): number {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split("=")[1]) : fallback;
}
const PODS = arg("pods", 10_000);
const LATENCY = arg("latency", 30);
const PROBE_PORT = arg("probe-port", 18_931);
const LRO_MS = arg("lro-ms", 2000);
const LRO_ONLY = Deno.args.includes("--lro-only");
/** `--lro-latency=0,100`: pod -> Assigned at these LRO durations (after the LRO step). */
const LRO_LATENCY = (Deno.args.find((a) => a.startsWith("--lro-latency="))?.split("=")[1] ?? "")
  .split(",").filter((x) => x !== "").map(Number);
const NO_LRO = Deno.args.includes("--no-lro");
/** MIC's V8 flags: default the shipped ones (mic/permissions.ts); "none" = no V8 flags. */
const MIC_V8 = Deno.args.find((a) => a.startsWith("--mic-v8-flags="))?.slice("--mic-v8-flags=".length);
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
async function latencyRows(env: MicEnv): Promise<void> {
  console.error(
    `latency: ${LATENCY} pods each needing a new identity, then ${LATENCY} whose identity is there`,
  );
  for (let i = 0; i < LATENCY; i++) await env.identity(`lat${i}`, `lat${i}`);
  const armLat: number[] = [];
  const patchesBefore = env.emu.requests.count({ route: "vmss.patch" });
  for (let i = 0; i < LATENCY; i++) {
    const t0 = performance.now();
    await env.pod(`lat${i}`, 5, `lat${i}`);
    await env.waitAssigned([`lat${i}-${NS}-lat${i}`], 30_000);
    armLat.push(env.assignedAt.get(`lat${i}-${NS}-lat${i}`)! - t0);
  }
  const latPatches = env.emu.requests.count({ route: "vmss.patch" }) - patchesBefore;
  const freeLat: number[] = [];
  const before = env.emu.requests.count({ service: "arm" });
  for (let i = 0; i < LATENCY; i++) {
    const t0 = performance.now();
    await env.pod(`free${i}`, 6, "lat0");
    await env.waitAssigned([`free${i}-${NS}-lat0`], 30_000);
    freeLat.push(env.assignedAt.get(`free${i}-${NS}-lat0`)! - t0);
  }
  const freeCalls = env.emu.requests.count({ service: "arm" }) - before;
  const ms = (xs: number[]) => `${median(xs).toFixed(0)} / ${pct(xs, 0.99).toFixed(0)} ms`;
  row("pod -> Assigned, new identity on its scale set (median / p99)", ms(armLat), "< 1 s");
  row("pod -> Assigned, identity already on the scale set (median / p99)", ms(freeLat), "< 1 s");
  row(`ARM PATCHes for ${LATENCY} pods each with a new identity`, `${latPatches}`, `minimum ${LATENCY}`);
  row(`ARM calls for ${LATENCY} pods whose identity is already there`, `${freeCalls}`, "minimum 0");
}

async function burstRows(env: MicEnv): Promise<void> {
  console.error(`burst: 200 pods over 20 nodes / 4 scale sets, 4 new identities`);
  for (let i = 0; i < 4; i++) await env.identity(`burst${i}`, `burst${i}`);
  const burstBefore = env.emu.requests.list({ service: "arm" }).length;
  const names: string[] = [];
  await pool(200, 20, async (i) => {
    const sel = `burst${Math.floor(i / 20) % 4}`;
    await env.pod(`burst-p${i}`, i % 20, sel);
    names.push(`burst-p${i}-${NS}-${sel}`);
  });
  await env.waitAssigned(names, 120_000);
  const burstCalls = env.emu.requests.list({ service: "arm" }).slice(burstBefore);
  const count = (route: string) => burstCalls.filter((r) => r.route === route).length;
  row(
    "ARM calls for the burst (PATCH / GET / LRO polls)",
    `${count("vmss.patch")} / ${count("vmss.get")} / ${count("operation.get")}`,
    "minimum 4 PATCHes",
  );
  await new Promise((r) => setTimeout(r, 3_000));
  row("MIC RSS / V8 heap used, 200 pods on 20 nodes Assigned, 3 s later", await memory(env), "<= 80 MiB");
}

const memory = async (env: MicEnv) => {
  const { anon, file } = await env.rssParts();
  return `${(await env.rss()).toFixed(0)} / ${(await env.heap()).toFixed(0)} MiB (anon ${
    anon.toFixed(0)
  }, file ${file.toFixed(0)})`;
};

async function liveBench(): Promise<void> {
  console.error("starting a control plane and the Azure emulator (LRO 0)");
  const env = await startMicEnv({ lroDurationMs: 0, probePort: PROBE_PORT, v8Flags: MIC_V8 });
  try {
    const idleMemory = await memory(env);
    await latencyRows(env);
    await burstRows(env);
    console.error(`RSS: ${PODS} bound pods`);
    const bulk: string[] = [];
    const t0 = performance.now();
    await pool(PODS, 32, async (i) => {
      await env.pod(`bulk${i}`, i % 20, "lat0");
      bulk.push(`bulk${i}-${NS}-lat0`);
    });
    await env.waitAssigned(bulk, 900_000);
    const bulkSeconds = (performance.now() - t0) / 1000;
    const total = PODS + 2 * LATENCY + 201;
    row("MIC RSS / V8 heap used, idle (a handful of pods)", idleMemory);
    await new Promise((r) => setTimeout(r, 3_000));
    row(`MIC RSS / V8 heap used, ${total} pods Assigned, 3 s later`, await memory(env), "<= 150 MiB");
    // Each request's 30 s timeout keeps its signal alive until it fires; V8 then collects lazily.
    await new Promise((r) => setTimeout(r, 40_000));
    row(`MIC RSS / V8 heap used, ${total} pods Assigned, 43 s later`, await memory(env), "<= 150 MiB");
    row(`${PODS} pods created and all Assigned in`, `${bulkSeconds.toFixed(0)} s`);
  } finally {
    await env.stop();
  }
}

// ---- 5. LRO polling at 2 s operations ---------------------------------------------------------------
/** 4 pods, each needing a new identity on its own scale set: 4 PATCHes whose operations take LRO_MS. */
async function lroBench(retryAfterSeconds: number | undefined): Promise<void> {
  const how = retryAfterSeconds === undefined ? "no Retry-After" : `Retry-After: ${retryAfterSeconds}`;
  console.error(`LRO: 4 PATCHes of ${LRO_MS} ms operations (${how})`);
  const env = await startMicEnv({
    lroDurationMs: LRO_MS,
    lroRetryAfterSeconds: retryAfterSeconds,
    probePort: PROBE_PORT,
    v8Flags: MIC_V8,
  });
  try {
    const before = env.emu.requests.list({ service: "arm" }).length;
    // The environment's warm-up pod made the first PATCH, before MIC knew how long operations take.
    const coldPolls = env.emu.requests.count({ route: "operation.get" });
    const names: string[] = [];
    for (let i = 0; i < 4; i++) {
      await env.identity(`lro${i}`, `lro${i}`);
      await env.pod(`lro${i}`, 5 * i + 1, `lro${i}`);
      names.push(`lro${i}-${NS}-lro${i}`);
    }
    await env.waitAssigned(names, 60_000);
    const calls = env.emu.requests.list({ service: "arm" }).slice(before);
    const patches = calls.filter((r) => r.route === "vmss.patch").length;
    const polls = calls.filter((r) => r.route === "operation.get").length;
    row(
      `LRO polls for ${patches} PATCHes of ${LRO_MS / 1000} s operations (${how})`,
      `${polls} (${(polls / patches).toFixed(1)} per PATCH); warm-up PATCH: ${coldPolls}`,
      "<= 2 per PATCH",
    );
  } finally {
    await env.stop();
  }
}

/** pod -> Assigned, one pod at a time each needing a new identity, with Compute's operations at `lroMs`. */
async function lroLatency(lroMs: number): Promise<void> {
  console.error(`LRO latency: ${LATENCY} pods one after another, operations of ${lroMs} ms`);
  const env = await startMicEnv({ lroDurationMs: lroMs, probePort: PROBE_PORT, v8Flags: MIC_V8 });
  try {
    const lat: number[] = [];
    for (let i = 0; i < LATENCY; i++) {
      await env.identity(`ll${i}`, `ll${i}`);
      const t0 = performance.now();
      await env.pod(`ll${i}`, 5, `ll${i}`);
      await env.waitAssigned([`ll${i}-${NS}-ll${i}`], 30_000);
      lat.push(env.assignedAt.get(`ll${i}-${NS}-ll${i}`)! - t0);
    }
    const polls = env.emu.requests.count({ route: "operation.get" });
    row(
      `pod -> Assigned, new identity, LRO ${lroMs} ms (median / p99; polls)`,
      `${median(lat).toFixed(0)} / ${pct(lat, 0.99).toFixed(0)} ms; ${polls}`,
    );
  } finally {
    await env.stop();
  }
}

async function pool(n: number, concurrency: number, job: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await job(next++);
  }));
}

plannerBench();
if (!LRO_ONLY) await liveBench();
if (!NO_LRO) {
  await lroBench(undefined);
  await lroBench(1);
}
for (const ms of LRO_LATENCY) await lroLatency(ms);
const w = [0, 1, 2].map((c) =>
  Math.max(...rows.map((r) => r[c].length), ["measure", "value", "target"][c].length)
);
const line = (r: string[]) => `| ${r.map((x, i) => x.padEnd(w[i])).join(" | ")} |`;
console.log(line(["measure", "value", "target"]));
console.log(`|${w.map((n) => "-".repeat(n + 2)).join("|")}|`);
for (const r of rows) console.log(line(r));
