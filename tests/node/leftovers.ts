// What a stopped real-node cluster may not leave: its processes, network namespaces, links, cgroups and
// mounts. Returns one line per thing found (empty when clean).

import { alive } from "../../scripts/sandbox/detached.ts";
import { hierarchies } from "../../scripts/sandbox/node/cgroups.ts";
import type { NodeRecord } from "../../scripts/sandbox/node/node.ts";

export async function leftovers(nodes: NodeRecord[]): Promise<string[]> {
  const found: string[] = [];
  const netns = new TextDecoder().decode(
    (await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" }).output()).stdout,
  );
  const mounts = await Deno.readTextFile("/proc/self/mountinfo");
  for (const n of nodes) {
    for (const pid of [n.runnerPid ?? -1, ...n.helperPids]) {
      if (pid > 0 && alive(pid)) found.push(`process ${pid}`);
    }
    for (const ns of n.namespaces) {
      if (netns.split("\n").some((l) => l.split(" ")[0] === ns)) found.push(`netns ${ns}`);
    }
    for (const c of n.cgroups) {
      for (const h of hierarchies()) {
        if (await Deno.stat(`${h}/${c}`).then(() => true, () => false)) found.push(`cgroup ${h}/${c}`);
      }
    }
    for (const line of mounts.split("\n")) if (line.includes(n.dir)) found.push(`mount ${line}`);
    await Deno.stat(n.dir).then(() => found.push(`directory ${n.dir}`), () => {});
  }
  return found;
}
