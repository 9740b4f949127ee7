// The sandbox's node and pods as network namespaces that outlive the command (the e2e tests' Lab, in
// netns.ts, lives only as long as a test). Same wiring:
//
//   root ns (apiserver, emulator on 127.0.0.1) --veth 10.251.N.1/.2-- node ns --veth 10.245.I.1/.2-- pod ns I
//
// Everything made here is named from `id`, and the caller records the names and forwarder pids so that
// `sandbox down` removes them. Deleting a namespace removes its links and its iptables rules with it.

import { spawnDetached } from "./detached.ts";

const FORWARDER = new URL("./tcp_forward.ts", import.meta.url).pathname;

async function sh(cmd: string, args: string[], allowFail = false): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success && !allowFail) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout);
}

export const inNs = (ns: string, argv: string[]) => sh("ip", ["netns", "exec", ns, ...argv]);

export interface NodeNet {
  id: string;
  ns: string;
  hostIp: string;
  nodeIp: string;
}

/** Records what was made, as it is made, so a failure half-way can still be undone. */
export interface NetRecorder {
  namespace(name: string): void;
  pid(what: string, pid: number): void;
}

export async function createNode(id: string, subnet: number, rec: NetRecorder): Promise<NodeNet> {
  const node: NodeNet = {
    id,
    ns: `aadsbx-${id}-node`,
    hostIp: `10.251.${subnet}.1`,
    nodeIp: `10.251.${subnet}.2`,
  };
  await sh("ip", ["netns", "add", node.ns]);
  rec.namespace(node.ns);
  const [h, n] = [`sbx${id}h`, `sbx${id}n`];
  await sh("ip", ["link", "add", h, "type", "veth", "peer", "name", n, "netns", node.ns]);
  await sh("ip", ["addr", "add", `${node.hostIp}/30`, "dev", h]);
  await sh("ip", ["link", "set", h, "up"]);
  for (
    const argv of [
      ["ip", "addr", "add", `${node.nodeIp}/30`, "dev", n],
      ["ip", "link", "set", n, "up"],
      ["ip", "link", "set", "lo", "up"],
      // The metadata address lives on the node, as on an Azure VM.
      ["ip", "addr", "add", "169.254.169.254/32", "dev", "lo"],
      ["sysctl", "-qw", "net.ipv4.ip_forward=1"],
      // A real node tracks connections from boot (kube-proxy / CNI rules); give this one such a rule.
      ["iptables", "-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
      // Pod egress to the root namespace (mirrored services) leaves with the node's address.
      [
        "iptables",
        "-t",
        "nat",
        "-A",
        "POSTROUTING",
        "-s",
        "10.245.0.0/16",
        "-d",
        node.hostIp,
        "-j",
        "MASQUERADE",
      ],
    ]
  ) await inNs(node.ns, argv);
  return node;
}

/** A pod namespace joined to the node; its default route goes through the node. */
export async function addPod(
  node: NodeNet,
  index: number,
  rec: NetRecorder,
): Promise<{ ns: string; ip: string }> {
  const ns = `aadsbx-${node.id}-p${index}`;
  await sh("ip", ["netns", "add", ns]);
  rec.namespace(ns);
  const [nodeSide, podSide] = [`sbx${node.id}p${index}`, `sbx${node.id}q${index}`];
  await sh("ip", [
    "link",
    "add",
    nodeSide,
    "netns",
    node.ns,
    "type",
    "veth",
    "peer",
    "name",
    podSide,
    "netns",
    ns,
  ]);
  await inNs(node.ns, ["ip", "addr", "add", `10.245.${index}.1/24`, "dev", nodeSide]);
  await inNs(node.ns, ["ip", "link", "set", nodeSide, "up"]);
  const ip = `10.245.${index}.2`;
  for (
    const argv of [
      ["ip", "link", "set", "lo", "up"],
      ["ip", "addr", "add", `${ip}/24`, "dev", podSide],
      ["ip", "link", "set", podSide, "up"],
      ["ip", "route", "add", "default", "via", `10.245.${index}.1`],
    ]
  ) await inNs(ns, argv);
  return { ns, ip };
}

/** Whether something accepts TCP connections at ip:port (inside `ns` when given). */
export async function portOpen(ns: string | undefined, ip: string, port: number): Promise<boolean> {
  const bash = ["bash", "-c", `exec 3<>/dev/tcp/${ip}/${port}`];
  const out = await new Deno.Command(ns ? "ip" : "bash", {
    args: ns ? ["netns", "exec", ns, ...bash] : bash.slice(1),
    stdout: "null",
    stderr: "null",
  }).output();
  return out.success;
}

async function waitPort(ns: string | undefined, ip: string, port: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (await portOpen(ns, ip, port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${ip}:${port} in ${ns ?? "the root namespace"}`);
}

/**
 * Makes 127.0.0.1:port of the root namespace reachable inside `ns` at `as` (default 127.0.0.1:port): a
 * relay in the root namespace on the node link (one per port, reused through `relays`), and a forwarder in
 * `ns`. Both are detached processes whose pids go to the recorder.
 */
export async function mirror(
  node: NodeNet,
  relays: Record<string, number>,
  port: number,
  opts: { ns: string; as?: { ip: string; port: number }; logDir: string },
  rec: NetRecorder,
): Promise<void> {
  const as = opts.as ?? { ip: "127.0.0.1", port };
  let relay = relays[String(port)];
  if (relay === undefined) {
    relay = 20000 + Math.floor(Math.random() * 20000);
    relays[String(port)] = relay;
    rec.pid(
      `relay ${port}`,
      spawnDetached(
        [Deno.execPath(), "run", "--allow-net", FORWARDER, `${node.hostIp}:${relay}`, `127.0.0.1:${port}`],
        `${opts.logDir}/forwarders.log`,
      ),
    );
    await waitPort(undefined, node.hostIp, relay);
  }
  rec.pid(
    `forward ${opts.ns} ${as.ip}:${as.port}`,
    spawnDetached(
      [
        "ip",
        "netns",
        "exec",
        opts.ns,
        Deno.execPath(),
        "run",
        "--allow-net",
        FORWARDER,
        `${as.ip}:${as.port}`,
        `${node.hostIp}:${relay}`,
      ],
      `${opts.logDir}/forwarders.log`,
    ),
  );
  await waitPort(opts.ns, as.ip, as.port);
}
