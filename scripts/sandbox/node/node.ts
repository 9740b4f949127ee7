// One real node: containerd and kubelet in the node's own network namespace and a private mount namespace
// (node-run.sh), pods on a bridge CNI network, the apiserver and other loopback services of the machine
// mirrored into the node (node_net.ts). Everything it makes is written to a NodeRecord first, so stopNode()
// can undo it by pid, cgroup and namespace name even after a failed start, and the logs stay in `logDir`.

import { allowPodRelay, createNode, mirror, type NetPlan, type NetRecorder } from "../node_net.ts";
import { alive, spawnDetached, stopPid, tailOf, waitFor } from "../detached.ts";
import { cniConfig, containerdConfig, kubeletConfig, type NodeLayout, validNodeName } from "./config.ts";
import { createCgroup, killCgroup, removeCgroup } from "./cgroups.ts";
import { type ClusterAccess, identityKubeconfig } from "./identity.ts";
import { issueCert } from "../pki.ts";
import type { NodeBinaries } from "./binaries.ts";

const RUNNER = new URL("./node-run.sh", import.meta.url).pathname;

/** Real nodes' names and ranges: apart from the sandbox's and the e2e tests' (node_net.ts). */
export const REAL_NODE_NET: NetPlan = {
  nsPrefix: "aadkn",
  linkPrefix: "akn",
  hostNet: "10.252",
  podNet: "10.246",
};

/**
 * Where services of the machine that pods must reach by a real address live (the Azure emulator, whose
 * discovery documents name its own URL): a link of the machine at `<hostNet>.0.1` (see cluster.ts).
 */
const LAB_SERVICES_NET = `${REAL_NODE_NET.hostNet}.0.0/30`;

/** The `kubernetes` Service address kubelet tells pods (10.96.0.0/16 is the apiserver's service range). */
const KUBERNETES_SERVICE = { ip: "10.96.0.1", port: 443 };

interface NodeOptions {
  name: string;
  /** 1..250: picks the node's link and pod subnets. */
  index: number;
  /** State directory (removed by stopNode). */
  dir: string;
  /** Logs of containerd, kubelet and the relays (kept by stopNode). */
  logDir: string;
  cluster: ClusterAccess;
  bins: NodeBinaries;
  pauseImage: string;
  /** The node's `spec.providerID` (e.g. its emulated scale-set instance), for MIC. */
  providerID?: string;
  /** NoSchedule taints the node registers with (e.g. NMI's start-up taint, which NMI removes). */
  startupTaints?: string[];
  /** Loopback ports of this machine to mirror into the node, e.g. an IMDS at 169.254.169.254:80. */
  mirrors?: { port: number; as?: { ip: string; port: number } }[];
  /**
   * Files that appear at these paths under /etc inside the node only (e.g. /etc/kubernetes/azure.json),
   * given where the mirrored ports landed: `relays[port]` is the port on `hostIp` that pods reach it at.
   */
  files?: (net: { hostIp: string; relays: Record<string, number> }) => Record<string, string>;
}

export interface NodeRecord {
  name: string;
  ns: string;
  nodeIp: string;
  hostIp: string;
  dir: string;
  logDir: string;
  containerdSocket: string;
  /** The node-run.sh process (its pid is also the key to the node's mount namespace). */
  runnerPid?: number;
  /** Relays and forwarders. */
  helperPids: number[];
  namespaces: string[];
  /** containerd, kubelet and shims; and every pod. */
  cgroups: string[];
}

