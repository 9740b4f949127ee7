// A Python runtime from this machine's own interpreter (the one a venv was made with) plus that venv's
// packages, laid out as /usr/local so Python finds its prefix from the binary's location: no base image,
// no package manager, nothing downloaded.

import { copyBinaries, copyInto, parseLdd } from "./rootfs.ts";

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** Parts of the standard library no client imports: tests, IDLE, Tk, pip's bootstrap, build config. */
const STDLIB_EXCLUDES = [
  "test",
  "idlelib",
  "tkinter",
  "turtledemo",
  "ensurepip",
  "lib2to3",
  "site-packages",
  "config-*",
];

/** Every shared object below `dir` (extension modules and the libraries wheels bundle). */
async function sharedObjects(dir: string): Promise<string[]> {
  const out = await run("find", [dir, "-type", "f", "(", "-name", "*.so", "-o", "-name", "*.so.*", ")"]);
  return out.split("\n").filter((l) => l !== "");
}

/** Copies the interpreter of `venv` and its packages into `root` (Python at /usr/local/bin/python3). */
export async function pythonRootfs(root: string, venv: string): Promise<void> {
  const [base, version] = (await run(`${venv}/bin/python`, [
    "-c",
    "import sys; print(sys.base_prefix); print('%d.%d' % sys.version_info[:2])",
  ])).trim().split("\n");
  const stdlib = `${base}/lib/python${version}`;
  await copyBinaries(root, [{
    src: `${base}/bin/python${version}`,
    dest: `/usr/local/bin/python${version}`,
  }]);
  await Deno.symlink(`python${version}`, `${root}/usr/local/bin/python3`);
  const dest = `${root}/usr/local/lib/python${version}`;
  await Deno.mkdir(dest, { recursive: true });
  const tarArgs = ["-C", stdlib, ...STDLIB_EXCLUDES.map((e) => `--exclude=./${e}`), "-cf", "-", "."];
  const tar = `tar ${tarArgs.map((a) => `'${a}'`).join(" ")} | tar -C '${dest}' -xf -`;
  await run("sh", ["-c", tar]);
  await copyInto(
    root,
    `${venv}/lib/python${version}/site-packages`,
    `/usr/local/lib/python${version}/site-packages`,
  );
  // Extension modules link to the machine's libraries (libssl, libffi, ...); wheels bring their own, found
  // through $ORIGIN and already copied with the packages.
  const libs = new Set<string>();
  for (const so of [...await sharedObjects(`${stdlib}/lib-dynload`), ...await sharedObjects(`${venv}/lib`)]) {
    for (const lib of parseLdd(await run("ldd", [so]).catch(() => ""))) {
      if (!lib.startsWith(venv) && !lib.startsWith(base)) libs.add(lib);
      else if (lib.startsWith(`${base}/lib/libpython`)) libs.add(lib);
    }
  }
  for (const lib of libs) await copyInto(root, lib);
}
