// Benchmark of the hand-rolled list/watch loop against a real apiserver of its own:
//   - initial LIST of 10,000 pods into the cache (time, pages, heap held by the cache)
//   - events/s the loop applies: a real watch replaying a backlog of writes, and the decode+apply ceiling
//     on a synthetic stream (no network)
//   - latency from a write on the apiserver to the handler call (median, p99)
// Run: deno task bench watch_loop [--pods=10000] [--latency-writes=300] [--token]
// Side by side with client-go v0.34.2 (built once into the sandbox cache): see client_go/vs_client_go.ts
//      deno task bench watch_loop --vs-client-go [--pods=10000] [--backlog=5000] [--rounds=3] [--watchers=100]

import v8 from "node:v8";
import vm from "node:vm";
import { startControlPlane } from "../sandbox/control_plane.ts";
import { loadKubeConnection } from "../../lib/kube/config.ts";
import { benchTokenKubeconfig } from "./lib/token_kubeconfig.ts";
import { Informer } from "../../lib/kube/informer.ts";
import { KubeClient, Resources } from "../../lib/kube/rest.ts";
import { Store } from "../../lib/kube/store.ts";
import type { KubeObject } from "../../lib/kube/types.ts";
import { decodeWatchEvents } from "../../lib/kube/watch_stream.ts";
import { podIndexers } from "../../lib/kube/informer.ts";
import { createLogger } from "../../lib/log.ts";
import { runChild, runVsClientGo } from "./client_go/vs_client_go.ts";

const childMode = Deno.args.find((a) => a.startsWith("--child="));
if (childMode) {
  await runChild(childMode.slice("--child=".length));
  Deno.exit(0);
}
if (Deno.args.includes("--vs-client-go")) {
  await runVsClientGo();
  Deno.exit(0);
}

type Pod = KubeObject & { spec: Record<string, unknown>; status?: Record<string, unknown> };

function arg(name: string, fallback: number): number {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split("=")[1]) : fallback;
}

const PODS = arg("pods", 10_000);
const LATENCY_WRITES = arg("latency-writes", 300);
const BACKLOG = arg("backlog", 5_000);
const CONCURRENCY = 32;

// A forced GC makes the heap numbers mean something; `deno task bench` passes no V8 flags, so turn it on here.
v8.setFlagsFromString("--expose-gc");
const gc = (globalThis as { gc?: () => void }).gc ?? (vm.runInNewContext("gc") as () => void);
function heapMiB(): number {
  gc?.();
  gc?.();
  return Deno.memoryUsage().heapUsed / 2 ** 20;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function pool<T>(n: number, concurrency: number, job: (i: number) => Promise<T>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await job(next++);
  }));
}

function podSpec(i: number, namespace: string): Pod {
  return {
    metadata: { name: `bench-${i}`, namespace, labels: { app: "bench", aadpodidbinding: `sel-${i % 50}` } },
    spec: { nodeName: `node-${i % 20}`, containers: [{ name: "app", image: "registry.invalid/app:1" }] },
  };
}

const started = performance.now();
const rows: [string, string][] = [];
const row = (k: string, v: string) => {
  rows.push([k, v]);
  console.error(`  [${((performance.now() - started) / 1000).toFixed(1)} s] ${k}: ${v}`);
};