/** Starts the node and waits until the apiserver reports it Ready. `record` is filled in as things are made. */
export async function startNode(
  o: NodeOptions,
  record: (r: NodeRecord) => Promise<void>,
): Promise<NodeRecord> {
  if (!validNodeName(o.name)) throw new Error(`node name '${o.name}' must be a DNS label of 1-15 characters`);
  if (!Number.isInteger(o.index) || o.index < 1 || o.index > 250) {
    throw new Error("node index must be 1..250");
  }
  const id = `${o.index}`;
  const r: NodeRecord = {
    name: o.name,
    ns: `${REAL_NODE_NET.nsPrefix}-${id}-node`,
    nodeIp: `${REAL_NODE_NET.hostNet}.${o.index}.2`,
    hostIp: `${REAL_NODE_NET.hostNet}.${o.index}.1`,
    dir: o.dir,
    logDir: o.logDir,
    containerdSocket: `${o.dir}/containerd.sock`,
    helperPids: [],
    namespaces: [],
    cgroups: [`aadnode-${o.name}-sys`, `aadnode-${o.name}`],
  };
  await Deno.mkdir(o.dir, { recursive: true });
  await Deno.mkdir(o.logDir, { recursive: true });
  await record(r);
  const rec: NetRecorder = {
    namespace: (n) => r.namespaces.push(n),
    spawn: (what, argv) => {
      r.helperPids.push(spawnDetached(argv, `${o.logDir}/${what.replaceAll(/[^a-z0-9.]+/gi, "_")}.log`));
    },
  };
  try {
    await createNode(id, o.index, rec, REAL_NODE_NET);
    await record(r);
    const relays = await wireNetwork(o, r, rec);
    await record(r);
    for (const c of r.cgroups) await createCgroup(c);
    await writeNodeFiles(o, r, o.files?.({ hostIp: r.hostIp, relays }) ?? {});
    r.runnerPid = spawnDetached(
      [
        "nsenter",
        `--net=/run/netns/${r.ns}`,
        "--",
        "unshare",
        "-m",
        "--propagation",
        "private",
        "--",
        "bash",
        RUNNER,
        o.dir,
      ],
      `${o.logDir}/node-run.log`,
    );
    await record(r);
    await waitFor(
      async () => {
        if (!alive(r.runnerPid!)) throw new Error("node-run.sh exited");
        return await nodeReady(o, r);
      },
      60_000,
      async () =>
        `node ${o.name} not Ready in 60 s\n--- node-run:\n${await tailOf(
          `${o.logDir}/node-run.log`,
        )}\n--- kubelet:\n${await tailOf(
          `${o.logDir}/kubelet.log`,
        )}\n--- containerd:\n${await tailOf(`${o.logDir}/containerd.log`)}`,
    );
  } catch (e) {
    await stopNode(r).catch(() => {});
    throw e;
  }
  return r;
}

