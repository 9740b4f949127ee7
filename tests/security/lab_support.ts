// Shared by the lab's iptables tests (tests/e2e/iptables.test.ts, tests/security/lab_*.test.ts): NMI's
// default redirect, NMI's host commands run inside a lab node, stand-in servers and a pod's view of a URL.

import { HostNetwork, runCommand } from "../../nmi/iptables/apply.ts";
import type { RedirectSpec } from "../../nmi/iptables/rules.ts";
import type { Lab, LabPod } from "../../scripts/sandbox/netns.ts";

const WRAPPER = new URL("../../nmi/iptables/iptables-wrapper.sh", import.meta.url).pathname;

/**
 * A PATH whose iptables, iptables-save and iptables-restore are the NMI image's wrapper
 * (nmi/iptables/iptables-wrapper.sh), as the Dockerfile installs it; `remove` deletes the links.
 */
export async function wrapperPath(): Promise<{ path: string; remove(): Promise<void> }> {
  const bin = await Deno.makeTempDir({ prefix: "iptables-wrapper-" });
  for (const name of ["iptables", "iptables-save", "iptables-restore"]) {
    await Deno.symlink(WRAPPER, `${bin}/${name}`);
  }
  return { path: `${bin}:${Deno.env.get("PATH")}`, remove: () => Deno.remove(bin, { recursive: true }) };
}

/** NMI's defaults: 169.254.169.254:80 to 127.0.0.1:2579. */
export const defaultRedirect: RedirectSpec = {
  metadataIp: "169.254.169.254",
  metadataPort: 80,
  targetIp: "127.0.0.1",
  targetPort: 2579,
};

/** NMI's host commands (iptables-save, iptables-restore, sysctl, conntrack) inside the lab's node. */
export function hostIn(lab: Lab): HostNetwork {
  return new HostNetwork((cmd, args, stdin) =>
    runCommand("ip", ["netns", "exec", lab.nodeNs, cmd, ...args], stdin)
  );
}

/** An HTTP server in the node namespace answering every request with `body`. */
export function standIn(lab: Lab, ip: string, port: number, body: string): Promise<void> {
  lab.spawn(lab.nodeNs, [
    Deno.execPath(),
    "eval",
    `Deno.serve({ hostname: "${ip}", port: ${port}, onListen() {} }, () => new Response("${body}"))`,
  ]);
  return lab.waitForPort(lab.nodeNs, ip, port);
}

/**
 * What `url` answers inside `ns`: curl's output (the body, or what `curlArgs` such as `-w` ask for), or how
 * curl failed (7 refused, 28 timed out).
 */
export async function fetchIn(
  ns: string,
  url: string,
  timeoutSeconds = 2,
  curlArgs: string[] = [],
): Promise<string> {
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", ns, "curl", "-s", "-m", String(timeoutSeconds), ...curlArgs, url],
    stdout: "piped",
    stderr: "null",
  }).output();
  return out.success ? new TextDecoder().decode(out.stdout) : `curl exit ${out.code}`;
}

/**
 * Turns a pod into a CVE-2020-8558 attacker: its own loopback gone, 127.0.0.1 routed to its gateway, so
 * its packets to 127.0.0.1 arrive at the node (what a pod with NET_RAW can do with crafted packets).
 */
export async function routeLoopbackToNode(lab: Lab, pod: LabPod): Promise<void> {
  const gateway = pod.ip.replace(/\.\d+$/, ".1");
  for (
    const argv of [
      ["ip", "addr", "del", "127.0.0.1/8", "dev", "lo"],
      ["ip", "link", "set", "lo", "down"],
      ["sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"],
      ["ip", "route", "add", "127.0.0.1/32", "via", gateway],
    ]
  ) await lab.exec(pod.ns, argv);
}
