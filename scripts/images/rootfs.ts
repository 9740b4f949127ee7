// Root filesystems made of this machine's own files (Debian packages' binaries and their shared libraries),
// the pieces every local image is built from: no registry, no base image.

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** The shared libraries `ldd` names for `bin` (absolute paths, the loader included). */
export function parseLdd(text: string): string[] {
  const libs = new Set<string>();
  for (const line of text.split("\n")) {
    const arrow = /=>\s*(\/\S+)/.exec(line);
    const bare = /^\s*(\/\S+)\s+\(/.exec(line);
    const path = arrow?.[1] ?? bare?.[1];
    if (path) libs.add(path);
  }
  return [...libs].sort();
}

/** Copies `src` to `<rootfs><dest ?? src>`, following a symlink to its file but keeping the name. */
export async function copyInto(rootfs: string, src: string, dest = src): Promise<void> {
  const to = `${rootfs}${dest}`;
  await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
  const info = await Deno.stat(src);
  if (info.isDirectory) {
    await run("cp", ["-a", "-L", `${src}/.`, to]);
    return;
  }
  await Deno.copyFile(src, to);
  await Deno.chmod(to, info.mode ?? 0o755);
}

/** Copies each binary and every library it links to. */
export async function copyBinaries(rootfs: string, bins: { src: string; dest?: string }[]): Promise<void> {
  const libs = new Set<string>();
  for (const b of bins) {
    await copyInto(rootfs, b.src, b.dest);
    for (const lib of parseLdd(await run("ldd", [b.src]).catch(() => ""))) libs.add(lib);
  }
  for (const lib of libs) await copyInto(rootfs, lib);
}

/** /etc basics: users, groups, hosts, protocols, and the system CA bundle (plus `extraCaPem`). */
export async function baseEtc(rootfs: string, extraCaPem = ""): Promise<void> {
  await Deno.mkdir(`${rootfs}/etc/ssl/certs`, { recursive: true });
  await Deno.mkdir(`${rootfs}/tmp`, { recursive: true, mode: 0o1777 });
  await Deno.writeTextFile(
    `${rootfs}/etc/passwd`,
    "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
  );
  await Deno.writeTextFile(`${rootfs}/etc/group`, "root:x:0:\nnonroot:x:65532:\n");
  await Deno.writeTextFile(`${rootfs}/etc/nsswitch.conf`, "hosts: files dns\n");
  await copyInto(rootfs, "/etc/protocols");
  await copyInto(rootfs, "/etc/services");
  const system = await Deno.readTextFile("/etc/ssl/certs/ca-certificates.crt").catch(() => "");
  await Deno.writeTextFile(`${rootfs}/etc/ssl/certs/ca-certificates.crt`, system + extraCaPem);
}
