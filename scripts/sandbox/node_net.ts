// A node and its pods as Linux network namespaces, the wiring both the sandbox (which outlives the command)
// and the e2e tests' Lab (netns.ts, which lives as long as a test) use:
//
//   root ns (apiserver, emulator on 127.0.0.1) --veth <host>.N.1/.2-- node ns --veth <pods>.I.1/.2-- pod ns I
//
// The node namespace plays a hostNetwork node: NMI and the node's IMDS run there. Loopback ports of the root
// namespace are mirrored into a namespace at the same addresses by TCP forwarders (tcp_forward.ts), so TLS
// names and kubeconfigs need no change. As on an Azure node, where IMDS answers only at 169.254.169.254, a
// pod reaches the emulator's IMDS only through that address on the node (and so through NMI's rules): the
// node forwards pod traffic to the root namespace only for the relays mirrored into a pod (ARM, Azure AD),
// never for the node's own (IMDS, apiserver). Everything is named from `id` and the plan's prefixes, and
// reported to the caller's recorder as it is made, so a failure half-way can still be undone; deleting a
// namespace removes its links and its iptables rules with it.

const FORWARDER = new URL("./tcp_forward.ts", import.meta.url).pathname;

async function sh(cmd: string, args: string[], allowFail = false): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success && !allowFail) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout);
}

const inNs = (ns: string, argv: string[]) => sh("ip", ["netns", "exec", ns, ...argv]);

/** Names and address ranges, so the sandbox and concurrent test runs never collide. */
export interface NetPlan {
  /** Namespaces are `<nsPrefix>-<id>-node` and `<nsPrefix>-<id>-p<i>`. */
  nsPrefix: string;
  /** Links are `<linkPrefix><id>h|n|p<i>|q<i>` (at most 15 characters). */
  linkPrefix: string;
  /** First two octets of the root<->node /30s and of the pods' /24s. */
  hostNet: string;
  podNet: string;
}

export const SANDBOX_NET: NetPlan = {
  nsPrefix: "aadsbx",
  linkPrefix: "sbx",
  hostNet: "10.251",
  podNet: "10.245",
};

export interface NodeNet {
  id: string;
  plan: NetPlan;
  ns: string;
  hostIp: string;
  nodeIp: string;
}

/** Takes what is made as it is made: namespaces to delete, and long-running processes to start and stop. */
export interface NetRecorder {
  namespace(name: string): void;
  /** Starts a process that must live until the network is torn down (a forwarder). */
  spawn(what: string, argv: string[]): void;
}

export async function createNode(
  id: string,
  subnet: number,
  rec: NetRecorder,
  plan = SANDBOX_NET,
): Promise<NodeNet> {
  const node: NodeNet = {
    id,
    plan,
    ns: `${plan.nsPrefix}-${id}-node`,
    hostIp: `${plan.hostNet}.${subnet}.1`,
    nodeIp: `${plan.hostNet}.${subnet}.2`,
  };
  await sh("ip", ["netns", "add", node.ns]);
  rec.namespace(node.ns);
  const [h, n] = [`${plan.linkPrefix}${id}h`, `${plan.linkPrefix}${id}n`];
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
      // Pods reach the root namespace only at the relays mirrored into them (allowPodRelay), not the IMDS
      // relay behind the node's 169.254.169.254 nor anything else listening there.
      ["iptables", "-A", "FORWARD", "-s", `${plan.podNet}.0.0/16`, "-d", node.hostIp, "-j", "REJECT"],
      // Pod egress to the root namespace (mirrored services) leaves with the node's address.
      [
        "iptables",
        "-t",
        "nat",
        "-A",
        "POSTROUTING",
        "-s",
        `${plan.podNet}.0.0/16`,
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
  const { plan } = node;
  const ns = `${plan.nsPrefix}-${node.id}-p${index}`;
  await sh("ip", ["netns", "add", ns]);
  rec.namespace(ns);
  const [nodeSide, podSide] = [
    `${plan.linkPrefix}${node.id}p${index}`,
    `${plan.linkPrefix}${node.id}q${index}`,
  ];
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
  await inNs(node.ns, ["ip", "addr", "add", `${plan.podNet}.${index}.1/24`, "dev", nodeSide]);
  await inNs(node.ns, ["ip", "link", "set", nodeSide, "up"]);
  const ip = `${plan.podNet}.${index}.2`;
  for (
    const argv of [
      ["ip", "link", "set", "lo", "up"],
      ["ip", "addr", "add", `${ip}/24`, "dev", podSide],
      ["ip", "link", "set", podSide, "up"],
      ["ip", "route", "add", "default", "via", `${plan.podNet}.${index}.1`],
    ]
  ) await inNs(ns, argv);
  return { ns, ip };
}

/** Whether something accepts TCP connections at ip:port (inside `ns` when given). */
async function portOpen(ns: string | undefined, ip: string, port: number): Promise<boolean> {
  const bash = ["bash", "-c", `exec 3<>/dev/tcp/${ip}/${port}`];
  const out = await new Deno.Command(ns ? "ip" : "bash", {
    args: ns ? ["netns", "exec", ns, ...bash] : bash.slice(1),
    stdout: "null",
    stderr: "null",
  }).output();
  return out.success;
}

/** Waits until something accepts TCP connections at ip:port (inside `ns` when given). */
export async function waitPort(
  ns: string | undefined,
  ip: string,
  port: number,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await portOpen(ns, ip, port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${ip}:${port} in ${ns ?? "the root namespace"} after ${timeoutMs} ms`);
}

/**
 * Makes 127.0.0.1:port of the root namespace reachable inside `ns` at `as` (default 127.0.0.1:port): a
 * relay in the root namespace on the node link (one per port, reused through `relays`), and a forwarder in
 * `ns`. Pods reach the relay through the node, which masquerades them like a real node does.
 */
export async function mirror(
  node: NodeNet,
  relays: Record<string, number>,
  port: number,
  opts: { ns: string; as?: { ip: string; port: number } },
  rec: NetRecorder,
): Promise<void> {
  const as = opts.as ?? { ip: "127.0.0.1", port };
  let relay = relays[String(port)];
  if (relay === undefined) {
    relay = 20000 + Math.floor(Math.random() * 20000);
    relays[String(port)] = relay;
    rec.spawn(`relay ${port}`, [
      Deno.execPath(),
      "run",
      "--allow-net",
      FORWARDER,
      `${node.hostIp}:${relay}`,
      `127.0.0.1:${port}`,
    ]);
    await waitPort(undefined, node.hostIp, relay);
  }
  if (opts.ns !== node.ns) await allowPodRelay(node, relay);
  rec.spawn(`forward ${opts.ns} ${as.ip}:${as.port}`, [
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
  ]);
  await waitPort(opts.ns, as.ip, as.port);
}

/** Lets pods through the node to one relay in the root namespace (once per relay, ahead of the REJECT). */
export async function allowPodRelay(node: NodeNet, relay: number): Promise<void> {
  const rule = [
    "FORWARD",
    "-s",
    `${node.plan.podNet}.0.0/16`,
    "-d",
    node.hostIp,
    "-p",
    "tcp",
    "--dport",
    String(relay),
  ];
  const present = await new Deno.Command("ip", {
    args: ["netns", "exec", node.ns, "iptables", "-C", ...rule, "-j", "ACCEPT"],
    stdout: "null",
    stderr: "null",
  }).output();
  if (!present.success) {
    await inNs(node.ns, ["iptables", "-I", ...rule.slice(0, 1), "1", ...rule.slice(1), "-j", "ACCEPT"]);
  }
}
