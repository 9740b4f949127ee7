// Finds (building once, cached) what a real node runs: install-node.sh prints the directories.

export interface NodeBinaries {
  /** kubelet, kube-scheduler, kube-controller-manager */
  nodeBinDir: string;
  /** containerd, ctr, containerd-shim-runc-v2 */
  containerdBinDir: string;
}

/** Reads install-node.sh's `KEY=VALUE` lines. */
export function parseInstallOutput(stdout: string): NodeBinaries {
  const kv = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const m = /^([A-Z_]+)=(.+)$/.exec(line.trim());
    if (m) kv.set(m[1], m[2]);
  }
  const nodeBinDir = kv.get("NODE_BIN_DIR");
  const containerdBinDir = kv.get("CONTAINERD_BIN_DIR");
  if (!nodeBinDir || !containerdBinDir) {
    throw new Error(`install-node.sh printed no NODE_BIN_DIR / CONTAINERD_BIN_DIR:\n${stdout}`);
  }
  return { nodeBinDir, containerdBinDir };
}

export async function resolveNodeBinaries(): Promise<NodeBinaries> {
  const script = new URL("./install-node.sh", import.meta.url).pathname;
  const out = await new Deno.Command("bash", { args: [script], stdout: "piped", stderr: "inherit" }).output();
  if (!out.success) throw new Error(`node install failed (${script}); see the output above`);
  return parseInstallOutput(new TextDecoder().decode(out.stdout));
}
