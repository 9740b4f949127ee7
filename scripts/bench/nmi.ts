// NMI benchmark in the setup of issue 21, NMI as a real process with its shipped permissions:
//   - as root, everything runs in a network namespace of its own (lib/netns.ts): the apiserver, the emulated
//     node IMDS on 169.254.169.254:80, and NMI with its iptables rules installed (flags as the original's
//     manifests: --nmi-listen-address 127.0.0.1, --nmi-port 2579, --kubelet-config an empty file);
//   - one pod whose IP is 127.0.0.1 (wrk cannot pick a source address) asks for the percent-encoded
//     resource https%3A%2F%2Fmanagement.azure.com%2F with `Metadata: true`; wrk -t1, 8 s per run, -c16 and
//     -c64, alternating with a bare Deno.serve (its own process) that answers the same body from a Map:
//     the floor a cached path can approach on this machine, measured in the same run;
//   - for both: req/s, p50/p99, CPU per request (from /proc/<pid>/stat), RSS idle and after the load (NMI's
//     also right after its first run, the nearest reading past the issue's 100k requests);
//   - NMI's cold path (authorise + IMDS call + cache fill) and its RSS at start and with 500 pods on the node.
// Run: deno task bench nmi [--duration=8] [--runs=1] [--connections=16,64] [--pods=500]
//        [--resource=https://management.azure.com/] [--iptables=false] [--netns=false]
//        [--nmi-v8-flags=--max-semi-space-size=1,...|none (add --trace-gc for a count of collections)]
//        [--floor-v8-flags=...] [--nmi-deno-flags=...]
//        [--as-compiled (NMI's modules emitted to JavaScript without source maps, as `deno compile` stores
//         them: scripts/bench/lib/transpiled.ts)]

import { NMI_FLAGS } from "../../nmi/config.ts";
import { sourceShare } from "../../nmi/limiter.ts";
import { NMI_ENTRY, NMI_PERMISSIONS, NMI_V8_FLAGS } from "../../nmi/permissions.ts";
import { canUseNetns, inOwnNetns } from "./lib/netns.ts";
import { cpuSeconds, rssMiB } from "./lib/proc.ts";
import { type Bench, rssAnonMiB, setUpNode } from "./lib/nmi_node.ts";
import { spawnLogged } from "./lib/spawn.ts";
import { transpileGraph } from "./lib/transpiled.ts";
import { wrk, type WrkResult } from "./lib/wrk.ts";

function arg(name: string, fallback: string): string {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
}
const DURATION = Number(arg("duration", "8"));
const RUNS = Number(arg("runs", "1"));
const CONNECTIONS = arg("connections", "16,64").split(",").map(Number);
const PODS = Number(arg("pods", "500"));
const RESOURCE = arg("resource", "https://management.azure.com/");
const NETNS = arg("netns", "true") === "true" && canUseNetns();
const IPTABLES = arg("iptables", "true") === "true" && NETNS;
/** Default: NMI's shipped V8 flags (nmi/permissions.ts); "none" = no V8 flags at all. */
const NMI_V8 = arg("nmi-v8-flags", NMI_V8_FLAGS.join(","));
const FLOOR_V8 = arg("floor-v8-flags", "");
/** Extra `deno run` flags for NMI, comma-separated (e.g. --inspect=127.0.0.1:9229 to profile it). */
const NMI_DENO_FLAGS = arg("nmi-deno-flags", "").split(",").filter(Boolean);
const AS_COMPILED = Deno.args.includes("--as-compiled");
const IMDS_IP = "169.254.169.254";
/** Why the cold path's slowest call takes about a second (nmi/limiter.ts), printed beside it. */
const PACING = (() => {
  const rps = NMI_FLAGS["imds-max-rps"].default;
  const share = sourceShare(rps);
  return ` (one pod may start ${share} of NMI's ${rps} IMDS calls a second: call ${
    share + 1
  } waits for the window)`;
})();

if (NETNS) {
  const code = await inOwnNetns(new URL(import.meta.url).pathname, Deno.args, IMDS_IP);
  if (code !== undefined) Deno.exit(code);
}

const FLOOR_SERVER = `
const body = Deno.args[0];
const tokens = new Map([[Deno.args[1], body]]);
const s = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
  if (req.headers.get("metadata") !== "true") return new Response('{"error":"invalid_request"}', { status: 400 });
  const q = new URL(req.url).searchParams.get("resource") ?? "";
  const b = tokens.get(q);
  return b ? new Response(b, { headers: { "content-type": "application/json; charset=utf-8" } }) : new Response("{}", { status: 404 });
});
console.log("floor listening on " + s.addr.port);
`;

interface Side {
  name: string;
  pid: number;
  url: string;
}
interface Row {
  connections: number;
  side: string;
  result: WrkResult;
  cpuUsPerRequest: number;
}

const v8 = (flags: string) => flags && flags !== "none" ? [`--v8-flags=${flags}`] : [];

