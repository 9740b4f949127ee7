// A node's cgroups on the machine's hierarchies (v1: one directory per controller; v2: one tree), made
// before the node starts and removed after it stops. Teardown finds every process of a node here, whatever
// re-parented it (containerd shims outlive containerd), and never goes by process name.

const ROOT = "/sys/fs/cgroup";

/** True when the machine runs cgroup v2 alone (a single unified tree at /sys/fs/cgroup). */
function unifiedOnly(): boolean {
  try {
    Deno.statSync(`${ROOT}/cgroup.controllers`);
    return true;
  } catch {
    return false;
  }
}

/** The hierarchy roots a node's cgroup is made in: every v1 controller and a hybrid v2 tree, or v2's. */
export function hierarchies(): string[] {
  if (unifiedOnly()) return [ROOT];
  const out: string[] = [];
  // kubelet makes its cgroups in the hybrid "unified" tree too: teardown must find them there.
  for (const e of Deno.readDirSync(ROOT)) {
    if (e.isDirectory) out.push(`${ROOT}/${e.name}`);
  }
  return out.sort();
}

/** Makes `/<name>` in every hierarchy; cpuset needs its cpus and mems copied from the parent to be usable. */
export async function createCgroup(name: string): Promise<void> {
  for (const h of hierarchies()) {
    const dir = `${h}/${name}`;
    await Deno.mkdir(dir, { recursive: true });
    if (h.endsWith("/cpuset")) {
      for (const f of ["cpuset.cpus", "cpuset.mems"]) {
        await Deno.writeTextFile(`${dir}/${f}`, await Deno.readTextFile(`${h}/${f}`));
      }
    }
  }
}

/** Every pid in `/<name>` and below, in any hierarchy. */
async function cgroupPids(name: string): Promise<number[]> {
  const pids = new Set<number>();
  for (const h of hierarchies()) {
    for (const dir of await subtree(`${h}/${name}`)) {
      const text = await Deno.readTextFile(`${dir}/cgroup.procs`).catch(() => "");
      for (const line of text.split("\n")) if (line.trim()) pids.add(Number(line));
    }
  }
  return [...pids];
}

/** The directory and its descendants, deepest first (the order rmdir needs). */
async function subtree(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) out.push(...await subtree(`${dir}/${e.name}`));
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  out.push(dir);
  return out;
}

/** SIGKILLs every process under `/<name>` until none is left (or throws after `timeoutMs`). */
export async function killCgroup(name: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = await cgroupPids(name);
    if (pids.length === 0) return;
    if (Date.now() > deadline) throw new Error(`cgroup ${name} still holds pids ${pids.join(", ")}`);
    for (const pid of pids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* already gone */ }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Removes `/<name>` and everything below it from every hierarchy (after killCgroup). */
export async function removeCgroup(name: string): Promise<void> {
  for (const h of hierarchies()) {
    for (const dir of await subtree(`${h}/${name}`)) {
      await Deno.remove(dir).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    }
  }
}
