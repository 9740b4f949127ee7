// `deno task deploy`: installs aad-pod-identity (the CRDs, then MIC and NMI with their RBAC and the default
// exceptions) with server-side apply on the current kubectl context (KUBECONFIG or ~/.kube/config), or on
// the cluster of `--kubeconfig`. The objects are the ones deploy/ holds, rendered with the options given.
// Each object is reported as created, changed or unchanged; a second run says nothing changed.
// kubectl comes from KUBECTL_BIN, else PATH.

import { parseArgs } from "node:util";
import { runCommandText } from "../lib/command.ts";
import { crdObjects, installationObjects, toYaml } from "./manifests.ts";
import { type ChangeLine, classify, itemsOf, summaryLine } from "./deploy/changes.ts";
import {
  DEFAULT_IMAGE_REPOSITORY,
  DEFAULT_VERSION,
  defaultOptions,
  type ManifestOptions,
  type Mode,
  parseSecretName,
  validateOptions,
} from "./manifests/options.ts";

const USAGE = `usage: deno task deploy [flags]
  --kubeconfig PATH        apply to the cluster of this kubeconfig (default: KUBECONFIG or ~/.kube/config)
  --namespace NS           where MIC and NMI run (default: default; managed mode: kube-system)
  --mode MODE              standard (MIC + NMI, default) or managed (NMI only; identities pre-attached)
  --image REPOSITORY       image repository: <REPOSITORY>/mic:<VERSION>, <REPOSITORY>/nmi:<VERSION>
                           (default: ${DEFAULT_IMAGE_REPOSITORY})
  --version TAG            image tag (default: ${DEFAULT_VERSION})
  --sp-secret NS/NAME      a service-principal identity's secret NMI may read (repeat; default: none)
  --remove-node-taint KEY  NMI removes this start-up taint from its node when ready (gives it nodes get/patch)
  --federated              allow federated identities: NMI may create pod-bound token-exchange tokens
  --azure-json PATH        the node's azure.json MIC reads, as root (default: /etc/kubernetes/azure.json)
  --azure-secret NAME      configure MIC from this Secret (the original's noazurejson keys), MIC non-root
                           (RBAC + a ValidatingAdmissionPolicy; Kubernetes >= 1.30)
  --custom-cloud-file PATH a custom cloud's environment file on the nodes (Azure Stack: azure.json says
                           AzureStackCloud): mounted into MIC as AZURE_ENVIRONMENT_FILEPATH, as the
                           original chart's mic.customCloud.configPath (default: none, a public cloud)
  --dry-run                let the apiserver check every object without storing anything
  --help                   print this text`;

/** Flags that take a value: an empty one, or the next flag taken for it, is an error. */
const VALUED_FLAGS = [
  "kubeconfig",
  "namespace",
  "mode",
  "image",
  "version",
  "remove-node-taint",
  "azure-secret",
  "azure-json",
  "custom-cloud-file",
] as const;

interface DeployOptions {
  kubeconfig?: string;
  dryRun: boolean;
  help: boolean;
  manifests: ManifestOptions;
}

type DeployArgs = { ok: true; options: DeployOptions } | { ok: false; error: string };

/**
 * Reads the deploy flags. Anything it does not know (a flag, a stray word, a flag without its value, a
 * value that is not valid) is an error, because guessing here means changing a cluster the user did not
 * name, or in a way they did not ask for.
 */
