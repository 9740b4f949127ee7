// A node and its pods as Linux network namespaces for the e2e tests: the wiring of node_net.ts (shared with
// the sandbox), owned by one test. Every namespace and process a Lab makes is removed by name and pid in
// close(), also after a failed test.

import {
  addPod,
  createNode,
  mirror,
  type NetPlan,
  type NetRecorder,
  type NodeNet,
  waitPort,
} from "./node_net.ts";

/** Apart from the sandbox's ranges and names, so a test run and a running sandbox never collide. */
const TEST_NET: NetPlan = { nsPrefix: "aad", linkPrefix: "aad", hostNet: "10.250", podNet: "10.244" };

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
  readonly pods: LabPod[] = [];
  #node!: NodeNet;
  #children: Deno.ChildProcess[] = [];
  #namespaces: string[] = [];
  /** Root-namespace relay port per mirrored loopback port. */
  #relays: Record<string, number> = {};
  #recorder: NetRecorder = {
    namespace: (name) => this.#namespaces.push(name),
    spawn: (_what, argv) => {
      this.#children.push(
        new Deno.Command(argv[0], { args: argv.slice(1), stdin: "null", stdout: "null", stderr: "inherit" })
          .spawn(),
      );
    },
  };

  private constructor(id: string) {
    this.id = id;
  }

  static async create(): Promise<Lab> {
    const lab = new Lab(Math.random().toString(36).slice(2, 8));
    try {
      lab.#node = await createNode(lab.id, 1 + Math.floor(Math.random() * 250), lab.#recorder, TEST_NET);
    } catch (e) {
      await lab.close();
      throw e;
    }
    return lab;
  }

  get nodeNs(): string {
    return this.#node.ns;
  }

  /** The root namespace's address on the node link. */
  get hostIp(): string {
    return this.#node.hostIp;
  }

  /** A pod namespace joined to the node by a veth pair; its default route goes through the node. */
  async addPod(name: string): Promise<LabPod> {
    const made = await addPod(this.#node, this.pods.length + 1, this.#recorder);
    const pod = { name, ...made };
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
   * Makes 127.0.0.1:port of the root namespace reachable inside `ns` (default: the node) at 127.0.0.1:port,
   * or at `as` (e.g. 169.254.169.254:80 on the node).
   */
  mirror(port: number, opts: { ns?: string; as?: { ip: string; port: number } } = {}): Promise<void> {
    return mirror(
      this.#node,
      this.#relays,
      port,
      { ns: opts.ns ?? this.nodeNs, as: opts.as },
      this.#recorder,
    );
  }

  /** The root-namespace relay port (on hostIp) behind a mirrored loopback port, if it is mirrored. */
  relayOf(port: number): number | undefined {
    return this.#relays[String(port)];
  }

  /** Waits until something accepts TCP connections at ip:port inside `ns`. */
  waitForPort(ns: string | undefined, ip: string, port: number, timeoutMs = 15_000): Promise<void> {
    return waitPort(ns, ip, port, timeoutMs);
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
