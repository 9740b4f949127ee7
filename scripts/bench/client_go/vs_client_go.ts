// `deno task bench watch_loop --vs-client-go`: lib/kube and client-go v0.34.2 (at its defaults) side by side
// on one control plane. Each side runs in a fresh process per round, the two alternate (the order flips
// every round), and the table shows medians and ratios (ours / client-go):
//   - LIST + sync of every pod in the namespace into an informer's cache, and the heap that cache holds
//   - watch replay: a backlog of writes made before the round, streamed from the resourceVersion before
//     them into a cache (events/s from the first event on; both sides replay the same events)
//   - apiserver CPU (its own process_cpu_seconds_total from /metrics) while 100 informers of one node's
//     pods start, sync and follow writes to that node's pods (--churn-writes at --churn-rate per second)
// Every measured run starts right after a forced GC in the apiserver (see `collect`). `--ours-args=...`
// passes flags to our side's children: `--compression` asks for gzip as fetch does by default, `--fetch`
// sends every request through fetch instead of lib/kube's own HTTP/2 connection, `--node-http2` through
// node:http2 (node_h2.ts) with the same decoders.
// This file is also the Deno child (`--child=sync|watchers`), so both sides are measured the same way.

import process from "node:process";
import v8 from "node:v8";
import vm from "node:vm";
import { startControlPlane } from "../../sandbox/control_plane.ts";
import { loadKubeConnection } from "../../../lib/kube/config.ts";
import { Informer } from "../../../lib/kube/informer.ts";
import { isProtobuf, KubeClient, Resources } from "../../../lib/kube/rest.ts";
import { Store } from "../../../lib/kube/store.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { builtinCodec } from "../../../lib/kube/builtin_proto.ts";
import { decodeProtoWatchBatches } from "../../../lib/kube/proto_watch.ts";
import { decodeWatchBatches, type WatchEvent } from "../../../lib/kube/watch_stream.ts";
import { createLogger } from "../../../lib/log.ts";
import { parse as parseYaml } from "yaml";
import { type NodeH2Tls, nodeHttp2Transport } from "./node_h2.ts";

type Pod = KubeObject & { spec?: Record<string, unknown> };
type Result = Record<string, number>;

function arg(name: string): string | undefined {
  return Deno.args.find((x) => x.startsWith(`--${name}=`))?.split("=").slice(1).join("=");
}
const num = (name: string, fallback: number) => Number(arg(name) ?? fallback);

const codec = builtinCodec(Resources.pods)!;
const quiet = createLogger({ level: "error" });

function heapMiB(): number {
  v8.setFlagsFromString("--expose-gc");
  const gc = (globalThis as { gc?: () => void }).gc ?? (vm.runInNewContext("gc") as () => void);
  gc();
  gc();
  return Deno.memoryUsage().heapUsed / 2 ** 20;
}

// ---- Deno child: one side of one round

async function childSync(client: KubeClient, namespace: string, fromRv: string, backlog: number) {
  const out: Result = {};
  const before = heapMiB();
  const ctrl = new AbortController();
  const informer = new Informer<Pod>({ client, resource: Resources.pods, namespace, log: quiet });
  const t0 = performance.now();
  const run = informer.start(ctrl.signal);
  await informer.synced;
  out.syncMs = performance.now() - t0;
  out.pods = informer.store.size;
  out.listRequests = informer.stats.listRequests;
  // The replay comes before the heap figure: a forced V8 collection (heapMiB) leaves its young generation
  // small, and a replay right after one cost twice the CPU (54-89 ms against 31-39 ms for 5,000 events,
  // measured), an artifact of measuring that client-go's runtime.GC does not have. The replay's own store
  // is garbage by the time the heap is measured; the informer's cache is what remains.
  if (backlog > 0) await replayPhase(client, namespace, fromRv, backlog, out);
  out.heapMiB = heapMiB() - before;
  ctrl.abort();
  await run;
  console.log(JSON.stringify(out));
}

