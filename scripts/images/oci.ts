// An image from a root filesystem directory, without a registry or a daemon: umoci writes an OCI layout
// (one layer, the config), skopeo turns it into a docker-archive tarball that `ctr images import` takes.

export interface ImageConfig {
  entrypoint: string[];
  cmd?: string[];
  env?: Record<string, string>;
  user?: string;
  workdir?: string;
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/** umoci config's flags for `c` (pure, so a unit test can read exactly what an image runs). */
export function umociConfigArgs(c: ImageConfig): string[] {
  const args = c.entrypoint.map((e) => `--config.entrypoint=${e}`);
  // No CMD unless asked: a base's CMD would be appended to the entrypoint as arguments.
  args.push("--clear=config.cmd");
  for (const a of c.cmd ?? []) args.push(`--config.cmd=${a}`);
  for (const [k, v] of Object.entries(c.env ?? {})) args.push(`--config.env=${k}=${v}`);
  if (c.user) args.push(`--config.user=${c.user}`);
  if (c.workdir) args.push(`--config.workingdir=${c.workdir}`);
  return args;
}

/** Builds `ref` (`name:tag`) from `rootfs` into `outTar` (docker-archive). `work` is scratch space. */
export async function buildImage(
  ref: string,
  rootfs: string,
  config: ImageConfig,
  work: string,
  outTar: string,
): Promise<void> {
  const layout = `${work}/oci`;
  await Deno.remove(layout, { recursive: true }).catch(() => {});
  const tagged = `${layout}:latest`;
  await run("umoci", ["init", "--layout", layout]);
  await run("umoci", ["new", "--image", tagged]);
  await run("umoci", ["insert", "--image", tagged, rootfs, "/"]);
  await run("umoci", ["config", "--image", tagged, ...umociConfigArgs(config)]);
  await Deno.remove(outTar).catch(() => {});
  await run("skopeo", ["copy", "--quiet", `oci:${tagged}`, `docker-archive:${outTar}:${ref}`]);
}

/** Imports tarballs into containerd's Kubernetes namespace through its socket. */
export async function importImages(ctr: string, socket: string, tars: string[]): Promise<void> {
  for (const tar of tars) await run(ctr, ["--address", socket, "-n", "k8s.io", "images", "import", tar]);
}
