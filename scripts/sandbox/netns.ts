// A node and its pods as Linux network namespaces, for the e2e tests and the sandbox: real packets through real
// iptables:
//
//   root ns (apiserver, emulator on 127.0.0.1) --veth 10.250.N.1/.2-- node ns --veth 10.244.I.1/.2-- pod ns I
//
// The node namespace plays a hostNetwork node: NMI and the node's IMDS run there. Loopback ports of the root
// namespace (the apiserver, Azure AD, ARM) are mirrored onto the node's own 127.0.0.1 by two TCP forwarders,
// so processes in the node use the same URLs and certificates as everywhere else. Every namespace and
// process a Lab makes is removed by name and pid in close(), also after a failed test.

const FORWARDER = new URL("./tcp_forward.ts", import.meta.url).pathname;

interface ShOptions {
  allowFail?: boolean;
  env?: Record<string, string>;
}

async function sh(cmd: string, args: string[], opts: ShOptions = {}): Promise<string> {
  const out = await new Deno.Command(cmd, { args, env: opts.env, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success && !opts.allowFail) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return text;
}

/** Why network-namespace tests cannot run here, or undefined when they can. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (Deno.uid() !== 0) return "needs root (network namespaces and iptables)";
  for (const bin of ["ip", "iptables-restore", "conntrack", "sysctl"]) {
    const found = await new Deno.Command("sh", { args: ["-c", `command -v ${bin}`], stdout: "null" })
      .output();
    if (!found.success) return `${bin} is not installed (deno task setup installs it)`;
  }
  const name = `aadprobe${Math.floor(Math.random() * 1e6)}`;
  try {
    await sh("ip", ["netns", "add", name]);
  } catch (e) {
    return `cannot create a network namespace: ${(e as Error).message}`;
  }
  await sh("ip", ["netns", "del", name], { allowFail: true });
  return undefined;
}

export interface LabPod {
  name: string;
  ns: string;
  ip: string;
}

export class Lab {
  readonly id: string;
  readonly nodeNs: string;
  /** The root namespace's address on the node link, and the node's. */
  readonly hostIp: string;
  readonly nodeIp: string;
  readonly pods: LabPod[] = [];
  #children: Deno.ChildProcess[] = [];
  /** Root-namespace relay port per mirrored loopback port. */
  #relays = new Map<number, number>();
  #namespaces: string[] = [];

  private constructor(id: string, subnet: number) {
    this.id = id;
    this.nodeNs = `aad-${id}-node`;
    this.hostIp = `10.250.${subnet}.1`;
    this.nodeIp = `10.250.${subnet}.2`;
  }

  static async create(): Promise<Lab> {
    const lab = new Lab(Math.random().toString(36).slice(2, 8), 1 + Math.floor(Math.random() * 250));
    try {
      await lab.#createNode();
    } catch (e) {
      await lab.close();
      throw e;
    }
    return lab;
  }

  async #createNode(): Promise<void> {
    const ns = this.nodeNs;
    await sh("ip", ["netns", "add", ns]);
    this.#namespaces.push(ns);
    const [h, n] = [`aad${this.id}h`, `aad${this.id}n`];
    await sh("ip", ["link", "add", h, "type", "veth", "peer", "name", n]);
    await sh("ip", ["link", "set", n, "netns", ns]);
    await sh("ip", ["addr", "add", `${this.hostIp}/30`, "dev", h]);
    await sh("ip", ["link", "set", h, "up"]);
    await this.nodeExec(["ip", "addr", "add", `${this.nodeIp}/30`, "dev", n]);
    await this.nodeExec(["ip", "link", "set", n, "up"]);
    await this.nodeExec(["ip", "link", "set", "lo", "up"]);
    // The metadata address lives on the node, as on an Azure VM (the dummy link type is not available here).
    await this.nodeExec(["ip", "addr", "add", "169.254.169.254/32", "dev", "lo"]);
    await this.nodeExec(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    // A real node tracks connections from boot (kube-proxy and CNI rules match on conntrack state); a fresh
    // namespace registers conntrack only once a rule needs it, so give the node such a rule as they do.
    const tracked = ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"];
    await this.nodeExec(["iptables", "-A", "FORWARD", ...tracked]);
    // Pod egress to the root namespace (mirrored services) leaves with the node's address, as on a node.
    await this.nodeExec([
      "iptables",
      "-t",
      "nat",
      "-A",
      "POSTROUTING",
      "-s",
      "10.244.0.0/16",
      "-d",
      this.hostIp,
      "-j",
      "MASQUERADE",
    ]);
  }

  /** A pod namespace joined to the node by a veth pair; its default route goes through the node. */
  async addPod(name: string): Promise<LabPod> {
    const i = this.pods.length + 1;
    const ns = `aad-${this.id}-${name}`;
    await sh("ip", ["netns", "add", ns]);
    this.#namespaces.push(ns);
    const [nodeSide, podSide] = [`aad${this.id}p${i}`, `aad${this.id}q${i}`];
    await sh("ip", [
      "link",
      "add",
      nodeSide,
      "netns",
      this.nodeNs,
      "type",
      "veth",
      "peer",
      "name",
      podSide,
      "netns",
      ns,
    ]);
    await this.nodeExec(["ip", "addr", "add", `10.244.${i}.1/24`, "dev", nodeSide]);
    await this.nodeExec(["ip", "link", "set", nodeSide, "up"]);
    const ip = `10.244.${i}.2`;
    for (
      const args of [
        ["ip", "link", "set", "lo", "up"],
        ["ip", "addr", "add", `${ip}/24`, "dev", podSide],
        ["ip", "link", "set", podSide, "up"],
        ["ip", "route", "add", "default", "via", `10.244.${i}.1`],
      ]
    ) await sh("ip", ["netns", "exec", ns, ...args]);
    const pod = { name, ns, ip };
    this.pods.push(pod);
    return pod;
  }

  nodeExec(argv: string[]): Promise<string> {
    return sh("ip", ["netns", "exec", this.nodeNs, ...argv]);
  }

  exec(ns: string, argv: string[], opts: ShOptions = {}): Promise<string> {
    return sh("ip", ["netns", "exec", ns, ...argv], opts);
  }

  /** Starts a long-running process in a namespace; it is killed by close(). */
  spawn(
    ns: string,
    argv: string[],
    opts: { env?: Record<string, string>; stdout?: "piped" | "null" | "inherit" } = {},
  ) {
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", ns, ...argv],
      env: opts.env,
      stdin: "null",
      stdout: opts.stdout ?? "null",
      stderr: "inherit",
    }).spawn();
    this.#children.push(child);
    return child;
  }

  /**
   * Makes 127.0.0.1:port of the root namespace reachable inside `ns` (the node's or a pod's) at
   * 127.0.0.1:port, or at `as` (e.g. 169.254.169.254:80 on the node). One relay in the root namespace
   * listens on the link to the node; pods reach it through the node, which masquerades them like a real
   * node does for pod egress.
   */
  async mirror(port: number, opts: { ns?: string; as?: { ip: string; port: number } } = {}): Promise<void> {
    const ns = opts.ns ?? this.nodeNs;
    const as = opts.as ?? { ip: "127.0.0.1", port };
    let relay = this.#relays.get(port);
    if (relay === undefined) {
      relay = 20000 + Math.floor(Math.random() * 20000);
      this.#relays.set(port, relay);
      this.#children.push(
        new Deno.Command(Deno.execPath(), {
          args: ["run", "--allow-net", FORWARDER, `${this.hostIp}:${relay}`, `127.0.0.1:${port}`],
          stdin: "null",
          stdout: "null",
          stderr: "inherit",
        }).spawn(),
      );
      await this.waitForPort(undefined, this.hostIp, relay);
    }
    this.spawn(ns, [
      Deno.execPath(),
      "run",
      "--allow-net",
      FORWARDER,
      `${as.ip}:${as.port}`,
      `${this.hostIp}:${relay}`,
    ]);
    await this.waitForPort(ns, as.ip, as.port);
  }

  /** Waits until something accepts TCP connections at ip:port inside `ns`. */
  async waitForPort(ns: string | undefined, ip: string, port: number, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const bash = ["bash", "-c", `exec 3<>/dev/tcp/${ip}/${port}`];
    while (Date.now() < deadline) {
      const probe = await new Deno.Command(ns ? "ip" : bash[0], {
        args: ns ? ["netns", "exec", ns, ...bash] : bash.slice(1),
        stdout: "null",
        stderr: "null",
      }).output();
      if (probe.success) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `nothing listens on ${ip}:${port} in ${ns ?? "the root namespace"} after ${timeoutMs} ms`,
    );
  }

  async close(): Promise<void> {
    for (const child of this.#children) {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status.catch(() => {});
    }
    this.#children = [];
    for (const ns of this.#namespaces.reverse()) await sh("ip", ["netns", "del", ns], { allowFail: true });
    this.#namespaces = [];
  }
}