/** Streams `backlog` events from `fromRv` into a store of its own, through the reflector's decode path. */
async function replayPhase(
  client: KubeClient,
  namespace: string,
  fromRv: string,
  backlog: number,
  out: Result,
): Promise<void> {
  const store = new Store<Pod>({ log: quiet });
  const res = await client.watch(
    Resources.pods,
    { namespace, resourceVersion: fromRv, timeoutSeconds: 120 },
    undefined,
    "protobuf",
  );
  // The reflector's own decode path: protobuf frames, the events of a network chunk at a time.
  const batches: AsyncGenerator<WatchEvent<Pod>[]> = isProtobuf(res)
    ? decodeProtoWatchBatches<Pod>(res.body!, codec.decode)
    : decodeWatchBatches<Pod>(res.body!);
  let seen = 0;
  let t1 = 0;
  let cpu1 = process.cpuUsage();
  replay: for await (const batch of batches) {
    if (seen === 0) [t1, cpu1] = [performance.now(), process.cpuUsage()];
    for (const ev of batch) {
      if (ev.type === "ADDED" || ev.type === "MODIFIED") store.upsert(ev.object);
      if (ev.type === "ERROR") throw new Error(`watch error: ${ev.object.message}`);
      if (++seen >= backlog) break replay;
    }
  }
  out.replayEvents = seen;
  out.replayPerSec = (seen - 1) / ((performance.now() - t1) / 1000);
  const cpu = process.cpuUsage(cpu1);
  out.replayCpuMs = (cpu.user + cpu.system) / 1000;
}

async function childWatchers(client: KubeClient, count: number, node: string) {
  const ctrl = new AbortController();
  const encoding = arg("encoding") === "json" ? "json" : "protobuf";
  if (Deno.args.includes("--warm")) await client.request("GET", "/version");
  const t0 = performance.now();
  const informers = Array.from(
    { length: count },
    () =>
      new Informer<Pod>({
        client,
        resource: Resources.pods,
        fieldSelector: `spec.nodeName=${node}`,
        encoding,
        log: quiet,
      }),
  );
  const runs = informers.map((i) => i.start(ctrl.signal));
  await Promise.all(informers.map((i) => i.synced));
  console.log(JSON.stringify({ synced: performance.now() - t0 }));
  // Keep watching until the parent closes stdin.
  for await (const _ of Deno.stdin.readable) { /* drain */ }
  const total: Record<string, number> = {};
  for (const i of informers) {
    for (const [k, v] of Object.entries(i.stats)) total[k] = (total[k] ?? 0) + v;
  }
  const statsFile = arg("stats-file");
  if (statsFile) await Deno.writeTextFile(statsFile, JSON.stringify(total));
  ctrl.abort();
  await Promise.all(runs);
}

export async function runChild(mode: string): Promise<void> {
  const nodeH2 = Deno.args.includes("--node-http2");
  const conn = await loadKubeConnection({
    kubeconfigPath: arg("kubeconfig")!,
    http2: !Deno.args.includes("--fetch") && !nodeH2,
  });
  if (nodeH2) conn.http2 = nodeHttp2Transport(await kubeconfigTls(arg("kubeconfig")!));
  const client = new KubeClient(conn, {
    userAgent: "bench-lib-kube",
    compression: Deno.args.includes("--compression"),
  });
  try {
    if (mode === "sync") {
      await childSync(client, arg("namespace") ?? "bench", arg("from-rv") ?? "", num("backlog", 0));
    } else if (mode === "watchers") await childWatchers(client, num("count", 100), arg("node") ?? "node-0");
    else throw new Error(`unknown child mode ${mode}`);
  } finally {
    conn.close();
  }
}

/** The sandbox kubeconfig's CA and client certificate (file paths or inline data), for node:http2. */
async function kubeconfigTls(path: string): Promise<NodeH2Tls> {
  type Entry = Record<string, string>;
  const doc = parseYaml(await Deno.readTextFile(path)) as {
    clusters: { cluster: Entry }[];
    users: { user: Entry }[];
  };
  const pem = async (e: Entry, key: string) =>
    e[`${key}-data`] ? atob(e[`${key}-data`]) : e[key] ? await Deno.readTextFile(e[key]) : undefined;
  const [c, u] = [doc.clusters[0].cluster, doc.users[0].user];
  return {
    ca: await pem(c, "certificate-authority"),
    cert: await pem(u, "client-certificate"),
    key: await pem(u, "client-key"),
  };
}

// ---- parent

interface Side {
  name: "ours" | "client-go";
  argv: (mode: string, args: string[]) => string[];
}

