// The local images of a real node, built without a registry and cached by the hash of what goes in:
//   pause   a tiny static Go program (containerd's pod sandbox image)
//   mic     the deno runtime of this very version, the sources, their npm dependencies cached; non-root
//   nmi     the same, plus iptables (nf_tables), conntrack and sysctl with their libraries; root
//   sdk-node  Node.js and the unmodified @azure/identity of tests/clients/node (token_claims.mjs)
// MIC and NMI are built from the image definition (definition.ts) the Dockerfile is generated from: the same
// entry, exactly the permission flags of mic/permissions.ts and nmi/permissions.ts, user, sources and NMI's
// packages; here under `deno run --cached-only` instead of `deno compile`. The Dockerfile (distroless and
// debian-slim bases) stays the production build: it needs registries this lab lacks.

import { LAZY_MODULES } from "../../lib/lazy_import.ts";
import { NMI_HOST_TOOLS } from "../../nmi/permissions.ts";
import { type ComponentImage, IMAGE_SOURCES, MIC_IMAGE, NMI_IMAGE } from "./definition.ts";
import { sandboxCacheDir } from "../sandbox/pki.ts";
import { fileDigest } from "./image_key.ts";
import { buildImage, type ImageConfig } from "./oci.ts";
import { baseEtc, copyBinaries, copyInto } from "./rootfs.ts";

const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
/** The repository the local images are named in: `deno task deploy --image` takes it. */
export const LOCAL_REPOSITORY = "aad-pod-identity.local";
export const PAUSE_IMAGE = `${LOCAL_REPOSITORY}/pause:3.10`;
export const SDK_NODE_IMAGE = `${LOCAL_REPOSITORY}/sdk-node:4.14.1`;

/** The command an image's entrypoint runs: deno, offline, with the component's permissions. */
export function denoEntrypoint(permissions: readonly string[], entry: string): string[] {
  return ["/usr/local/bin/deno", "run", "--cached-only", "--frozen", ...permissions, `/app/${entry}`];
}

function imageConfig(c: ComponentImage): ImageConfig {
  return {
    entrypoint: denoEntrypoint(c.permissions, c.entry),
    env: denoEnv(),
    user: c.user,
    workdir: "/app",
  };
}

export const MIC_IMAGE_CONFIG: ImageConfig = imageConfig(MIC_IMAGE);
export const NMI_IMAGE_CONFIG: ImageConfig = imageConfig(NMI_IMAGE);

function denoEnv(): Record<string, string> {
  return {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    DENO_DIR: "/deno-dir",
    DENO_NO_UPDATE_CHECK: "1",
    DENO_NO_PROMPT: "1",
    // The system bundle holds the lab's private CA as well as the public roots (see baseEtc); node:https
    // (the Azure SDKs, MSAL) reads only NODE_EXTRA_CA_CERTS, fetch reads both.
    DENO_TLS_CA_STORE: "mozilla,system",
    NODE_EXTRA_CA_CERTS: "/etc/ssl/certs/ca-certificates.crt",
  };
}

