// The original's v1.8.17 files under tests/fixtures/upstream-v1.8.17, read the way tests need them: the
// args each manifest or rendered chart passes to MIC and NMI, and the helm binary that renders the chart.

import { parseAllDocuments } from "yaml";

export const UPSTREAM_DIR = new URL("../fixtures/upstream-v1.8.17/", import.meta.url).pathname;
export const UPSTREAM_CHART = `${UPSTREAM_DIR}chart`;
export const VALUES_ALL = `${UPSTREAM_DIR}values-all.yaml`;
export const INFRA_MANIFESTS = [
  "deploy/infra/deployment-rbac.yaml",
  "deploy/infra/deployment.yaml",
  "deploy/infra/managed-mode-deployment.yaml",
  "deploy/infra/noazurejson/deployment-rbac.yaml",
  "deploy/infra/noazurejson/deployment.yaml",
];

export interface ContainerArgs {
  source: string;
  component: "mic" | "nmi";
  args: string[];
  env: { name: string; value?: string }[];
}

type Obj = Record<string, unknown>;

function podSpecOf(doc: Obj): Obj | undefined {
  const spec = doc.spec as Obj | undefined;
  return (spec?.template as Obj | undefined)?.spec as Obj | undefined;
}

/** Every MIC / NMI container (by its name) of the Deployments and DaemonSets in a multi-document YAML. */
export function containerArgs(yamlText: string, source: string): ContainerArgs[] {
  const found: ContainerArgs[] = [];
  const docs = parseAllDocuments(yamlText).map((d) => d.toJS() as Obj | null);
  const flat = docs.flatMap((d) => (d?.kind === "List" ? (d.items as Obj[]) : d ? [d] : []));
  for (const doc of flat) {
    const containers = (podSpecOf(doc)?.containers ?? []) as Obj[];
    for (const c of containers) {
      const name = String(c.name);
      if (name !== "mic" && name !== "nmi") continue;
      found.push({
        source,
        component: name,
        args: ((c.args ?? []) as unknown[]).map(String),
        env: (c.env ?? []) as { name: string; value?: string }[],
      });
    }
  }
  return found;
}

/** The helm binary scripts/sandbox/install-helm.sh built (or HELM_BIN). */
async function helmBin(): Promise<string> {
  const script = new URL("../../scripts/sandbox/install-helm.sh", import.meta.url).pathname;
  const out = await new Deno.Command("bash", { args: [script], stdout: "piped", stderr: "null" }).output();
  if (!out.success) throw new Error(`helm install failed (${script})`);
  return new TextDecoder().decode(out.stdout).trim().split("\n").pop()!;
}

export async function helm(args: string[], env: Record<string, string> = {}): Promise<string> {
  const out = await new Deno.Command(await helmBin(), { args, env, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`helm ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}