async function runOnce(side: Side, mode: string, args: string[]): Promise<Result> {
  const [cmd, ...rest] = side.argv(mode, args);
  const out = await new Deno.Command(cmd, { args: rest, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(`${side.name} ${mode} failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
  }
  return JSON.parse(text.split("\n").at(-1)!);
}

/** The apiserver's own CPU seconds (all, and its GC's), GC cycles and heap allocated, from its /metrics. */
interface ServerUsage {
  cpuS: number;
  gcCpuS: number;
  gcCycles: number;
  allocatedMiB: number;
}

/** Starts 100 watchers, waits for their sync, lets `churn` run, stops them; apiserver CPU seconds used. */
async function watchersCpu(
  side: Side,
  args: string[],
  usage: () => Promise<ServerUsage>,
  churn: () => Promise<void>,
): Promise<Result> {
  const [cmd, ...rest] = side.argv("watchers", args);
  const before = await usage();
  const child = new Deno.Command(cmd, { args: rest, stdin: "piped", stdout: "piped", stderr: "piped" })
    .spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`${side.name} watchers ended before syncing`);
    buf += value;
  }
  const synced = JSON.parse(buf.split("\n")[0]).synced as number;
  const atSync = await usage();
  await churn();
  await child.stdin.close();
  lines.releaseLock();
  await child.stdout.cancel().catch(() => {});
  const status = await child.status;
  if (!status.success) throw new Error(`${side.name} watchers exited ${status.code}`);
  const end = await usage();
  return {
    syncMs: synced,
    apiserverCpuS: end.cpuS - before.cpuS,
    syncCpuS: atSync.cpuS - before.cpuS,
    churnCpuS: end.cpuS - atSync.cpuS,
    gcCpuS: end.gcCpuS - before.gcCpuS,
    gcCycles: end.gcCycles - before.gcCycles,
    allocatedMiB: end.allocatedMiB - before.allocatedMiB,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function pool(n: number, concurrency: number, job: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await job(next++);
  }));
}

type Results = Map<string, { ours: number[]; theirs: number[] }>;

/** One benchmark run: the apiserver's client, the two sides and what each measured. */
interface Bench {
  client: KubeClient;
  namespace: string;
  ours: Side;
  theirs: Side;
  results: Results;
  say: (m: string) => void;
}

function record(b: Bench, key: string, side: Side, v: number): void {
  const r = b.results.get(key) ?? { ours: [], theirs: [] };
  b.results.set(key, r);
  (side === b.ours ? r.ours : r.theirs).push(v);
}

/** Both sides, in the order of this round: it flips every round. */
const inOrder = (b: Bench, round: number) => round % 2 === 0 ? [b.ours, b.theirs] : [b.theirs, b.ours];

/** Builds the client-go side (once; build.sh caches it) and returns the binary's path. */
async function buildClientGo(): Promise<string> {
  const build = await new Deno.Command("bash", {
    args: [new URL("./build.sh", import.meta.url).pathname],
    stderr: "inherit",
    stdout: "piped",
  }).output();
  if (!build.success) throw new Error("building the client-go benchmark failed");
  return new TextDecoder().decode(build.stdout).trim().split("\n").at(-1)!;
}

function sides(kc: string, goBin: string): { ours: Side; theirs: Side } {
  const self = new URL("../watch_loop.ts", import.meta.url).pathname;
  return {
    ours: {
      name: "ours",
      argv: (mode, a) => [
        Deno.execPath(),
        "run",
        "-A",
        self,
        `--child=${mode}`,
        `--kubeconfig=${kc}`,
        ...a,
        ...(arg("ours-args")?.split(" ").filter(Boolean) ?? []),
      ],
    },
    theirs: {
      name: "client-go",
      // Go's flag package takes --name=value too.
      argv: (mode, a) => [goBin, mode, `--kubeconfig=${kc}`, ...a],
    },
  };
}

async function apiserverUsage(client: KubeClient): Promise<ServerUsage> {
  const text = await (await client.fetch("GET", "/metrics")).text();
  const read = (name: string) => {
    const m = new RegExp(`^${name} ([0-9.e+]+)$`, "m").exec(text);
    if (!m) throw new Error(`no ${name} in the apiserver's /metrics`);
    return Number(m[1]);
  };
  return {
    cpuS: read("process_cpu_seconds_total"),
    gcCpuS: read("go_cpu_classes_gc_total_cpu_seconds_total"),
    gcCycles: read("go_gc_duration_seconds_count"),
    allocatedMiB: read("go_gc_heap_allocs_bytes_total") / 2 ** 20,
  };
}

// The apiserver's Go runtime collects when its allocations since the last cycle reach its live heap
// (10,000 pods and their watch cache); a cycle costs it about 0.25 s of CPU here. Left alone, whether a
// cycle fell inside a measured run decided that run's CPU more than the client did (0.3 or 1.0 s for
// the same requests), and it stalls a replay. So each run starts right after a forced collection (the
// heap profile with gc=1 runs one first), and a cycle inside it is one its own requests paid for.
async function collect(client: KubeClient): Promise<void> {
  const res = await client.fetch("GET", "/debug/pprof/heap", { query: { gc: 1 } });
  await res.body?.cancel();
}

async function createPods(b: Bench, pods: number, nodes: number): Promise<void> {
  await b.client.create(Resources.namespaces, { metadata: { name: b.namespace } });
  await pool(pods, 32, (i) =>
    b.client.create<Pod>(Resources.pods, {
      metadata: {
        name: `bench-${i}`,
        namespace: b.namespace,
        labels: { app: "bench", aadpodidbinding: `sel-${i % 50}` },
      },
      spec: {
        nodeName: `node-${i % nodes}`,
        containers: [{ name: "app", image: "registry.invalid/app:1" }],
      },
    }));
  b.say(`created ${pods} pods on ${nodes} nodes`);
}

/** Each round: a backlog of writes, then each side syncs every pod and replays the backlog. */
async function syncPhase(b: Bench, rounds: number, pods: number, backlog: number): Promise<void> {
  const { client, namespace } = b;
  for (let round = 0; round < rounds; round++) {
    const rv0 = (await client.list(Resources.pods, { namespace, limit: 1 })).metadata.resourceVersion!;
    await pool(backlog, 32, (i) =>
      client.patch(Resources.pods, `bench-${i % pods}`, "merge", {
        metadata: { labels: { round: `r${round}-${i}` } },
      }, { namespace }));
    for (const side of inOrder(b, round)) {
      await collect(client);
      const r = await runOnce(side, "sync", [
        `--namespace=${namespace}`,
        `--from-rv=${rv0}`,
        `--backlog=${backlog}`,
      ]);
      if (r.pods !== pods) throw new Error(`${side.name} synced ${r.pods} pods, expected ${pods}`);
      record(b, "syncMs", side, r.syncMs);
      record(b, "heapMiB", side, r.heapMiB);
      record(b, "replayPerSec", side, r.replayPerSec);
      b.say(`round ${round + 1} ${side.name}: ${JSON.stringify(r)}`);
    }
  }
}

// One node's pods, as every NMI watches them; the writes go to that node's pods only. Paced at
// --churn-rate writes/s (0: as fast as 16 concurrent PATCHes go): a real node's pods change a few times
// a second at most, while a burst to 100 watchers in one process measures that process's throughput
// (the apiserver closes watchers that fall behind, and their re-watches cost it CPU).
function churner(b: Bench, pods: number, nodes: number): () => Promise<void> {
  const nodePods = Array.from({ length: pods / nodes }, (_, i) => `bench-${i * nodes}`);
  const CHURN_WRITES = num("churn-writes", 200);
  const CHURN_RATE = num("churn-rate", 50);
  let churnRound = 0;
  const write = (i: number) =>
    b.client.patch(Resources.pods, nodePods[i % nodePods.length], "merge", {
      metadata: { labels: { churn: `c${churnRound++}` } },
    }, { namespace: b.namespace });
  return async () => {
    if (CHURN_RATE > 0) {
      const t0 = performance.now();
      for (let i = 0; i < CHURN_WRITES; i++) {
        const wait = t0 + (i * 1000) / CHURN_RATE - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        await write(i);
      }
    } else await pool(CHURN_WRITES, 16, write);
    await new Promise<void>((r) => setTimeout(r, 2000));
  };
}

const WATCHER_FIGURES = ["apiserverCpuS", "syncCpuS", "churnCpuS", "gcCpuS", "gcCycles", "allocatedMiB"];

async function watchersPhase(b: Bench, rounds: number, watchers: number, churn: () => Promise<void>) {
  for (let round = 0; round < rounds; round++) {
    for (const side of inOrder(b, round)) {
      await collect(b.client);
      const r = await watchersCpu(
        side,
        [`--count=${watchers}`, "--node=node-0"],
        () => apiserverUsage(b.client),
        churn,
      );
      // watchersCpu's `syncMs` is this phase's own figure, apart from the sync phase's.
      record(b, "watchersSyncMs", side, r.syncMs);
      for (const key of WATCHER_FIGURES) record(b, key, side, r[key]);
      b.say(`watchers round ${round + 1} ${side.name}: ${JSON.stringify(r)}`);
    }
  }
}

interface Figures {
  pods: number;
  backlog: number;
  watchers: number;
  rounds: number;
  /** Load averages at the start of the watcher phase and at the end. */
  load: string;
  loadEnd: string;
}

function printResults(results: Results, { pods, backlog, watchers, rounds, load, loadEnd }: Figures): void {
  const rows: [string, string, number, number, string][] = [
    [`LIST + sync ${pods} pods (ms)`, "syncMs", 0, 0, "lower is better"],
    ["heap held after sync (MiB)", "heapMiB", 0, 0, "lower is better"],
    [`watch replay of ${backlog} events (events/s)`, "replayPerSec", 0, 0, "higher is better"],
    [`${watchers} watchers of one node's pods: sync (ms)`, "watchersSyncMs", 0, 0, "lower is better"],
    [`${watchers} watchers: apiserver CPU (s)`, "apiserverCpuS", 0, 0, "lower is better"],
    [`  of which start-up until all synced (s)`, "syncCpuS", 0, 0, "lower is better"],
    [`  of which writes to the node's pods + 2 s (s)`, "churnCpuS", 0, 0, "lower is better"],
    [`  of which its Go GC (s)`, "gcCpuS", 0, 0, "lower is better"],
    [`  apiserver GC cycles in it (after a forced one)`, "gcCycles", 0, 0, "lower is better"],
    [`  apiserver heap allocated in it (MiB)`, "allocatedMiB", 0, 0, "lower is better"],
  ];
  console.log(
    `\nlib/kube vs client-go v0.34.2 defaults (kube-apiserver v1.34.2, ${navigator.hardwareConcurrency} cores, ` +
      `${rounds} alternating rounds each, medians; watchers phase: ${
        arg("churn-writes") ?? 200
      } writes to the node's ` +
      `pods at ${
        arg("churn-rate") ?? 50
      }/s (0 = unpaced); load average at start of watcher phase ${load}, at end ` +
      `${loadEnd})`,
  );
  console.log("| figure | ours | client-go | ratio (ours/client-go) | |\n|---|---|---|---|---|");
  for (const [label, key, , , note] of rows) {
    const r = results.get(key);
    if (!r) continue;
    const [o, t] = [median(r.ours), median(r.theirs)];
    const fmt = (x: number) => x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(2);
    const ratio = t === 0 ? (o === 0 ? "1.00" : "n/a") : (o / t).toFixed(2);
    console.log(`| ${label} | ${fmt(o)} | ${fmt(t)} | ${ratio} | ${note} |`);
  }
  console.log("\nall runs (ours | client-go):");
  for (const [k, r] of results) {
    console.log(
      `  ${k}: ${r.ours.map((x) => x.toFixed(1)).join(" ")} | ${r.theirs.map((x) => x.toFixed(1)).join(" ")}`,
    );
  }
}

const loadAverage = () => Deno.loadavg().map((x) => x.toFixed(2)).join(", ");

export async function runVsClientGo(): Promise<void> {
  const PODS = num("pods", 10_000);
  const BACKLOG = num("backlog", 5_000);
  const ROUNDS = num("rounds", 3);
  const WATCHERS = num("watchers", 100);
  const NODES = 20;
  const started = performance.now();
  const say = (m: string) => console.error(`  [${((performance.now() - started) / 1000).toFixed(1)} s] ${m}`);
  const goBin = await buildClientGo();

  // Profiling on: the bench makes the apiserver collect its garbage before each measured run (`collect`).
  const cp = await startControlPlane({ apiserverArgs: ["--profiling=true"] });
  const conn = await loadKubeConnection({ kubeconfigPath: cp.kubeconfigPath });
  const client = new KubeClient(conn, { userAgent: "bench-driver" });
  const b: Bench = {
    client,
    namespace: "bench",
    ...sides(cp.kubeconfigPath, goBin),
    results: new Map(),
    say,
  };
  let load = "";
  try {
    await createPods(b, PODS, NODES);
    const phases = (arg("phases") ?? "sync,watchers").split(",");
    await syncPhase(b, phases.includes("sync") ? ROUNDS : 0, PODS, BACKLOG);
    const churn = churner(b, PODS, NODES);
    load = loadAverage();
    await watchersPhase(b, phases.includes("watchers") ? ROUNDS : 0, WATCHERS, churn);
  } finally {
    conn.close();
    await cp.stop();
  }
  const loadEnd = loadAverage();
  printResults(b.results, {
    pods: PODS,
    backlog: BACKLOG,
    watchers: WATCHERS,
    rounds: ROUNDS,
    load,
    loadEnd,
  });
}
