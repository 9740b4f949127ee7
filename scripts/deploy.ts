// `deno task deploy`: applies the checked-in manifests under deploy/ to the current kubectl context
// (KUBECONFIG or ~/.kube/config), CRDs first, waiting until they are established.
//   deno task deploy [--kubeconfig PATH] [--dry-run]
// kubectl comes from KUBECTL_BIN, else PATH. Today deploy/ holds the CRDs; MIC and NMI manifests join it
// with their issues, and this order (CRDs, then everything else) is what they will need.

const args = [...Deno.args];
const kubectl = Deno.env.get("KUBECTL_BIN") ?? "kubectl";
const dryRun = args.includes("--dry-run");
const kcIndex = args.indexOf("--kubeconfig");
const common = kcIndex >= 0 && args[kcIndex + 1] ? [`--kubeconfig=${args[kcIndex + 1]}`] : [];
const root = new URL("..", import.meta.url).pathname;

async function run(argv: string[]): Promise<void> {
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
}

const manifests = [...Deno.readDirSync(`${root}deploy`)]
  .filter((e) => e.isFile && e.name.endsWith(".yaml"))
  .map((e) => e.name)
  .sort((a, b) => (a === "crds.yaml" ? -1 : b === "crds.yaml" ? 1 : a.localeCompare(b)));

try {
  for (const name of manifests) {
    const file = `${root}deploy/${name}`;
    await run(["apply", "--server-side", ...(dryRun ? ["--dry-run=server"] : []), "-f", file]);
    if (name === "crds.yaml" && !dryRun) {
      await run(["wait", "--for=condition=established", "--timeout=60s", "-f", file]);
    }
  }
} catch (e) {
  console.error(`deploy: ${e instanceof Error ? e.message : e}`);
  Deno.exit(1);
}
