// NMI benchmark, NMI as a real process with its shipped permissions against a real apiserver of its own and
// the emulated node IMDS:
//   - cached-token requests/s and latency (p50, p99) with wrk at concurrency 1, 16 and 64, next to a bare
//     Deno.serve (also its own process) that checks the Metadata header and returns a same-size IMDS body
//     from a Map: the floor a cached path can approach on this machine, measured in the same run;
//   - cold-path latency: first request for a new resource (authorise + IMDS call over HTTP + cache fill);
//   - NMI's RSS idle and with 500 pods on its node.
// wrk cannot pick a source address, so the benchmark's pod holds IP 127.0.0.1.
// Run: deno task bench nmi [--duration=3] [--runs=3] [--pods=500]

import { toWire } from "../../lib/api/wire.ts";
import { normalizeAzureIdentity, normalizeAzureIdentityBinding } from "../../lib/api/normalize.ts";
import { loadKubeConnection } from "../../lib/kube/config.ts";
import { KubeClient, Resources } from "../../lib/kube/rest.ts";
import type { KubeObject } from "../../lib/kube/types.ts";
import { NMI_ENTRY, NMI_PERMISSIONS } from "../../nmi/permissions.ts";
import { installCrds, startControlPlane } from "../sandbox/control_plane.ts";
import { startAzureEmulator } from "../sandbox/azure/emulator.ts";

function arg(name: string, fallback: number): number {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split("=")[1]) : fallback;
}
const DURATION = arg("duration", 3);
/** Runs per connection count, floor and NMI alternating; the table shows medians (the machine is shared). */
const RUNS = arg("runs", 3);
const PODS = arg("pods", 500);
const ROOT = new URL("../../", import.meta.url).pathname;
const NODE = "bench-node";
const NS = "nmi-bench";

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

function ms(text: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(text);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
}

