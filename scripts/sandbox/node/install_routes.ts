// The two ways a user installs aad-pod-identity, run on a real cluster as the user runs them:
//   deploy         `deno task deploy --image <local repository> --custom-cloud-file <file> [--federated] ...`
//   kubectl-apply  `kubectl apply --server-side -f deploy/aad-pod-identity.yaml` (or -federated.yaml) after
//                  deploy/crds.yaml, the image names replaced as `sed` would and nothing else; MIC is then
//                  pointed at the custom cloud the way the original chart's mic.customCloud does it.

import type { KubectlResult } from "../control_plane.ts";
import { DEFAULT_IMAGE_REPOSITORY } from "../../manifests/options.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const DEPLOY = `${ROOT}scripts/deploy.ts`;

export type InstallRoute = "deploy" | "kubectl-apply";

type Kubectl = (args: string[], stdin?: string) => Promise<KubectlResult>;

interface InstallSpec {
  route: InstallRoute;
  /** The federated variant: `--federated` / deploy/aad-pod-identity-federated.yaml. */
  federated: boolean;
  /** Where the local images are named (`<repository>/mic:<version>`). */
  imageRepository: string;
  version: string;
  /** The custom cloud's environment file inside every node. */
  cloudFile: string;
  /** Only on the deploy route: the checked-in YAML does not name a start-up taint. */
  removeNodeTaint?: string;
  /** More `deno task deploy` flags (deploy route only). */
  deployArgs: string[];
}

/** The checked-in YAML a kubectl user applies for this variant. */
export function checkedInYaml(federated: boolean): string {
  return `${ROOT}deploy/${federated ? "aad-pod-identity-federated.yaml" : "aad-pod-identity.yaml"}`;
}

/**
 * `sed 's#image: aad-pod-identity/#image: <repository>/#'`: the plainest override of the image names, and
 * the only change. Exactly MIC's and NMI's image lines must match, or the YAML is not what this expects.
 */
export function withImageRepository(yaml: string, repository: string): string {
  const from = `image: ${DEFAULT_IMAGE_REPOSITORY}/`;
  const count = yaml.split(from).length - 1;
  if (count !== 2) throw new Error(`expected 2 lines '${from}' (MIC, NMI) in the YAML, found ${count}`);
  return yaml.replaceAll(from, `image: ${repository}/`);
}

/** Installs by the chosen route; the CRDs are in place already (installCrds). */
export async function install(spec: InstallSpec, kubeconfig: string, kubectl: Kubectl): Promise<void> {
  if (spec.route === "deploy") return await deployTask(spec, kubeconfig);
  const yaml = withImageRepository(
    await Deno.readTextFile(checkedInYaml(spec.federated)),
    spec.imageRepository,
  );
  const applied = await kubectl(["apply", "--server-side", "-f", "-"], yaml);
  if (applied.code !== 0) throw new Error(`kubectl apply failed: ${applied.stderr}`);
  await pointMicAtCloudFile(kubectl, spec.cloudFile);
}

async function deployTask(spec: InstallSpec, kubeconfig: string): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      DEPLOY,
      `--kubeconfig=${kubeconfig}`,
      `--image=${spec.imageRepository}`,
      `--version=${spec.version}`,
      `--custom-cloud-file=${spec.cloudFile}`,
      ...(spec.removeNodeTaint ? [`--remove-node-taint=${spec.removeNodeTaint}`] : []),
      ...(spec.federated ? ["--federated"] : []),
      ...spec.deployArgs,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(`deno task deploy failed:\n${dec.decode(out.stdout)}\n${dec.decode(out.stderr)}`);
  }
}

/**
 * The checked-in YAML is for the public cloud; a custom-cloud (Azure Stack) user of it adds what
 * `--custom-cloud-file` renders (the original chart's mic.customCloud): the node's environment file mounted
 * read-only and named by AZURE_ENVIRONMENT_FILEPATH.
 */
async function pointMicAtCloudFile(kubectl: Kubectl, cloudFile: string): Promise<void> {
  const patch = [
    {
      op: "add",
      path: "/spec/template/spec/volumes/-",
      value: { name: "custom-env-file", hostPath: { path: cloudFile, type: "File" } },
    },
    {
      op: "add",
      path: "/spec/template/spec/containers/0/volumeMounts/-",
      value: { name: "custom-env-file", mountPath: cloudFile, readOnly: true },
    },
    {
      op: "add",
      path: "/spec/template/spec/containers/0/env/-",
      value: { name: "AZURE_ENVIRONMENT_FILEPATH", value: cloudFile },
    },
  ];
  const out = await kubectl(["patch", "deployment", "mic", "--type=json", "-p", JSON.stringify(patch)]);
  if (out.code !== 0) throw new Error(`pointing MIC at the custom cloud failed: ${out.stderr}`);
}