export function parseDeployArgs(argv: string[]): DeployArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        kubeconfig: { type: "string" },
        namespace: { type: "string", short: "n" },
        mode: { type: "string" },
        image: { type: "string" },
        version: { type: "string" },
        "sp-secret": { type: "string", multiple: true },
        "remove-node-taint": { type: "string" },
        "azure-secret": { type: "string" },
        "azure-json": { type: "string" },
        "custom-cloud-file": { type: "string" },
        federated: { type: "boolean" },
        "dry-run": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  for (const name of VALUED_FLAGS) {
    const v = values[name];
    if (v !== undefined && (v.trim() === "" || v.startsWith("-"))) {
      return { ok: false, error: `--${name} needs a value` };
    }
  }
  const mode = (values.mode ?? "standard") as Mode;
  if (mode !== "standard" && mode !== "managed") {
    return { ok: false, error: `--mode must be standard or managed, not '${values.mode}'` };
  }
  const secrets = [];
  for (const s of values["sp-secret"] ?? []) {
    const parsed = parseSecretName(s);
    if (!parsed) return { ok: false, error: `--sp-secret '${s}' is not NAMESPACE/NAME` };
    secrets.push(parsed);
  }
  if (values["azure-secret"] !== undefined && values["azure-json"] !== undefined) {
    return { ok: false, error: "--azure-secret and --azure-json exclude each other" };
  }
  const base = defaultOptions(mode);
  const manifests: ManifestOptions = {
    ...base,
    namespace: values.namespace ?? base.namespace,
    imageRepository: values.image ?? base.imageRepository,
    version: values.version ?? base.version,
    servicePrincipalSecrets: secrets,
    ...(values["remove-node-taint"] ? { removeNodeTaint: values["remove-node-taint"] } : {}),
    ...(values.federated ? { federated: true } : {}),
    ...(values["azure-secret"]
      ? { azureConfig: { source: "secret", secretName: values["azure-secret"] } }
      : {}),
    ...(values["azure-json"] ? { azureConfig: { source: "hostPath", path: values["azure-json"] } } : {}),
    ...(values["custom-cloud-file"] ? { customCloudFile: values["custom-cloud-file"] } : {}),
  };
  const problems = validateOptions(manifests);
  if (problems.length) return { ok: false, error: problems.join("; ") };
  return {
    ok: true,
    options: {
      ...(values.kubeconfig !== undefined ? { kubeconfig: values.kubeconfig } : {}),
      dryRun: values["dry-run"] ?? false,
      help: values.help ?? false,
      manifests,
    },
  };
}

interface Kubectl {
  (argv: string[], stdin?: string): Promise<string>;
}

function kubectlRunner(kubeconfig: string | undefined): Kubectl {
  const bin = Deno.env.get("KUBECTL_BIN") ?? "kubectl";
  const common = kubeconfig ? [`--kubeconfig=${kubeconfig}`] : [];
  return async (argv, stdin) => {
    const out = await runCommandText(bin, [...common, ...argv], stdin).catch((e) => {
      throw new Error(`cannot run kubectl (${bin}): ${e instanceof Error ? e.message : e}; set KUBECTL_BIN`);
    });
    if (out.code !== 0) throw new Error(`kubectl ${argv.join(" ")} failed: ${out.stderr.trim()}`);
    return out.stdout;
  };
}

/** Applies one batch and reports each object's change. */
async function applyBatch(kubectl: Kubectl, objects: object[], dryRun: boolean): Promise<ChangeLine[]> {
  const yaml = toYaml(objects);
  const before = itemsOf(await kubectl(["get", "--ignore-not-found", "-o", "json", "-f", "-"], yaml));
  const after = itemsOf(
    await kubectl([
      "apply",
      "--server-side",
      "--field-manager=aad-pod-identity-deploy",
      // deploy/ is the source of truth for these objects: fields someone set by hand go back.
      "--force-conflicts",
      ...(dryRun ? ["--dry-run=server"] : []),
      "-o",
      "json",
      "-f",
      "-",
    ], yaml),
  );
  return classify(before, after);
}

async function deploy(options: DeployOptions, print: (line: string) => void): Promise<ChangeLine[]> {
  const kubectl = kubectlRunner(options.kubeconfig);
  const m = options.manifests;
  const crds = crdObjects();
  print(
    `aad-pod-identity ${m.version} (${m.mode} mode) into namespace ${m.namespace}` +
      (options.dryRun ? " (dry run)" : ""),
  );
  const lines = await applyBatch(kubectl, crds, options.dryRun);
  let rest = installationObjects(m);
  if (!options.dryRun) {
    await kubectl(["wait", "--for=condition=established", "--timeout=60s", "-f", "-"], toYaml(crds));
  } else if (lines.some((l) => l.change === "created")) {
    // The apiserver cannot check custom objects of kinds it does not know yet.
    rest = rest.filter((o) => !(o as { apiVersion: string }).apiVersion.startsWith("aadpodidentity.k8s.io/"));
    print("(the CRDs are not installed yet, so the dry run leaves the default exceptions out)");
  }
  lines.push(...await applyBatch(kubectl, rest, options.dryRun));
  for (const l of lines) {
    print(`  ${l.change.padEnd(9)} ${l.kind} ${l.namespace ? `${l.namespace}/` : ""}${l.name}`);
  }
  print(summaryLine(lines, options.dryRun));
  return lines;
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
    await deploy(parsed.options, (l) => console.log(l));
  } catch (e) {
    console.error(`deploy: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
