// A node for NMI attack tests: the e2e Lab (node and pods as network namespaces, NMI's real iptables rules)
// with NMI as its real process in the node namespace, optionally inside a memory cgroup (v1) of its own and
// with its apiserver link through a relay the test can pause (SIGSTOP) to stall the link without closing it.

import { Lab, type LabPod } from "../../scripts/sandbox/netns.ts";
import { type Harness, type NmiProcess, spawnNmi, startHarness } from "../integration/nmi/harness.ts";
import { apiserverPort, curlToken, labNmiFlags, randomPort, waitNmiReady } from "../support/lab_nmi.ts";

const FORWARDER = new URL("../../scripts/sandbox/tcp_forward.ts", import.meta.url).pathname;

interface AttackNode {
  h: Harness;
  lab: Lab;
  nmi: NmiProcess;
  /** NMI's process id (the deno process in the node namespace). */
  nmiPid: number;
  /** Adds a pod namespace and its Pod object. */
  pod(name: string, labels: Record<string, string>, opts?: { ownerReplicaSet?: string }): Promise<LabPod>;
  /** Pauses (true) or resumes NMI's apiserver link; only with `pausableApiserver`. */
  stallApiserver(stalled: boolean): void;
  close(): Promise<void>;
}

interface AttackNodeOptions {
  attached: string[];
  /** Memory limit of a cgroup v1 NMI runs in (bytes). */
  memoryLimit?: number;
  /** NMI reaches the apiserver through a relay that stallApiserver() pauses. */
  pausableApiserver?: boolean;
  nmiArgs?: string[];
  /** NMI's --MICNamespace is the harness's namespace. */
  micInTestNamespace?: boolean;
}

export const MEMORY_CGROUP_ROOT = "/sys/fs/cgroup/memory";

/** A kubeconfig like the harness's whose server is 127.0.0.1:`port` (same certificate: same IP). */
async function kubeconfigVia(h: Harness, port: number): Promise<string> {
  const text = await Deno.readTextFile(h.cluster.kubeconfigPath);
  const path = await Deno.makeTempFile({ suffix: ".kubeconfig" });
  await Deno.writeTextFile(path, text.replace(/(server:\s*https:\/\/127\.0\.0\.1:)\d+/, `$1${port}`));
  return path;
}

async function pidOfNmi(nodeNs: string): Promise<number> {
  const out = await new Deno.Command("ip", { args: ["netns", "pids", nodeNs], stdout: "piped" }).output();
  for (const pid of new TextDecoder().decode(out.stdout).split(/\s+/).filter(Boolean)) {
    const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
    if (cmd.includes("nmi/main.ts")) return Number(pid);
  }
  throw new Error(`no NMI process in ${nodeNs}`);
}

type Cleanups = (() => Promise<void> | void)[];

/** A relay 127.0.0.1:port -> the apiserver that SIGSTOP pauses, and a kubeconfig pointing at it. */
async function pausableRelay(
  h: Harness,
  lab: Lab,
  cleanups: Cleanups,
): Promise<{ relay: Deno.ChildProcess; kubeconfig: string }> {
  const port = randomPort();
  const relay = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", FORWARDER, `127.0.0.1:${port}`, `127.0.0.1:${await apiserverPort(h)}`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  cleanups.push(async () => {
    Deno.kill(relay.pid, "SIGCONT");
    relay.kill("SIGKILL");
    await relay.status;
  });
  await lab.waitForPort(undefined, "127.0.0.1", port);
  const kubeconfig = await kubeconfigVia(h, port);
  cleanups.push(() => Deno.remove(kubeconfig));
  await lab.mirror(port);
  return { relay, kubeconfig };
}

