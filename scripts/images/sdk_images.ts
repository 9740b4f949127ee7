// The unmodified SDK applications of tests/clients as images for pods on a real node, beside sdk-node
// (build.ts). Each image is cached on its own, keyed by exactly what goes into it, so a change to one
// input rebuilds only that image:
//   sdk-go      the Go clients (azidentity, go-autorest adal) and the libraries they link to
//   sdk-python  the clients' Python interpreter, its standard library and the venv of azure-identity
//   az-cli      the same interpreter with azure-cli (tests/clients/azcli/requirements.txt) and /bin/sh
//   demo        the original's cmd/demo (github.com/Azure/aad-pod-identity v1.8.17), static
// Their inputs come from install-clients.sh (--image-inputs), run here when missing.

import { sandboxCacheDir } from "../sandbox/pki.ts";
import { sdkClientPaths } from "../sandbox/sdk_clients.ts";
import { buildImage, type ImageConfig } from "./oci.ts";
import { baseEtc, copyBinaries, copyInto } from "./rootfs.ts";
import { pythonRootfs } from "./python_rootfs.ts";
import { fileDigest } from "./image_key.ts";
import { LOCAL_REPOSITORY } from "./build.ts";

const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

export const SDK_GO_IMAGE = `${LOCAL_REPOSITORY}/sdk-go:azidentity-1.13.1`;
export const SDK_PYTHON_IMAGE = `${LOCAL_REPOSITORY}/sdk-python:azure-identity-1.27.0`;
export const AZ_CLI_IMAGE = `${LOCAL_REPOSITORY}/az-cli:2.91.0`;
/** The original's demo image, named as deploy/demo references it but from the local repository. */
export const DEMO_IMAGE = `${LOCAL_REPOSITORY}/demo:v1.8.17`;

const PATH = "/usr/local/bin:/usr/bin:/bin";
/** Python's requests (azure-identity, az) trusts only this bundle: the system roots plus the lab's CA. */
const CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

interface ImageInputs {
  goDir: string;
  python: string;
  azCli: string;
  demo: string;
}