const cp = await startControlPlane();
// --token: a service account's token instead of the admin's client certificate, as MIC and NMI in a pod
// (their connection is then Deno's own TLS; with a certificate, node:tls: lib/kube/http2/tls_socket.ts).
const conn = await loadKubeConnection({
  kubeconfigPath: Deno.args.includes("--token")
    ? await benchTokenKubeconfig(cp, "watch-loop", `${cp.dir}/token-kubeconfig`)
    : cp.kubeconfigPath,
});
const client = new KubeClient(conn, { userAgent: "bench-watch-loop" });
const quiet = createLogger({ level: "error" });
const namespace = "bench";
const ctrl = new AbortController();
try {
  await client.create(Resources.namespaces, { metadata: { name: namespace } });

  // 1. Fill the apiserver.
  let t0 = performance.now();
  await pool(PODS, CONCURRENCY, (i) => client.create<Pod>(Resources.pods, podSpec(i, namespace)));
  let ms = performance.now() - t0;
  row(
    `create ${PODS} pods (${CONCURRENCY} concurrent POSTs)`,
    `${(ms / 1000).toFixed(1)} s (${Math.round(PODS / (ms / 1000))}/s)`,
  );

  // 2. Initial LIST into the cache.
  const heapBefore = heapMiB();
  const informer = new Informer<Pod>({
    client,
    resource: Resources.pods,
    namespace,
    indexers: podIndexers,
    log: quiet,
  });
  t0 = performance.now();
  const run = informer.start(ctrl.signal);
  await informer.synced;
  ms = performance.now() - t0;
  const heapAfter = heapMiB();
  row(`initial LIST of ${informer.store.size} pods (pages of 500) into the cache`, `${Math.round(ms)} ms`);
  row(
    `heap held by the cache (${informer.store.size} pods, 2 indexes)`,
    `${(heapAfter - heapBefore).toFixed(1)} MiB`,
  );

  // 3a. A real watch replaying a backlog: BACKLOG writes happen, then a watch from before them streams them all.
  const fromRv = informer.reflector.resourceVersion!;
  await pool(
    BACKLOG,
    CONCURRENCY,
    (i) =>
      client.patch(
        Resources.pods,
        `bench-${i % PODS}`,
        "merge",
        { metadata: { labels: { round: `r${i}` } } },
        { namespace },
      ),
  );
  const replay = new Store<Pod>({ log: quiet });
  const res = await client.watch(Resources.pods, { namespace, resourceVersion: fromRv, timeoutSeconds: 60 });
  t0 = performance.now();
  let seen = 0;
  for await (const ev of decodeWatchEvents<Pod>(res.body!)) {
    if (ev.type === "ADDED" || ev.type === "MODIFIED") replay.upsert(ev.object);
    if (++seen >= BACKLOG) break;
  }
  ms = performance.now() - t0;
  row(
    `watch backlog replay: ${seen} events over HTTPS, decoded + applied`,
    `${Math.round(seen / (ms / 1000))} events/s`,
  );
  await waitFor(() => informer.stats.events >= BACKLOG, 60_000);
  row(
    `live informer applied the ${BACKLOG} writes (${CONCURRENCY} concurrent PATCHes) `,
    `${informer.stats.events} events, 0 relists: ${informer.stats.relists === 0}`,
  );

  // 3b. Ceiling of decode + apply without the network: a synthetic stream of MODIFIED events.
  const sample = informer.store.list().slice(0, 1000);
  const enc = new TextEncoder();
  const N = 100_000;
  const lines: Uint8Array[] = [];
  for (let i = 0; i < N; i++) {
    const o = sample[i % sample.length];
    lines.push(
      enc.encode(
        JSON.stringify({
          type: "MODIFIED",
          object: { ...o, metadata: { ...o.metadata, resourceVersion: String(1e9 + i) } },
        }) + "\n",
      ),
    );
  }
  const synth = new Store<Pod>({ indexers: podIndexers, log: quiet });
  synth.replace(sample);
  let applied = 0;
  synth.addHandler({ onUpdate: () => applied++ }, { replay: false });
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      // 64 KiB chunks, as a socket would deliver them.
      let buf: Uint8Array[] = [];
      let size = 0;
      for (const l of lines) {
        buf.push(l);
        size += l.length;
        if (size > 65536) {
          c.enqueue(concat(buf, size));
          buf = [];
          size = 0;
        }
      }
      if (size) c.enqueue(concat(buf, size));
      c.close();
    },
  });
  t0 = performance.now();
  for await (const ev of decodeWatchEvents<Pod>(stream)) if (ev.type === "MODIFIED") synth.upsert(ev.object);
  ms = performance.now() - t0;
  row(
    `decode + apply ceiling (synthetic stream, 1,000 pods, 2 indexes)`,
    `${Math.round(applied / (ms / 1000))} events/s`,
  );

  // 4. Write -> handler latency: one write at a time, timed from sending the PATCH to the handler call.
  const latencies: number[] = [];
  const afterResponse: number[] = [];
  let waiting: { name: string; value: string; sent: number; resolve: () => void } | undefined;
  informer.addHandler({
    onUpdate: (_, o) => {
      if (waiting && o.metadata.name === waiting.name && o.metadata.labels?.probe === waiting.value) {
        latencies.push(performance.now() - waiting.sent);
        waiting.resolve();
      }
    },
  }, { replay: false });
  for (let i = 0; i < LATENCY_WRITES; i++) {
    const name = `bench-${(i * 37) % PODS}`;
    const value = `p${i}`;
    let resolve!: () => void;
    const delivered = new Promise<void>((r) => resolve = r);
    const sent = performance.now();
    waiting = { name, value, sent, resolve };
    await client.patch(Resources.pods, name, "merge", { metadata: { labels: { probe: value } } }, {
      namespace,
    });
    const answered = performance.now();
    await delivered;
    afterResponse.push(latencies[latencies.length - 1] - (answered - sent));
  }
  latencies.sort((a, b) => a - b);
  afterResponse.sort((a, b) => a - b);
  row(
    `write -> handler latency, PATCH sent to handler (${LATENCY_WRITES} writes)`,
    `median ${pct(latencies, 0.5).toFixed(1)} ms, p99 ${pct(latencies, 0.99).toFixed(1)} ms`,
  );
  row(
    `  of which after the PATCH response arrived`,
    `median ${pct(afterResponse, 0.5).toFixed(1)} ms, p99 ${pct(afterResponse, 0.99).toFixed(1)} ms`,
  );
  ctrl.abort();
  await run;
} finally {
  ctrl.abort();
  conn.close();
  await cp.stop();
  console.error(`  [${((performance.now() - started) / 1000).toFixed(1)} s] control plane stopped`);
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}

const width = Math.max(...rows.map(([k]) => k.length));
const title =
  `watch loop benchmark (kube-apiserver v1.34.2, ${navigator.hardwareConcurrency} cores, heap after forced GC)`;
console.log(`\n${title}`);
console.log(`${"measure".padEnd(width)} | result`);
console.log(`${"-".repeat(width)}-|-${"-".repeat(30)}`);
for (const [k, v] of rows) console.log(`${k.padEnd(width)} | ${v}`);