/** The command prefix that runs NMI in the node namespace, inside a fresh memory cgroup when asked. */
async function nmiWrap(lab: Lab, memoryLimit: number | undefined, cleanups: Cleanups): Promise<string[]> {
  const wrap = ["ip", "netns", "exec", lab.nodeNs];
  if (!memoryLimit) return wrap;
  const group = `${MEMORY_CGROUP_ROOT}/aad-nmi-attack-${lab.id}`;
  await Deno.mkdir(group);
  cleanups.push(() => Deno.remove(group));
  await Deno.writeTextFile(`${group}/memory.limit_in_bytes`, String(memoryLimit));
  return ["sh", "-c", `echo $$ > ${group}/cgroup.procs && exec "$@"`, "sh", ...wrap];
}

export async function startAttackNode(o: AttackNodeOptions): Promise<AttackNode> {
  const h = await startHarness({ attached: o.attached, startNmi: false });
  const lab = await Lab.create();
  const cleanups: Cleanups = [() => h.close(), () => lab.close()];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
  };
  try {
    const paused = o.pausableApiserver ? await pausableRelay(h, lab, cleanups) : undefined;
    if (!paused) await lab.mirror(await apiserverPort(h));
    await lab.mirror(h.imds.port, { as: { ip: "169.254.169.254", port: 80 } });
    const wrap = await nmiWrap(lab, o.memoryLimit, cleanups);
    const probePort = randomPort();
    const args = h.nmiArgs([
      "--kubeconfig",
      paused?.kubeconfig ?? h.cluster.kubeconfigPath,
      ...labNmiFlags(probePort),
      ...(o.micInTestNamespace ? [`--MICNamespace=${h.ns}`] : []),
      ...(o.nmiArgs ?? []),
    ]);
    const nmi = await spawnNmi(args, { NODE_EXTRA_CA_CERTS: h.emu.caCertPath }, wrap);
    cleanups.push(() => nmi.stop());
    await waitNmiReady(lab, probePort);
    const nmiPid = await pidOfNmi(lab.nodeNs);
    return {
      h,
      lab,
      nmi,
      nmiPid,
      async pod(name, labels, opts = {}) {
        const p = await lab.addPod(name);
        await h.createPod(name, labels, { ip: p.ip, ...opts });
        return p;
      },
      stallApiserver(stalled) {
        if (!paused) throw new Error("start the node with pausableApiserver");
        Deno.kill(paused.relay.pid, stalled ? "SIGSTOP" : "SIGCONT");
      },
      close: cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** A token request from a pod (curl through 169.254.169.254, Metadata header set): status, body, seconds. */
export function tokenFromPod(
  pod: LabPod,
  opts: { resource?: string; timeoutSeconds?: number } = {},
): Promise<{ status?: number; body: string; seconds: number }> {
  return curlToken(pod, { headers: ["Metadata: true"], ...opts });
}

/** Whether a process is alive, and its open file descriptors and resident memory. */
export async function processState(pid: number): Promise<{ alive: boolean; fds: number; rssMiB: number }> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    let fds = 0;
    for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) fds++;
    return { alive: !/State:\s+Z/.test(status), fds, rssMiB: rss };
  } catch {
    return { alive: false, fds: 0, rssMiB: 0 };
  }
}

interface Attack {
  /** Everything the script printed so far (stdout and stderr). */
  readonly output: string;
  /** Waits until the output matches `pattern`; returns the match. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  stop(): Promise<void>;
}

/** Runs an attack script (Deno, --allow-net) inside a pod's namespace; `stop()` kills it. */
export async function attackFrom(pod: LabPod, script: string, args: string[] = []): Promise<Attack> {
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(file, script);
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", pod.ns, Deno.execPath(), "run", "--allow-net", file, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const text of s.pipeThrough(new TextDecoderStream())) output += text;
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(() => {});
  return {
    get output() {
      return output;
    },
    async waitFor(pattern, timeoutMs = 120_000) {
      const end = performance.now() + timeoutMs;
      for (;;) {
        const m = pattern.exec(output);
        if (m) return m;
        if (performance.now() > end) throw new Error(`attack output never matched ${pattern}:\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
      await pumps;
      await Deno.remove(file).catch(() => {});
    },
  };
}