async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; clearEnv?: boolean } = {},
) {
  const out = await new Deno.Command(cmd, { args, ...opts, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** sha256 over every file below `paths` (sorted) and `extra`: the cache key of an image. */
async function contentHash(paths: string[], extra: string): Promise<string> {
  const digests = await Promise.all(paths.map((p) => fileDigest(p)));
  return (await fileDigest(undefined, [extra, ...digests].join("\n"))).slice(0, 16);
}

export interface LocalImages {
  /** image reference -> docker-archive tarball */
  tars: Record<string, string>;
  micImage: string;
  nmiImage: string;
  version: string;
}

/** Builds (or finds in the cache) every local image; `extraCaPem` is trusted inside them. */
export async function buildLocalImages(version: string, extraCaPem: string): Promise<LocalImages> {
  // The SDK client's package-lock too: its node_modules are copied in, and an image built before they were
  // installed must not be taken for one built after.
  const sources = [
    ...IMAGE_SOURCES,
    "scripts/images",
    "tests/clients/node/package-lock.json",
  ].map((p) => `${REPO}/${p}`);
  const key = await contentHash(sources, `${Deno.version.deno}\n${version}\n${extraCaPem}`);
  const dir = `${sandboxCacheDir()}/images-${key}`;
  const micImage = `${LOCAL_REPOSITORY}/mic:${version}`;
  const nmiImage = `${LOCAL_REPOSITORY}/nmi:${version}`;
  const tars = {
    [PAUSE_IMAGE]: `${dir}/pause.tar`,
    [micImage]: `${dir}/mic.tar`,
    [nmiImage]: `${dir}/nmi.tar`,
    [SDK_NODE_IMAGE]: `${dir}/sdk-node.tar`,
  };
  const done = await Deno.stat(`${dir}/done`).then(() => true, () => false);
  if (!done) {
    const work = `${dir}.tmp-${crypto.randomUUID().slice(0, 8)}`;
    await Deno.mkdir(work, { recursive: true });
    try {
      await buildPause(`${work}/pause`, `${work}/pause.tar`);
      const deno = await denoRootfs(`${work}/deno-root`, extraCaPem);
      await run("cp", ["-a", deno, `${work}/mic-root`]);
      await buildImage(micImage, `${work}/mic-root`, MIC_IMAGE_CONFIG, `${work}/mic`, `${work}/mic.tar`);
      await nmiTools(deno);
      await buildImage(nmiImage, deno, NMI_IMAGE_CONFIG, `${work}/nmi`, `${work}/nmi.tar`);
      await buildSdkNode(`${work}/sdk-root`, extraCaPem, `${work}/sdk`, `${work}/sdk-node.tar`);
      await Deno.mkdir(dir, { recursive: true });
      for (const name of ["pause", "mic", "nmi", "sdk-node"]) {
        await Deno.rename(`${work}/${name}.tar`, `${dir}/${name}.tar`);
      }
      await Deno.writeTextFile(`${dir}/done`, new Date().toISOString());
      await pruneOtherImages(dir);
    } finally {
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  }
  return { tars, micImage, nmiImage, version };
}

/** Each build is about 600 MB: older builds (other sources) go once a new one is complete. */
async function pruneOtherImages(keep: string): Promise<void> {
  const root = sandboxCacheDir();
  for await (const e of Deno.readDir(root)) {
    const path = `${root}/${e.name}`;
    if (e.isDirectory && /^images-[0-9a-f]{16}$/.test(e.name) && path !== keep) {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    }
  }
}

async function buildPause(work: string, outTar: string): Promise<void> {
  const root = `${work}/root`;
  await Deno.mkdir(root, { recursive: true });
  await run("go", [
    "build",
    "-trimpath",
    "-ldflags=-s -w",
    "-o",
    `${root}/pause`,
    `${REPO}/scripts/images/pause.go`,
  ], {
    env: { CGO_ENABLED: "0", GOFLAGS: "-mod=mod", GO111MODULE: "off" },
  });
  await buildImage(PAUSE_IMAGE, root, { entrypoint: ["/pause"], user: "65535:65535" }, work, outTar);
}

/** deno, its libraries, the sources under /app and their npm dependencies cached in /deno-dir. */
async function denoRootfs(root: string, extraCaPem: string): Promise<string> {
  await copyBinaries(root, [{ src: Deno.execPath(), dest: "/usr/local/bin/deno" }]);
  await baseEtc(root, extraCaPem);
  for (const p of IMAGE_SOURCES) {
    await copyInto(root, `${REPO}/${p}`, `/app/${p}`);
  }
  // The registry's trust is the machine's (a proxy's CA may be among its roots): a test run's private CA
  // in DENO_CERT / NODE_EXTRA_CA_CERTS would stand in for it.
  const env = Deno.env.toObject();
  for (const k of ["DENO_CERT", "NODE_EXTRA_CA_CERTS"]) delete env[k];
  env.DENO_TLS_CA_STORE = "mozilla,system";
  await run(Deno.execPath(), [
    "install",
    "--frozen",
    "--entrypoint",
    MIC_IMAGE.entry,
    NMI_IMAGE.entry,
    ...LAZY_MODULES,
  ], {
    cwd: `${root}/app`,
    env: { ...env, DENO_DIR: `${root}/deno-dir`, DENO_NO_UPDATE_CHECK: "1" },
    clearEnv: true,
  });
  return root;
}

/** NMI's host tools: the definition's packages' files, from this machine (iptables as its nf_tables backend). */
async function nmiTools(root: string): Promise<void> {
  await copyBinaries(root, NMI_IMAGE.packages.flatMap((p) => p.files.map((src) => ({ src }))));
  for (const tool of ["iptables", ...NMI_HOST_TOOLS.filter((t) => t.startsWith("iptables"))]) {
    await Deno.symlink("xtables-nft-multi", `${root}/usr/sbin/${tool}`);
  }
  await copyInto(root, "/usr/lib/x86_64-linux-gnu/xtables");
  await Deno.mkdir(`${root}/run`, { recursive: true });
}

async function buildSdkNode(root: string, extraCaPem: string, work: string, outTar: string): Promise<void> {
  const nodeBin = (await run("sh", ["-c", "command -v node"])).trim();
  await copyBinaries(root, [{ src: await Deno.realPath(nodeBin), dest: "/usr/local/bin/node" }]);
  await baseEtc(root, extraCaPem);
  const sdk = `${REPO}/tests/clients/node/node_modules/@azure/identity/package.json`;
  if (!await Deno.stat(sdk).then(() => true, () => false)) {
    throw new Error(
      `sdk-node image: ${sdk} is missing; run \`deno task setup\` first (it installs the clients)`,
    );
  }
  await copyInto(root, `${REPO}/tests/clients/node`, "/app");
  await copyInto(root, `${REPO}/scripts/images/token_claims.mjs`, "/app/token_claims.mjs");
  await buildImage(
    SDK_NODE_IMAGE,
    root,
    {
      entrypoint: ["/usr/local/bin/node", "/app/token_claims.mjs"],
      env: {
        NODE_EXTRA_CA_CERTS: "/etc/ssl/certs/ca-certificates.crt",
        PATH: "/usr/local/bin:/usr/bin:/bin",
      },
      user: "1000:1000",
      workdir: "/app",
    },
    work,
    outTar,
  );
}

if (import.meta.main) {
  const t0 = performance.now();
  const images = await buildLocalImages(Deno.args[0] ?? "dev", "");
  console.log(JSON.stringify({ ...images, seconds: ((performance.now() - t0) / 1000).toFixed(1) }, null, 2));
}
