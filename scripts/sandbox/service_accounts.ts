// A kubeconfig that acts as a service account: a bound token from the TokenRequest API (`kubectl create
// token`), the cluster's server and CA taken from an admin kubeconfig. The sandbox runs MIC and NMI with
// these, and the tests use them to prove the generated RBAC is enough.

interface ServiceAccountKubeconfigOptions {
  /** Runs kubectl as admin and returns stdout (throws on failure). */
  kubectl: (args: string[]) => Promise<string>;
  adminKubeconfigPath: string;
  namespace: string;
  serviceAccount: string;
  path: string;
  duration?: string;
}

export async function serviceAccountKubeconfig(o: ServiceAccountKubeconfigOptions): Promise<string> {
  const token = (await o.kubectl([
    "create",
    "token",
    o.serviceAccount,
    "-n",
    o.namespace,
    `--duration=${o.duration ?? "48h"}`,
  ])).trim();
  const admin = await Deno.readTextFile(o.adminKubeconfigPath);
  const server = /server:\s*(\S+)/.exec(admin)?.[1];
  const ca = /certificate-authority-data:\s*(\S+)/.exec(admin)?.[1];
  if (!server || !ca) {
    throw new Error(`${o.adminKubeconfigPath} names no server with certificate-authority-data`);
  }
  await Deno.writeTextFile(
    o.path,
    [
      "apiVersion: v1",
      "kind: Config",
      `clusters: [{name: c, cluster: {server: ${server}, certificate-authority-data: ${ca}}}]`,
      `users: [{name: ${o.serviceAccount}, user: {token: ${token}}}]`,
      `contexts: [{name: c, context: {cluster: c, user: ${o.serviceAccount}, namespace: ${o.namespace}}}]`,
      "current-context: c",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  return o.path;
}
