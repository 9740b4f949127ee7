// Acting as a service account of the generated RBAC: a token from the TokenRequest API (`kubectl create
// token`) in a kubeconfig of its own, and `kubectl auth can-i --as` questions.

import type { TestCluster } from "../../support/cluster.ts";

/** A kubeconfig that authenticates as `namespace/serviceAccount` with a fresh bound token. */
export async function serviceAccountKubeconfig(
  cluster: TestCluster,
  namespace: string,
  serviceAccount: string,
  path: string,
): Promise<string> {
  const token = await cluster.kubectl([
    "create",
    "token",
    serviceAccount,
    "-n",
    namespace,
    "--duration=3600s",
  ]);
  if (token.code !== 0) throw new Error(`kubectl create token ${serviceAccount}: ${token.stderr}`);
  const admin = await Deno.readTextFile(cluster.kubeconfigPath);
  const server = /server:\s*(\S+)/.exec(admin)![1];
  const ca = /certificate-authority-data:\s*(\S+)/.exec(admin)![1];
  await Deno.writeTextFile(
    path,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: c",
      `  cluster: {server: ${server}, certificate-authority-data: ${ca}}`,
      "users:",
      `- name: ${serviceAccount}`,
      `  user: {token: ${token.stdout.trim()}}`,
      "contexts:",
      `- name: c`,
      `  context: {cluster: c, user: ${serviceAccount}, namespace: ${namespace}}`,
      "current-context: c",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  return path;
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
