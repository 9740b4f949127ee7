// Helpers for federated-mode tests: the cluster's CA (to let the Azure emulator fetch its issuer's
// discovery document) read from the kubeconfig the cluster was started with.

import { parse } from "yaml";

/** The CA PEM of a cluster's kubeconfig (`certificate-authority-data`). */
export async function clusterCaPem(cluster: { kubeconfigPath: string }): Promise<string> {
  const config = parse(await Deno.readTextFile(cluster.kubeconfigPath)) as {
    clusters: { cluster: { "certificate-authority-data"?: string } }[];
  };
  const data = config.clusters[0]?.cluster["certificate-authority-data"];
  if (!data) throw new Error(`no certificate-authority-data in ${cluster.kubeconfigPath}`);
  return atob(data);
}