/** Runs install-clients.sh (with --image-inputs when az or demo is wanted; quick when cached); its paths. */
async function imageInputs(withExtras: boolean): Promise<ImageInputs> {
  const { goDir, python } = await sdkClientPaths();
  if (!withExtras) return { goDir, python, azCli: "", demo: "" };
  const out = await new Deno.Command("bash", {
    args: [`${REPO}/scripts/sandbox/install-clients.sh`, "--image-inputs"],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`install-clients.sh --image-inputs: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  const text = await Deno.readTextFile(`${sandboxCacheDir()}/image-inputs.env`);
  const env = Object.fromEntries(text.trim().split("\n").map((l) => l.split("=", 2) as [string, string]));
  return { goDir, python, azCli: env.AAD_AZCLI, demo: env.AAD_DEMO };
}

interface SdkImageSpec {
  ref: string;
  /** Short name: the cache directory's prefix. */
  name: SdkImageName;
  /** Files (or directories) whose bytes make the cache key, besides this builder and the CA. */
  keyFiles: string[];
  /** A file present only once the input is completely installed. */
  complete: string;
  build(root: string, caPem: string): Promise<ImageConfig>;
}

function goSpec(i: ImageInputs): SdkImageSpec {
  return {
    ref: SDK_GO_IMAGE,
    name: "sdk-go",
    keyFiles: [`${i.goDir}/azidentity-token`, `${i.goDir}/adal-demo`],
    complete: `${i.goDir}/azidentity-token`,
    async build(root, caPem) {
      await copyBinaries(root, [
        { src: `${i.goDir}/azidentity-token`, dest: "/usr/local/bin/azidentity-token" },
        { src: `${i.goDir}/adal-demo`, dest: "/usr/local/bin/adal-demo" },
      ]);
      await baseEtc(root, caPem);
      return {
        entrypoint: ["/usr/local/bin/azidentity-token"],
        cmd: ["managed", "https://management.azure.com/.default"],
        env: { PATH, SSL_CERT_FILE: CA_BUNDLE },
        user: "1000:1000",
      };
    },
  };
}

function pythonSpec(i: ImageInputs): SdkImageSpec {
  const venv = i.python.replace(/\/bin\/python$/, "");
  return {
    ref: SDK_PYTHON_IMAGE,
    name: "sdk-python",
    keyFiles: [`${REPO}/tests/clients/python`, `${venv}/pyvenv.cfg`, `${venv}/.complete`],
    complete: `${venv}/.complete`,
    async build(root, caPem) {
      await pythonRootfs(root, venv);
      await copyInto(root, `${REPO}/tests/clients/python/get_token.py`, "/app/get_token.py");
      await baseEtc(root, caPem);
      return {
        entrypoint: ["/usr/local/bin/python3", "/app/get_token.py"],
        cmd: ["managed", "https://management.azure.com/.default"],
        env: { PATH, REQUESTS_CA_BUNDLE: CA_BUNDLE, SSL_CERT_FILE: CA_BUNDLE },
        user: "1000:1000",
        workdir: "/app",
      };
    },
  };
}

function azCliSpec(i: ImageInputs): SdkImageSpec {
  return {
    ref: AZ_CLI_IMAGE,
    name: "az-cli",
    keyFiles: [`${REPO}/tests/clients/azcli/requirements.txt`, `${i.azCli}/pyvenv.cfg`],
    complete: `${i.azCli}/.complete`,
    async build(root, caPem) {
      await pythonRootfs(root, i.azCli);
      await copyBinaries(root, [{ src: "/bin/sh" }]);
      await Deno.writeTextFile(
        `${root}/usr/local/bin/az`,
        '#!/bin/sh\nexec /usr/local/bin/python3 -m azure.cli "$@"\n',
        { mode: 0o755 },
      );
      await Deno.chmod(`${root}/usr/local/bin/az`, 0o755);
      await baseEtc(root, caPem);
      // az writes its profile and token cache under $HOME (/tmp): world-writable, as /tmp is (mkdir's
      // mode went through the umask).
      await Deno.chmod(`${root}/tmp`, 0o1777);
      return {
        entrypoint: ["/usr/local/bin/az"],
        env: {
          PATH,
          HOME: "/tmp",
          REQUESTS_CA_BUNDLE: CA_BUNDLE,
          SSL_CERT_FILE: CA_BUNDLE,
          AZURE_CORE_COLLECT_TELEMETRY: "false",
          AZURE_CORE_NO_COLOR: "true",
        },
        user: "1000:1000",
      };
    },
  };
}

function demoSpec(i: ImageInputs): SdkImageSpec {
  return {
    ref: DEMO_IMAGE,
    name: "demo",
    keyFiles: [i.demo],
    complete: i.demo,
    async build(root, caPem) {
      // The original's image is distroless/static with /demo as its entrypoint.
      await copyInto(root, i.demo, "/demo");
      await baseEtc(root, caPem);
      return { entrypoint: ["/demo"], user: "65532:65532" };
    },
  };
}

function specs(i: ImageInputs): SdkImageSpec[] {
  return [goSpec(i), pythonSpec(i), azCliSpec(i), demoSpec(i)];
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** One image: its cached tarball, or a fresh build (in a scratch directory renamed into place when done). */
async function ensureImage(s: SdkImageSpec, caPem: string): Promise<{ tar: string; seconds: number }> {
  if (!await exists(s.complete)) {
    throw new Error(
      `${s.name} image: ${s.complete} is missing (a half-installed input); run \`deno task setup\``,
    );
  }
  const self = await Promise.all(
    ["sdk_images.ts", "python_rootfs.ts", "rootfs.ts", "oci.ts"].map((f) =>
      fileDigest(`${REPO}/scripts/images/${f}`)
    ),
  );
  const inputs = await Promise.all(s.keyFiles.map((f) => fileDigest(f)));
  const key = (await fileDigest(undefined, [s.ref, caPem, ...self, ...inputs].join("\n"))).slice(0, 16);
  const dir = `${sandboxCacheDir()}/image-${s.name}-${key}`;
  const tar = `${dir}/image.tar`;
  if (await exists(`${dir}/done`)) return { tar, seconds: 0 };
  const t0 = performance.now();
  const work = `${dir}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(`${work}/root`, { recursive: true });
  try {
    const config = await s.build(`${work}/root`, caPem);
    await buildImage(s.ref, `${work}/root`, config, work, `${work}/image.tar`);
    await Deno.mkdir(dir, { recursive: true });
    await Deno.rename(`${work}/image.tar`, tar);
    await Deno.writeTextFile(`${dir}/done`, new Date().toISOString());
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  await pruneOlder(s.name, dir);
  return { tar, seconds: Math.round(performance.now() - t0) / 1000 };
}

async function pruneOlder(name: string, keep: string): Promise<void> {
  const root = sandboxCacheDir();
  const re = new RegExp(`^image-${name}-[0-9a-f]{16}$`);
  for await (const e of Deno.readDir(root)) {
    const path = `${root}/${e.name}`;
    if (e.isDirectory && re.test(e.name) && path !== keep) {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    }
  }
}

interface SdkImages {
  /** image reference -> docker-archive tarball */
  tars: Record<string, string>;
  /** image reference -> seconds its build took now (0: from the cache) */
  buildSeconds: Record<string, number>;
}

const SDK_IMAGE_NAMES = ["sdk-go", "sdk-python", "az-cli", "demo"] as const;
type SdkImageName = typeof SDK_IMAGE_NAMES[number];

/** Builds (or finds cached) the named images (default: all); `caPem` is trusted inside them. */
export async function buildSdkImages(
  caPem: string,
  only: readonly SdkImageName[] = SDK_IMAGE_NAMES,
): Promise<SdkImages> {
  const result: SdkImages = { tars: {}, buildSeconds: {} };
  const inputs = await imageInputs(only.includes("az-cli") || only.includes("demo"));
  for (const s of specs(inputs).filter((s) => (only as readonly string[]).includes(s.name))) {
    const { tar, seconds } = await ensureImage(s, caPem);
    result.tars[s.ref] = tar;
    result.buildSeconds[s.ref] = seconds;
  }
  return result;
}

if (import.meta.main) {
  // deno run -A scripts/images/sdk_images.ts [ca.pem] [name,...]
  const ca = Deno.args[0] ? await Deno.readTextFile(Deno.args[0]) : "";
  const only = Deno.args[1]?.split(",").filter((n): n is SdkImageName =>
    (SDK_IMAGE_NAMES as readonly string[]).includes(n)
  );
  console.log(JSON.stringify(await buildSdkImages(ca, only?.length ? only : SDK_IMAGE_NAMES), null, 2));
}
