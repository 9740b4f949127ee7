// The unmodified SDK applications of tests/clients, as commands to run inside a pod namespace. The Go
// binaries and the Python virtual environment are built by `deno task setup` (install-clients.sh) into the
// sandbox cache, which records where in clients.env.

import { sandboxCacheDir } from "./pki.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

export type SdkClient =
  | "node-managed"
  | "node-default"
  | "python-managed"
  | "python-default"
  | "go-managed"
  | "go-default"
  | "go-adal";

interface SdkClientPaths {
  goDir: string;
  python: string;
}

export async function sdkClientPaths(): Promise<SdkClientPaths> {
  const file = `${sandboxCacheDir()}/clients.env`;
  const text = await Deno.readTextFile(file).catch(() => {
    throw new Error(`${file} is missing: run \`deno task setup\` to build the SDK test clients`);
  });
  const env = Object.fromEntries(text.trim().split("\n").map((l) => l.split("=", 2) as [string, string]));
  return { goDir: env.AAD_GO_CLIENTS, python: env.AAD_PYTHON };
}

/** argv for one client; `scope` is an OAuth scope (`<resource>/.default`). */
export function sdkClientArgv(paths: SdkClientPaths, client: SdkClient, scope: string): string[] {
  switch (client) {
    case "node-managed":
    case "node-default":
      return ["node", `${ROOT}tests/clients/node/get_token.mjs`, client.slice(5), scope];
    case "python-managed":
    case "python-default":
      return [paths.python, `${ROOT}tests/clients/python/get_token.py`, client.slice(7), scope];
    case "go-managed":
    case "go-default":
      return [`${paths.goDir}/azidentity-token`, client.slice(3), scope];
    case "go-adal":
      throw new Error("go-adal takes ARM arguments: use adalDemoArgv");
  }
}

/** The original demo's client: an adal MSI token for ARM, then a VM list call with it. */
export function adalDemoArgv(
  paths: SdkClientPaths,
  arm: { endpoint: string; subscriptionId: string; resourceGroup: string },
  clientId?: string,
): string[] {
  return [
    `${paths.goDir}/adal-demo`,
    arm.endpoint,
    arm.subscriptionId,
    arm.resourceGroup,
    ...(clientId ? [clientId] : []),
  ];
}

/** Environment that makes every client trust the sandbox CA, as a pod's image would. */
export function trustEnv(caPath: string): Record<string, string> {
  return { NODE_EXTRA_CA_CERTS: caPath, SSL_CERT_FILE: caPath, REQUESTS_CA_BUNDLE: caPath };
}