async function load(side: Side, c: number): Promise<Row> {
  const cpu0 = await cpuSeconds(side.pid);
  const result = await wrk(side.url, c, DURATION);
  const cpu = await cpuSeconds(side.pid) - cpu0;
  return { connections: c, side: side.name, result, cpuUsPerRequest: 1e6 * cpu / result.requests };
}

function median(rows: Row[]): Row {
  const mid = <T>(xs: T[], k: (x: T) => number) => xs.map(k).sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const r = rows[0];
  return {
    connections: r.connections,
    side: r.side,
    cpuUsPerRequest: mid(rows, (x) => x.cpuUsPerRequest),
    result: {
      rps: mid(rows, (x) => x.result.rps),
      p50: mid(rows, (x) => x.result.p50),
      p99: mid(rows, (x) => x.result.p99),
      errors: rows.reduce((a, x) => a + x.result.errors, 0),
      requests: rows.reduce((a, x) => a + x.result.requests, 0),
      wrkCpuPercent: mid(rows, (x) => x.result.wrkCpuPercent),
    },
  };
}

function report(bench: Bench, rows: Row[][], mem: Record<string, number>): void {
  const f1 = (x: number) => x.toFixed(1);
  const load = loadavg();
  console.log(
    `\nNMI benchmark, issue 21 setup (${NETNS ? "own network namespace" : "host network"}, iptables rules ${
      IPTABLES ? "installed" : "not installed"
    }, resource ${RESOURCE}, wrk -t1 ${DURATION} s, median of ${RUNS}; ${navigator.hardwareConcurrency} CPUs, load ${load}; NMI V8 flags: ${
      NMI_V8 || "none"
    }${AS_COMPILED ? "; NMI run as `deno compile` stores it: JavaScript, no source maps" : ""})\n`,
  );
  console.log(
    "| conns | floor req/s | floor p50 / p99 ms | floor CPU µs/req | NMI req/s | NMI p50 / p99 ms | NMI CPU µs/req | NMI / floor req/s | NMI / floor CPU | NMI errors | wrk CPU % floor / NMI |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const [f, n] of rows) {
    console.log(
      `| ${f.connections} | ${f.result.rps.toFixed(0)} | ${f.result.p50.toFixed(2)} / ${
        f.result.p99.toFixed(2)
      } | ${f1(f.cpuUsPerRequest)} | ${n.result.rps.toFixed(0)} | ${n.result.p50.toFixed(2)} / ${
        n.result.p99.toFixed(2)
      } | ${f1(n.cpuUsPerRequest)} | ${(100 * n.result.rps / f.result.rps).toFixed(0)}% | ${
        (n.cpuUsPerRequest / f.cpuUsPerRequest).toFixed(2)
      }x | ${n.result.errors} | ${f.result.wrkCpuPercent.toFixed(0)} / ${
        n.result.wrkCpuPercent.toFixed(0)
      } |`,
    );
  }
  const served = rows.reduce((a, [, n]) => a + n.result.requests, 0);
  console.log(
    `\ncold path (new resource: authorise + node IMDS + cache fill), ${bench.cold.length} resources: p50 ${
      f1(bench.cold[Math.floor(bench.cold.length / 2)])
    } ms, max ${
      f1(bench.cold[bench.cold.length - 1])
    } ms${PACING}; upstream IMDS token calls: ${bench.imdsCalls()}`,
  );
  console.log(
    `RSS MiB: NMI ${f1(mem.nmiStart)} at start (1 pod), with ${PODS + 1} pods ${
      f1(mem.nmiIdle)
    } 3 s after they were added and ${f1(mem.nmiSettled)} idle 15 s after, ${
      f1(mem.nmiAfter)
    } after ${served} requests (${
      f1(mem.nmiAfterFirst)
    } right after the first run, ${mem.nmiFirstRequests} requests at ${CONNECTIONS[0]} connections), ${
      f1(mem.nmiRested)
    } 10 s later, ${f1(mem.nmiRested30)} 30 s later; floor ${f1(mem.floorIdle)} idle, ${
      f1(mem.floorAfter)
    } after the load`,
  );
  console.log(
    `  of which anonymous (RssAnon; the rest is the deno executable's pages): NMI ${f1(mem.nmiIdleAnon)} / ${
      f1(mem.nmiSettledAnon)
    } with the pods, ${f1(mem.nmiAfterAnon)} after the load, ${f1(mem.nmiRested30Anon)} 30 s later; floor ${
      f1(mem.floorIdleAnon)
    } idle`,
  );
}

/**
 * V8's --trace-gc lines NMI printed (run with --nmi-v8-flags=...,--trace-gc): collections by kind, with the
 * longest pause; a p99 in milliseconds at this rate is usually one of these.
 */
