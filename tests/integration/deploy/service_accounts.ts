// Acting as a service account of the generated RBAC: a token from the TokenRequest API (`kubectl create
// token`) in a kubeconfig of its own, and `kubectl auth can-i --as` questions.

import type { TestCluster } from "../../support/cluster.ts";
import { serviceAccountKubeconfig as tokenKubeconfig } from "../../../scripts/sandbox/service_accounts.ts";

/** A kubeconfig that authenticates as `namespace/serviceAccount` with a fresh bound token. */
export function serviceAccountKubeconfig(
  cluster: TestCluster,
  namespace: string,
  serviceAccount: string,
  path: string,
): Promise<string> {
  return tokenKubeconfig({
    kubectl: async (args) => {
      const r = await cluster.kubectl(args);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
      return r.stdout;
    },
    adminKubeconfigPath: cluster.kubeconfigPath,
    namespace,
    serviceAccount,
    path,
    duration: "3600s",
  });
}

/** `kubectl auth can-i VERB RESOURCE[/NAME] --as=system:serviceaccount:NS:SA [-n NS2 | -A]`. */
export async function canI(
  cluster: TestCluster,
  as: { namespace: string; name: string },
  verb: string,
  resource: string,
  where: { namespace?: string; allNamespaces?: boolean; subresource?: string } = {},
): Promise<boolean> {
  const r = await cluster.kubectl([
    "auth",
    "can-i",
    verb,
    resource,
    `--as=system:serviceaccount:${as.namespace}:${as.name}`,
    ...(where.allNamespaces ? ["-A"] : ["-n", where.namespace ?? as.namespace]),
    ...(where.subresource ? [`--subresource=${where.subresource}`] : []),
  ]);
  const answer = r.stdout.trim();
  if (answer !== "yes" && answer !== "no") throw new Error(`kubectl auth can-i: ${r.stdout}${r.stderr}`);
  return answer === "yes";
}
