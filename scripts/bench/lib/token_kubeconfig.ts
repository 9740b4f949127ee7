// The kubeconfig MIC and NMI run with in the benchmarks: a service account's bound token, as in a pod, so
// their connection to the apiserver is the one a cluster gives them (Deno's own TLS, see
// lib/kube/http2/tls_socket.ts), not the admin's client certificate. The account is cluster-admin: what is
// measured is cost, and tests/integration/deploy checks the real RBAC.

import type { ControlPlane } from "../../sandbox/control_plane.ts";
import { serviceAccountKubeconfig } from "../../sandbox/service_accounts.ts";

export async function benchTokenKubeconfig(cp: ControlPlane, name: string, path: string): Promise<string> {
  const kubectl = async (args: string[]) => {
    const out = await cp.kubectl(args);
    if (out.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${out.stderr}`);
    return out.stdout;
  };
  await kubectl(["create", "serviceaccount", name, "-n", "kube-system"]);
  await kubectl([
    "create",
    "clusterrolebinding",
    `bench-${name}`,
    "--clusterrole=cluster-admin",
    `--serviceaccount=kube-system:${name}`,
  ]);
  return await serviceAccountKubeconfig({
    kubectl,
    adminKubeconfigPath: cp.kubeconfigPath,
    namespace: "kube-system",
    serviceAccount: name,
    path,
  });
}
