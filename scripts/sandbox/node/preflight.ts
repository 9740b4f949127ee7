// Why a real node cannot run on this machine, or undefined when it can: one line a skipped test prints.

import { netnsUnavailable } from "../netns.ts";

async function has(bin: string): Promise<boolean> {
  return (await new Deno.Command("sh", { args: ["-c", `command -v ${bin}`], stdout: "null" }).output())
    .success;
}

export async function realNodeUnavailable(): Promise<string | undefined> {
  const netns = await netnsUnavailable();
  if (netns) return netns;
  for (const bin of ["nsenter", "unshare", "runc", "umoci", "skopeo", "go"]) {
    if (!await has(bin)) return `${bin} is not installed (deno task setup installs what a node needs)`;
  }
  if (!await has("node")) return "node (Node.js) is not installed: the SDK client image copies it";
  try {
    const probe = `/sys/fs/cgroup/pids/aadnode-probe-${Deno.pid}`;
    const base = (await Deno.stat("/sys/fs/cgroup/cgroup.controllers").then(() => true, () => false))
      ? `/sys/fs/cgroup/aadnode-probe-${Deno.pid}`
      : probe;
    await Deno.mkdir(base);
    await Deno.remove(base);
  } catch (e) {
    return `cannot create a cgroup: ${(e as Error).message}`;
  }
  return undefined;
}