async function wrk(url: string, connections: number): Promise<WrkResult> {
  const out = await new Deno.Command("wrk", {
    args: ["-t1", `-c${connections}`, `-d${DURATION}s`, "--latency", "-H", "Metadata: true", url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`wrk failed: ${new TextDecoder().decode(out.stderr)}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
  const p50 = ms(/\s50%\s+(\S+)/.exec(text)?.[1] ?? "");
  const p99 = ms(/\s99%\s+(\S+)/.exec(text)?.[1] ?? "");
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const errors = non2xx + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { rps, p50, p99, errors };
}

async function rssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) / 1024;
}

function spawnLogged(args: string[], env: Record<string, string>, listenPattern: RegExp) {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const port = new Promise<number>((resolve, reject) => {
    const pump = async (s: ReadableStream<Uint8Array>) => {
      let buf = "";
      for await (const c of s.pipeThrough(new TextDecoderStream())) {
        buf += c;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          lines.push(line);
          const m = listenPattern.exec(line);
          if (m) resolve(Number(m[1]));
        }
      }
    };
    pump(child.stdout);
    pump(child.stderr);
    child.status.then((s) => reject(new Error(`exited ${s.code}:\n${lines.join("\n")}`)));
  });
  return { child, port, lines };
}

const FLOOR_SERVER = `
const body = JSON.stringify(JSON.parse(Deno.args[0]));
const tokens = new Map([["https://vault.azure.net", body]]);
const s = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
  if (req.headers.get("metadata") !== "true") return new Response('{"error":"invalid_request"}', { status: 400 });
  const q = new URL(req.url).searchParams.get("resource") ?? "";
  const b = tokens.get(q);
  return b ? new Response(b, { headers: { "content-type": "application/json; charset=utf-8" } }) : new Response("{}", { status: 404 });
});
console.log("floor listening on " + s.addr.port);
`;

const cluster = await startControlPlane();
const emu = await startAzureEmulator({ lroDurationMs: 50, imdsPropagationDelayMs: 0 });
const cleanups: (() => Promise<unknown> | void)[] = [() => emu.stop(), () => cluster.stop()];
try {
  await installCrds(cluster);
  const conn = await loadKubeConnection({ kubeconfigPath: cluster.kubeconfigPath });
  cleanups.unshift(() => conn.close());
  const kube = new KubeClient(conn);
  await kube.create(Resources.namespaces, { metadata: { name: NS } });
  const uami = emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "bench-id" });
  const vmss = emu.addVmss({ resourceGroup: "rg", name: "nodes", userAssignedIdentities: [uami.id] });
  const imds = await emu.startImds({ vmssResourceId: vmss.id, instance: 0 });
  const resources = Array.from({ length: 30 }, (_, i) => `api://nmi-bench-${i}`);
  for (const r of resources) emu.registerResource(r);

  const id = normalizeAzureIdentity({
    apiVersion: "aadpodidentity.k8s.io/v1",
    kind: "AzureIdentity",
    metadata: { name: "bench-id", namespace: NS },
    spec: { type: 0, resourceID: uami.id, clientID: uami.clientId },
  });
  const binding = normalizeAzureIdentityBinding({
    apiVersion: "aadpodidentity.k8s.io/v1",
    kind: "AzureIdentityBinding",
    metadata: { name: "bench-binding", namespace: NS },
    spec: { azureIdentity: "bench-id", selector: "bench" },
  });
  await kube.create(Resources.azureIdentities, toWire(id) as unknown as KubeObject);
  await kube.create(Resources.azureIdentityBindings, toWire(binding) as unknown as KubeObject);
  const makePod = async (name: string, ip: string, labels: Record<string, string>) => {
    await kube.create(Resources.pods, {
      metadata: { name, namespace: NS, labels },
      spec: { nodeName: NODE, containers: [{ name: "app", image: "app:1" }] },
    } as KubeObject);
    await kube.patch(Resources.pods, name, "merge", {
      status: { phase: "Running", podIP: ip, podIPs: [{ ip }] },
    }, {
      namespace: NS,
      subresource: "status",
    });
  };
  await makePod("bench-pod", "127.0.0.1", { aadpodidbinding: "bench" });
  await kube.create(Resources.azureAssignedIdentities, {
    metadata: { name: "bench-pod-nmi-bench-bench-id", namespace: NS, labels: { nodename: NODE } },
    spec: {
      azureIdentityRef: toWire(id),
      azureBindingRef: toWire(binding),
      pod: "bench-pod",
      podNamespace: NS,
      nodename: NODE,
    },
    status: { status: "Assigned" },
  } as unknown as KubeObject);

  const nmi = spawnLogged(
    [
      "run",
      ...NMI_PERMISSIONS,
      NMI_ENTRY,
      "--node",
      NODE,
      "--kubeconfig",
      cluster.kubeconfigPath,
      "--nmi-port",
      "0",
      "--http-probe-port",
      "-1",
      "--prometheus-port",
      "-1",
      "--metadata-ip",
      "127.0.0.1",
      "--metadata-port",
      String(imds.port),
      "--manage-iptables=false",
    ],
    {},
    /NMI listening address=\S+:(\d+)/,
  );
  cleanups.unshift(async () => {
    nmi.child.kill("SIGTERM");
    await nmi.child.status;
  });
  const nmiPort = await nmi.port;
  const base = `http://127.0.0.1:${nmiPort}`;
  const tokenUrl = (r: string) =>
    `${base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${encodeURIComponent(r)}`;
  // Wait for the caches (first success).
  const t0 = performance.now();
  let sampleBody = "";
  while (!sampleBody) {
    const res = await fetch(tokenUrl("https://vault.azure.net"), { headers: { Metadata: "true" } });
    const text = await res.text();
    if (res.status === 200) {
      sampleBody = text;
      break;
    }
    if (performance.now() - t0 > 30_000) throw new Error(`NMI never served: ${res.status} ${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  const rssStart = await rssMiB(nmi.child.pid);
  // Cold path: a resource NMI has not cached (authorise, IMDS over HTTP, cache fill), one at a time.
  const cold: number[] = [];
  for (const r of resources) {
    const s = performance.now();
    const res = await fetch(tokenUrl(r), { headers: { Metadata: "true" } });
    await res.text();
    if (res.status !== 200) throw new Error(`cold ${r}: ${res.status}`);
    cold.push(performance.now() - s);
  }
  cold.sort((a, b) => a - b);

  // 500 more pods on the node (the memory target is for that), measured before any load.
  for (let i = 0; i < PODS; i += 25) {
    await Promise.all(Array.from({ length: Math.min(25, PODS - i) }, (_, j) => {
      const n = i + j;
      return makePod(`filler-${n}`, `127.9.${Math.floor(n / 250)}.${1 + (n % 250)}`, {
        app: `filler-${n % 10}`,
      });
    }));
  }
  await new Promise((r) => setTimeout(r, 2000));
  // The pods are in NMI's cache once a filler pod's request is answered as "no binding" (400), not 404.
  const probe = await fetch(tokenUrl("https://vault.azure.net"), { headers: { Metadata: "true" } });
  await probe.body?.cancel();
  const rssPods = await rssMiB(nmi.child.pid);

  const floor = spawnLogged(["eval", FLOOR_SERVER, sampleBody], {}, /floor listening on (\d+)/);
  cleanups.unshift(async () => {
    floor.child.kill("SIGTERM");
    await floor.child.status;
  });
  const floorUrl = `http://127.0.0.1:${await floor
    .port}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${
    encodeURIComponent("https://vault.azure.net")
  }`;

  const rows: string[] = [];
  const median = (xs: WrkResult[]): WrkResult => {
    const mid = (k: keyof WrkResult) => xs.map((x) => x[k]).sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    return {
      rps: mid("rps"),
      p50: mid("p50"),
      p99: mid("p99"),
      errors: xs.reduce((a, x) => a + x.errors, 0),
    };
  };
  for (const c of [1, 16, 64]) {
    const fs: WrkResult[] = [];
    const ns: WrkResult[] = [];
    for (let i = 0; i < RUNS; i++) {
      fs.push(await wrk(floorUrl, c));
      ns.push(await wrk(tokenUrl("https://vault.azure.net"), c));
    }
    const f = median(fs);
    const n = median(ns);
    rows.push(
      `| ${c} | ${f.rps.toFixed(0)} | ${f.p50.toFixed(2)} / ${f.p99.toFixed(2)} | ${n.rps.toFixed(0)} | ${
        n.p50.toFixed(2)
      } / ${n.p99.toFixed(2)} | ${(100 * n.rps / f.rps).toFixed(0)}% | ${n.errors} |`,
    );
  }
  const imdsCalls = emu.requests.count({ service: "imds", route: "imds.token" });

  const rssAfterLoad = await rssMiB(nmi.child.pid);

  console.log(
    `\nNMI benchmark (wrk -t1, ${DURATION}s per run, median of ${RUNS} runs; cached token for one pod; ${navigator.hardwareConcurrency} CPUs)\n`,
  );
  console.log(
    "| connections | floor req/s | floor p50 / p99 ms | NMI req/s | NMI p50 / p99 ms | NMI / floor | NMI errors |",
  );
  console.log("|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(r);
  console.log(
    `\ncold path (new resource: authorise + node IMDS + cache fill), ${cold.length} resources: p50 ${
      cold[Math.floor(cold.length / 2)].toFixed(1)
    } ms, max ${cold[cold.length - 1].toFixed(1)} ms`,
  );
  console.log(
    `upstream IMDS token calls during the whole run: ${imdsCalls} (1 warm-up + ${resources.length} cold)`,
  );
  console.log(
    `NMI RSS: ${rssStart.toFixed(1)} MiB after start (1 pod), ${rssPods.toFixed(1)} MiB with ${
      PODS + 1
    } pods ` +
      `on the node, ${rssAfterLoad.toFixed(1)} MiB after the wrk runs (V8 keeps the heap it grew under load)`,
  );
} finally {
  for (const c of cleanups) {
    try {
      await c();
    } catch { /* best effort */ }
  }
}