function gcSummary(lines: readonly string[]): string {
  const kinds = new Map<string, { n: number; maxMs: number; totalMs: number; why: Map<string, number> }>();
  for (const l of lines) {
    const m =
      /: (Scavenge|Mark-Compact|Minor Mark-Compact|Mark-Sweep)\b.*?, ([\d.]+) \/ [\d.]+ ms(?:\s+\([^)]*\))?\s*([^;]*)/
        .exec(l);
    if (!m) continue;
    const k = kinds.get(m[1]) ?? { n: 0, maxMs: 0, totalMs: 0, why: new Map() };
    const ms = Number(m[2]);
    const why = m[3].trim() || "?";
    k.why.set(why, (k.why.get(why) ?? 0) + 1);
    kinds.set(m[1], { n: k.n + 1, maxMs: Math.max(k.maxMs, ms), totalMs: k.totalMs + ms, why: k.why });
  }
  if (!kinds.size) return "no --trace-gc lines";
  return [...kinds].map(([k, v]) =>
    `${v.n} ${k} (max ${v.maxMs.toFixed(2)} ms, total ${v.totalMs.toFixed(0)} ms; ${
      [...v.why].map(([w, n]) => `${n} ${w}`).join(", ")
    })`
  ).join(", ");
}

function loadavg(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
}

const program = AS_COMPILED ? await transpileGraph(NMI_ENTRY) : undefined;
const bench = await setUpNode({
  pods: PODS,
  resource: RESOURCE,
  imds: NETNS ? { hostname: IMDS_IP, port: 80 } : { hostname: "127.0.0.1", port: 0 },
  startNmi: (a) =>
    spawnLogged([
      "run",
      ...NMI_PERMISSIONS.filter((f) => !f.startsWith("--v8-flags=")),
      ...v8(NMI_V8),
      ...NMI_DENO_FLAGS,
      program?.entry ?? NMI_ENTRY,
      "--node",
      a.node,
      "--kubeconfig",
      a.kubeconfigPath,
      "--nmi-listen-address",
      "127.0.0.1",
      "--nmi-port",
      NETNS ? "2579" : "0",
      "--kubelet-config",
      a.kubeletConfigPath,
      "--metadata-ip",
      a.imdsHost,
      "--metadata-port",
      String(a.imdsPort),
      ...(NETNS ? [] : ["--http-probe-port", "-1", "--prometheus-port", "-1"]),
      `--manage-iptables=${IPTABLES}`,
    ], /NMI listening address=\S+:(\d+)/),
});
try {
  const floor = spawnLogged(
    ["eval", ...v8(FLOOR_V8), FLOOR_SERVER, bench.sampleBody, RESOURCE],
    /floor listening on (\d+)/,
  );
  bench.cleanups.unshift(() => floor.stop());
  if (program) bench.cleanups.push(() => Deno.remove(program.dir, { recursive: true }));
  const query = `api-version=2018-02-01&resource=${encodeURIComponent(RESOURCE)}`;
  const path = `/metadata/identity/oauth2/token?${query}`;
  const sides: Side[] = [
    { name: "floor", pid: floor.child.pid, url: `http://127.0.0.1:${await floor.port}${path}` },
    { name: "NMI", pid: bench.nmi.child.pid, url: `http://127.0.0.1:${bench.nmiPort}${path}` },
  ];
  const mem: Record<string, number> = {
    ...bench.rss,
    floorIdle: await rssMiB(floor.child.pid),
    floorIdleAnon: await rssAnonMiB(floor.child.pid),
  };
  const rows: Row[][] = [];
  const linesBefore = bench.nmi.lines.length;
  for (const c of CONNECTIONS) {
    const runs: Row[][] = [[], []];
    for (let i = 0; i < RUNS; i++) {
      for (const [j, s] of sides.entries()) {
        runs[j].push(await load(s, c));
        // Issue 21's figure is RSS after 100k requests: the first run is the nearest reading past that.
        if (s.name === "NMI" && mem.nmiAfterFirst === undefined) {
          mem.nmiAfterFirst = await rssMiB(s.pid);
          mem.nmiFirstRequests = runs[j][0].result.requests;
        }
      }
    }
    rows.push(runs.map(median));
  }
  const gcDuringLoad = gcSummary(bench.nmi.lines.slice(linesBefore));
  mem.nmiAfter = await rssMiB(bench.nmi.child.pid);
  mem.nmiAfterAnon = await rssAnonMiB(bench.nmi.child.pid);
  // Idle again: what NMI gives back once the load stops (its idle collection runs in the first quiet 5 s
  // interval, nmi/idle_gc.ts).
  await new Promise((r) => setTimeout(r, 10_000));
  mem.nmiRested = await rssMiB(bench.nmi.child.pid);
  await new Promise((r) => setTimeout(r, 20_000));
  mem.nmiRested30 = await rssMiB(bench.nmi.child.pid);
  mem.floorAfter = await rssMiB(floor.child.pid);
  mem.nmiRested30Anon = await rssAnonMiB(bench.nmi.child.pid);
  report(bench, rows, mem);
  if (NMI_V8.includes("--trace-gc")) {
    console.log(`NMI's garbage collections during the load: ${gcDuringLoad}`);
  }
} finally {
  await bench.stop();
}