/** The apiserver, its Service address, and whatever else the caller wants reachable inside the node. */
async function wireNetwork(o: NodeOptions, r: NodeRecord, rec: NetRecorder): Promise<Record<string, number>> {
  const node = { id: `${o.index}`, plan: REAL_NODE_NET, ns: r.ns, hostIp: r.hostIp, nodeIp: r.nodeIp };
  const relays: Record<string, number> = {};
  const apiPort = Number(new URL(o.cluster.server).port);
  await mirror(node, relays, apiPort, { ns: r.ns }, rec);
  // No kube-proxy here: the one Service pods need (the apiserver's) is a DNAT to its relay, for pods
  // (PREROUTING) and hostNetwork pods (OUTPUT) alike.
  const to = `${r.hostIp}:${relays[String(apiPort)]}`;
  // Pods reach the root namespace only at relays let through (node_net.ts): the apiserver's Service is one.
  await allowPodRelay(node, relays[String(apiPort)]);
  // A locally sent packet is routed before OUTPUT's DNAT: the service range needs a route to exist at all.
  // The lab's services (LAB_SERVICES_NET) are reached through the machine as well.
  for (const dst of ["10.96.0.0/16", LAB_SERVICES_NET]) {
    await sh("nsenter", [`--net=/run/netns/${r.ns}`, "ip", "route", "add", dst, "via", r.hostIp]);
  }
  for (const chain of ["PREROUTING", "OUTPUT"]) {
    await sh("nsenter", [
      `--net=/run/netns/${r.ns}`,
      "iptables",
      "-t",
      "nat",
      "-A",
      chain,
      "-d",
      `${KUBERNETES_SERVICE.ip}/32`,
      "-p",
      "tcp",
      "--dport",
      String(KUBERNETES_SERVICE.port),
      "-j",
      "DNAT",
      "--to-destination",
      to,
    ]);
  }
  for (const m of o.mirrors ?? []) await mirror(node, relays, m.port, { ns: r.ns, as: m.as }, rec);
  // kube-proxy's part on a real node: DNAT to a loopback address (NMI's 127.0.0.1:2579) needs it, and a
  // hostNetwork container sees /proc/sys read-only, so NMI can check it but not set it.
  await sh("nsenter", [`--net=/run/netns/${r.ns}`, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"]);
  return relays;
}

async function writeNodeFiles(o: NodeOptions, r: NodeRecord, files: Record<string, string>): Promise<void> {
  const pki = `${o.dir}/pki`;
  const layout: NodeLayout = {
    name: o.name,
    dir: o.dir,
    containerdSocket: r.containerdSocket,
    podCidr: `${REAL_NODE_NET.podNet}.${o.index}.0/24`,
    cgroupRoot: `/${r.cgroups[1]}`,
    pauseImage: o.pauseImage,
    nodeIp: r.nodeIp,
    resolvConf: `${o.dir}/resolv.conf`,
  };
  const ca = { certPath: o.cluster.caCertPath, keyPath: o.cluster.caKeyPath };
  const serving = await issueCert(ca, pki, "kubelet-serving", {
    commonName: `system:node:${o.name}`,
    organizations: ["system:nodes"],
    dnsNames: [o.name],
    ipAddresses: [r.nodeIp],
    usage: "server",
  });
  const kubeconfig = await identityKubeconfig(o.cluster, pki, "kubelet", `system:node:${o.name}`, [
    "system:nodes",
  ]);
  await Deno.copyFile(kubeconfig, `${o.dir}/kubelet.kubeconfig`);
  const kubelet = JSON.parse(
    kubeletConfig(layout, { ca: o.cluster.caCertPath, cert: serving.certPath, key: serving.keyPath }),
  );
  if (o.providerID) kubelet.providerID = o.providerID;
  if (o.startupTaints?.length) {
    kubelet.registerWithTaints = o.startupTaints.map((key) => ({ key, effect: "NoSchedule" }));
  }
  await Deno.writeTextFile(`${o.dir}/kubelet.json`, JSON.stringify(kubelet, null, 2));
  await Deno.writeTextFile(`${o.dir}/containerd.toml`, containerdConfig(layout));
  await Deno.mkdir(`${o.dir}/cni`, { recursive: true });
  await Deno.writeTextFile(`${o.dir}/cni/10-bridge.conflist`, cniConfig(layout));
  // No cluster DNS: pods resolve nothing but what the machine's hosts file says.
  await Deno.writeTextFile(layout.resolvConf, "nameserver 127.0.0.1\noptions ndots:1\n");
  for (const [path, text] of Object.entries(files)) {
    if (!path.startsWith("/etc/")) throw new Error(`node files go under /etc, not ${path}`);
    const dest = `${o.dir}/overlay/_etc/upper/${path.slice("/etc/".length)}`;
    await Deno.mkdir(dest.slice(0, dest.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(dest, text);
  }
  const env = {
    NODE_NAME: o.name,
    NODE_IP: r.nodeIp,
    CONTAINERD_BIN_DIR: o.bins.containerdBinDir,
    NODE_BIN_DIR: o.bins.nodeBinDir,
    SYS_CGROUP: r.cgroups[0],
    LOG_DIR: o.logDir,
    CONTAINERD_SOCKET: r.containerdSocket,
  };
  await Deno.writeTextFile(
    `${o.dir}/node.env`,
    Object.entries(env).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("\n") + "\n",
  );
}

async function nodeReady(o: NodeOptions, r: NodeRecord): Promise<boolean> {
  const kubeconfig = `${r.dir}/kubelet.kubeconfig`;
  const text = await Deno.readTextFile(kubeconfig);
  const server = /server: "([^"]+)"/.exec(text)![1];
  const pem = (field: string) => atob(new RegExp(`${field}: (\\S+?)[,}]`).exec(text)![1]);
  const client = Deno.createHttpClient({
    caCerts: [pem("certificate-authority-data")],
    cert: pem("client-certificate-data"),
    key: pem("client-key-data"),
  });
  try {
    const res = await fetch(`${server}/api/v1/nodes/${o.name}`, { client });
    if (!res.ok) {
      await res.body?.cancel();
      return false;
    }
    const node = await res.json() as { status?: { conditions?: { type: string; status: string }[] } };
    return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
  } finally {
    client.close();
  }
}

/** Restarts the node's kubelet or containerd in place (node-run.sh's signals); pods and shims stay. */
export function restartComponent(r: NodeRecord, which: "kubelet" | "containerd"): void {
  if (r.runnerPid === undefined || !alive(r.runnerPid)) throw new Error(`node ${r.name} is not running`);
  Deno.kill(r.runnerPid, which === "kubelet" ? "SIGUSR1" : "SIGUSR2");
}

/** Stops everything the record names; the state directory goes, the logs stay. Safe to call twice. */
export async function stopNode(r: NodeRecord): Promise<void> {
  const errors: string[] = [];
  // Everything of the node is in its two cgroups (node-run.sh, kubelet, containerd, shims; the pods): a
  // teardown needs no graceful stop, and SIGKILL by cgroup leaves nothing that re-parented itself.
  for (const c of r.cgroups) {
    await killCgroup(c).catch((e) => errors.push(String(e)));
  }
  if (r.runnerPid !== undefined) await stopPid(r.runnerPid, 2_000);
  await Promise.all(r.helperPids.map((pid) => stopPid(pid, 2_000)));
  for (const c of [...r.cgroups].reverse()) await removeCgroup(c).catch((e) => errors.push(String(e)));
  for (const ns of r.namespaces) {
    await sh("ip", ["netns", "del", ns]).catch((e) => {
      if (!/No such file/.test(String(e))) errors.push(String(e));
    });
  }
  // Host link of the node: deleted with the namespace's peer, but make sure.
  await sh("ip", ["link", "del", `${REAL_NODE_NET.linkPrefix}${r.ns.split("-")[1]}h`]).catch(() => {});
  await Deno.remove(r.dir, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) errors.push(String(e));
  });
  if (errors.length) throw new Error(`node ${r.name} teardown: ${errors.join("; ")}`);
}

async function sh(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout);
}
