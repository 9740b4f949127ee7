// Each node component signs in with its own client certificate from the cluster CA, as on a real cluster:
// a kubelet as system:node:<name> in system:nodes (the Node authorizer and NodeRestriction limit it to its
// own node and pods), the scheduler and controller-manager as their built-in users.

import { type CertPair, issueCert } from "../pki.ts";

export interface ClusterAccess {
  /** `https://127.0.0.1:<port>` */
  server: string;
  caCertPath: string;
  caKeyPath: string;
}

/** A kubeconfig for one client certificate. */
export function certKubeconfig(server: string, caPem: string, cert: string, key: string): string {
  const b64 = (s: string) => btoa(s);
  return [
    "apiVersion: v1",
    "kind: Config",
    `clusters: [{name: c, cluster: {server: "${server}", certificate-authority-data: ${b64(caPem)}}}]`,
    `users: [{name: u, user: {client-certificate-data: ${b64(cert)}, client-key-data: ${b64(key)}}}]`,
    "contexts: [{name: c, context: {cluster: c, user: u}}]",
    "current-context: c",
    "",
  ].join("\n");
}

/** Issues `<dir>/<name>.pem` for `user` (in `groups`) and writes `<dir>/<name>.kubeconfig`; returns its path. */
export async function identityKubeconfig(
  cluster: ClusterAccess,
  dir: string,
  name: string,
  user: string,
  groups: string[] = [],
): Promise<string> {
  const ca: CertPair = { certPath: cluster.caCertPath, keyPath: cluster.caKeyPath };
  const pair = await issueCert(ca, dir, name, { commonName: user, organizations: groups, usage: "client" });
  const path = `${dir}/${name}.kubeconfig`;
  await Deno.writeTextFile(
    path,
    certKubeconfig(
      cluster.server,
      await Deno.readTextFile(cluster.caCertPath),
      await Deno.readTextFile(pair.certPath),
      await Deno.readTextFile(pair.keyPath),
    ),
    { mode: 0o600 },
  );
  return path;
}
