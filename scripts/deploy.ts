// `deno task deploy`: applies the checked-in manifests under deploy/ to the current kubectl context
// (KUBECONFIG or ~/.kube/config), or to the cluster of `--kubeconfig`, CRDs first, waiting until they are
// established.
//   deno task deploy [--kubeconfig PATH | --kubeconfig=PATH] [--dry-run]
// kubectl comes from KUBECTL_BIN, else PATH. Today deploy/ holds the CRDs; MIC and NMI manifests join it
// with their issues, and this order (CRDs, then everything else) is what they will need.

import { parseArgs } from "node:util";

export const USAGE = `usage: deno task deploy [--kubeconfig PATH | --kubeconfig=PATH] [--dry-run] [--help]
  --kubeconfig PATH  apply to the cluster of this kubeconfig (default: KUBECONFIG or ~/.kube/config)
  --dry-run          let the apiserver check every manifest without storing anything
  --help             print this text`;

export interface DeployOptions {
  kubeconfig?: string;
  dryRun: boolean;
  help: boolean;
}

export type DeployArgs = { ok: true; options: DeployOptions } | { ok: false; error: string };

/**
 * Reads the deploy flags. Anything it does not know (a flag, a stray word, a flag without its value) is an
 * error, because guessing here means applying manifests to a cluster the user did not name.
 */
export function parseDeployArgs(argv: string[]): DeployArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        kubeconfig: { type: "string" },
        "dry-run": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  if (values.kubeconfig !== undefined && values.kubeconfig.trim() === "") {
    return { ok: false, error: "--kubeconfig needs a path" };
  }
  return {
    ok: true,
    options: {
      ...(values.kubeconfig !== undefined ? { kubeconfig: values.kubeconfig } : {}),
      dryRun: values["dry-run"] ?? false,
      help: values.help ?? false,
    },
  };
}

/** Manifests in apply order: the CRDs first, since everything else may hold their objects. */
export function manifestOrder(names: string[]): string[] {
  return names
    .filter((n) => n.endsWith(".yaml"))
    .sort((a, b) => (a === "crds.yaml" ? -1 : b === "crds.yaml" ? 1 : a.localeCompare(b)));
}

async function deploy(options: DeployOptions): Promise<void> {
  const kubectl = Deno.env.get("KUBECTL_BIN") ?? "kubectl";
  const common = options.kubeconfig ? [`--kubeconfig=${options.kubeconfig}`] : [];
  const root = new URL("..", import.meta.url).pathname;

  const run = async (argv: string[]) => {
    const out = await new Deno.Command(kubectl, {
      args: [...common, ...argv],
      stdout: "inherit",
      stderr: "inherit",
    })
      .output()
      .catch((e) => {
        throw new Error(
          `cannot run kubectl (${kubectl}): ${e instanceof Error ? e.message : e}; set KUBECTL_BIN`,
        );
      });
    if (!out.success) throw new Error(`kubectl ${argv.join(" ")} failed`);
  };

  const files = [...Deno.readDirSync(`${root}deploy`)].filter((e) => e.isFile).map((e) => e.name);
  for (const name of manifestOrder(files)) {
    const file = `${root}deploy/${name}`;
    await run(["apply", "--server-side", ...(options.dryRun ? ["--dry-run=server"] : []), "-f", file]);
    if (name === "crds.yaml" && !options.dryRun) {
      await run(["wait", "--for=condition=established", "--timeout=60s", "-f", file]);
    }
  }
}

if (import.meta.main) {
  const parsed = parseDeployArgs(Deno.args);
  if (!parsed.ok) {
    console.error(`deploy: ${parsed.error}\n${USAGE}`);
    Deno.exit(2);
  }
  if (parsed.options.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  try {
    await deploy(parsed.options);
  } catch (e) {
    console.error(`deploy: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
