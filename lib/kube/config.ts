// Connection settings for the apiserver, taken from a kubeconfig or the in-cluster service account through
// @kubernetes/client-node's KubeConfig (so every kubeconfig form users already have keeps working), then
// turned into a Deno HttpClient for our own fetch-based REST and watch code.

import { KubeConfig } from "@kubernetes/client-node";
import { parse as parseYaml } from "yaml";

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** A config problem the user must fix; the message is one line naming what is wrong. */
export class KubeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KubeConfigError";
  }
}

export interface KubeConnection {
  /** Base URL without a trailing slash, e.g. `https://10.0.0.1:443`. */
  server: string;
  /** Carries the cluster CA and any client certificate. Close it when done. */
  client: Deno.HttpClient;
  /** The Authorization header value for the next request, if the user authenticates with a token. */
  authHeader(): Promise<string | undefined>;
  /** The context's default namespace (in-cluster: the pod's namespace). */
  namespace?: string;
  /** Where the settings came from, for error messages: a kubeconfig path or "in-cluster". */
  source: string;
  close(): void;
}

export interface LoadKubeConfigOptions {
  /** An explicit kubeconfig path (a `--kubeconfig` flag); wins over everything else. */
  kubeconfigPath?: string;
  /** A context other than the kubeconfig's current one. */
  context?: string;
  /** Override environment lookups (tests). */
  env?: (name: string) => string | undefined;
  /** Where the in-cluster service account files live (tests). */
  serviceAccountDir?: string;
  /** How long a token read from a file is trusted before it is read again (client-go: 1 minute). */
  tokenFileRefreshMs?: number;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function pem(buf: unknown): string | undefined {
  if (buf == null) return undefined;
  if (typeof buf === "string") return buf;
  if (buf instanceof Uint8Array) return new TextDecoder().decode(buf);
  return undefined;
}

/** Re-reads a token file when its copy is older than `refreshMs`: projected tokens rotate under us. */
function tokenFileReader(path: string, refreshMs: number): () => Promise<string> {
  let token: string | undefined;
  let readAt = 0;
  return async () => {
    if (token === undefined || Date.now() - readAt >= refreshMs) {
      try {
        token = (await Deno.readTextFile(path)).trim();
        readAt = Date.now();
      } catch (e) {
        // Keep using the previous token if a rotation briefly removed the file.
        if (token === undefined) {
          throw new KubeConfigError(`cannot read token file ${path}: ${(e as Error).message}`);
        }
      }
    }
    return token;
  };
}

/** client-go's kubeconfig `tokenFile`, which client-node reads once and forgets; found again in the YAML. */
async function kubeconfigTokenFile(path: string, userName: string): Promise<string | undefined> {
  try {
    const doc = parseYaml(await Deno.readTextFile(path)) as {
      users?: { name?: string; user?: Record<string, unknown> }[];
    };
    const user = doc?.users?.find((u) => u?.name === userName)?.user;
    const file = user?.tokenFile ?? user?.["token-file"];
    return typeof file === "string" && file !== "" ? file : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Finds and loads the connection settings: an explicit path, then `KUBECONFIG`, then the in-cluster
 * service account (when `KUBERNETES_SERVICE_HOST` is set), then `~/.kube/config`.
 */
export async function loadKubeConnection(opts: LoadKubeConfigOptions = {}): Promise<KubeConnection> {
  const env = opts.env ?? ((n: string) => Deno.env.get(n));
  const saDir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const refreshMs = opts.tokenFileRefreshMs ?? 60_000;
  const kc = new KubeConfig();
  let source: string;
  let kubeconfigPath: string | undefined;

  const fromFile = async (path: string, origin: string) => {
    if (!(await exists(path))) {
      throw new KubeConfigError(`kubeconfig ${path} (from ${origin}) does not exist`);
    }
    try {
      kc.loadFromFile(path);
    } catch (e) {
      // YAML errors come with a multi-line excerpt; the first line says what is wrong.
      const why = (e as Error).message.split("\n")[0];
      throw new KubeConfigError(`kubeconfig ${path} (from ${origin}) is invalid: ${why}`);
    }
    source = path;
    kubeconfigPath = path;
  };

  const envKubeconfig = env("KUBECONFIG")?.split(":").find((p) => p !== "");
  const home = env("HOME");
  if (opts.kubeconfigPath) {
    await fromFile(opts.kubeconfigPath, "--kubeconfig");
  } else if (envKubeconfig) {
    await fromFile(envKubeconfig, "KUBECONFIG");
  } else if (env("KUBERNETES_SERVICE_HOST") && await exists(`${saDir}/token`)) {
    const host = env("KUBERNETES_SERVICE_HOST")!;
    const port = env("KUBERNETES_SERVICE_PORT") ?? "443";
    const serverHost = host.includes(":") ? `[${host}]` : host;
    kc.loadFromClusterAndUser(
      {
        name: "inCluster",
        server: `https://${serverHost}:${port}`,
        caFile: `${saDir}/ca.crt`,
        skipTLSVerify: false,
      },
      { name: "inClusterUser", authProvider: { name: "tokenFile", config: { tokenFile: `${saDir}/token` } } },
    );
    source = "in-cluster";
  } else if (home && await exists(`${home}/.kube/config`)) {
    await fromFile(`${home}/.kube/config`, "~/.kube/config");
  } else {
    throw new KubeConfigError(
      "no Kubernetes config found: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account",
    );
  }

  if (opts.context) {
    if (!kc.getContextObject(opts.context)) {
      throw new KubeConfigError(`kubeconfig ${source!} has no context "${opts.context}"`);
    }
    kc.setCurrentContext(opts.context);
  }
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster) throw new KubeConfigError(`kubeconfig ${source!}: the current context names no cluster`);
  if (!cluster.server) {
    throw new KubeConfigError(`kubeconfig ${source!}: cluster "${cluster.name}" has no server`);
  }
  if (cluster.skipTLSVerify) {
    throw new KubeConfigError(
      `kubeconfig ${source!}: insecure-skip-tls-verify is not supported; give the cluster's CA instead`,
    );
  }

  // applyToHTTPSOptions resolves files vs inline data for CA, client cert and key in one place.
  const https: { ca?: unknown; cert?: unknown; key?: unknown; headers?: Record<string, string> } = {
    headers: {},
  };
  let tokenFile: string | undefined;
  const provider = user?.authProvider as { name?: string; config?: { tokenFile?: string } } | undefined;
  if (provider?.config?.tokenFile) tokenFile = provider.config.tokenFile;
  else if (kubeconfigPath && user) tokenFile = await kubeconfigTokenFile(kubeconfigPath, user.name);
  try {
    await kc.applyToHTTPSOptions(https);
  } catch (e) {
    throw new KubeConfigError(`kubeconfig ${source!}: ${(e as Error).message}`);
  }
  const ca = pem(https.ca);
  const cert = pem(https.cert);
  const key = pem(https.key);
  if ((cert === undefined) !== (key === undefined)) {
    throw new KubeConfigError(
      `kubeconfig ${source!}: user "${user?.name}" has a client certificate without a key`,
    );
  }

  let authHeader: () => Promise<string | undefined>;
  if (tokenFile) {
    const read = tokenFileReader(tokenFile, refreshMs);
    authHeader = async () => `Bearer ${await read()}`;
  } else if (user?.exec || (provider && provider.name !== "tokenFile")) {
    // Exec plugins and auth providers refresh their own tokens; ask client-node, at most once a minute.
    let cached: { value?: string; at: number } | undefined;
    authHeader = async () => {
      if (!cached || Date.now() - cached.at > refreshMs) {
        const o: { headers: Record<string, string> } = { headers: {} };
        await kc.applyToHTTPSOptions(o);
        cached = { value: o.headers.Authorization, at: Date.now() };
      }
      return cached.value;
    };
  } else {
    const fixed = https.headers?.Authorization ??
      (user?.username ? `Basic ${btoa(`${user.username}:${user.password ?? ""}`)}` : undefined);
    authHeader = () => Promise.resolve(fixed);
  }

  let client: Deno.HttpClient;
  try {
    client = Deno.createHttpClient({
      ...(ca ? { caCerts: [ca] } : {}),
      ...(cert && key ? { cert, key } : {}),
    });
  } catch (e) {
    throw new KubeConfigError(`kubeconfig ${source!}: unusable TLS material: ${(e as Error).message}`);
  }
  const contextNs = kc.getContextObject(kc.getCurrentContext())?.namespace;
  let namespace = contextNs;
  if (source! === "in-cluster") {
    namespace = await Deno.readTextFile(`${saDir}/namespace`).then((s) => s.trim()).catch(() => undefined);
  }
  return {
    server: cluster.server.replace(/\/+$/, ""),
    client,
    authHeader,
    namespace,
    source: source!,
    close: () => client.close(),
  };
}
