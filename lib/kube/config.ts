// Connection settings for the apiserver, taken from a kubeconfig or the in-cluster service account through
// @kubernetes/client-node's KubeConfig (so every kubeconfig form users already have keeps working), then
// turned into a Deno HttpClient for our own fetch-based REST and watch code.

import { KubeConfig } from "@kubernetes/client-node";
import { parse as parseYaml } from "yaml";
import { type ExecConfig, ExecCredentialError, ExecCredentialSource } from "./exec_credential.ts";
import { type KubeconfigDoc, mergeKubeconfigs, resolveRelativePaths } from "./kubeconfig_merge.ts";

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
  /** Where the settings came from, for error messages: a kubeconfig path (or list) or "in-cluster". */
  source: string;
  /**
   * Called after a 401: drops cached credentials that can be fetched again (an exec plugin's token) and
   * returns true when a retry may succeed. Absent or false: the 401 stands.
   */
  refreshAuth?(): boolean;
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
    if (token === undefined || performance.now() - readAt >= refreshMs) {
      try {
        token = (await Deno.readTextFile(path)).trim();
        readAt = performance.now();
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

/** Reads, path-resolves and merges kubeconfig files; missing ones are skipped, as kubectl does. */
async function readKubeconfigs(
  paths: string[],
  origin: string,
): Promise<{ merged: KubeconfigDoc; used: string[] }> {
  const docs: KubeconfigDoc[] = [];
  const used: string[] = [];
  for (const path of paths) {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw new KubeConfigError(
        `kubeconfig ${path} (from ${origin}) cannot be read: ${(e as Error).message}`,
      );
    }
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (e) {
      // YAML errors come with a multi-line excerpt; the first line says what is wrong.
      const why = (e as Error).message.split("\n")[0];
      throw new KubeConfigError(`kubeconfig ${path} (from ${origin}) is invalid: ${why}`);
    }
    if (doc === null || doc === undefined) doc = {};
    if (typeof doc !== "object" || Array.isArray(doc)) {
      throw new KubeConfigError(`kubeconfig ${path} (from ${origin}) is invalid: not a mapping`);
    }
    docs.push(resolveRelativePaths(doc as KubeconfigDoc, path));
    used.push(path);
  }
  if (used.length === 0) {
    throw new KubeConfigError(
      paths.length === 1
        ? `kubeconfig ${paths[0]} (from ${origin}) does not exist`
        : `none of the kubeconfig files ${paths.join(", ")} (from ${origin}) exists`,
    );
  }
  return { merged: mergeKubeconfigs(docs), used };
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

  // Users' exec sections are ours to run (client-node would run the plugin on every header lookup and never
  // on a 401); tokenFile too, which client-node reads once and forgets.
  const execs = new Map<string, ExecConfig>();
  const tokenFiles = new Map<string, string>();
  const fromFiles = async (paths: string[], origin: string) => {
    const { merged, used } = await readKubeconfigs(paths, origin);
    const users = (merged.users as { name: string; user?: Record<string, unknown> }[]).map((u) => {
      const user = u.user;
      if (!user || typeof user !== "object") return u;
      const tf = user.tokenFile ?? user["token-file"];
      if (typeof tf === "string" && tf !== "") tokenFiles.set(u.name, tf);
      if (!user.exec) return u;
      execs.set(u.name, user.exec as ExecConfig);
      const { exec: _, ...rest } = user;
      return { ...u, user: rest };
    });
    source = used.join(":");
    try {
      kc.loadFromString(JSON.stringify({ ...merged, users }));
    } catch (e) {
      const why = (e as Error).message.split("\n")[0];
      throw new KubeConfigError(`kubeconfig ${source} (from ${origin}) is invalid: ${why}`);
    }
  };

  const envKubeconfig = (env("KUBECONFIG") ?? "").split(":").filter((p) => p !== "");
  const home = env("HOME");
  if (opts.kubeconfigPath) {
    await fromFiles([opts.kubeconfigPath], "--kubeconfig");
  } else if (envKubeconfig.length > 0) {
    await fromFiles(envKubeconfig, "KUBECONFIG");
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
    await fromFiles([`${home}/.kube/config`], "~/.kube/config");
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
  else if (user) tokenFile = tokenFiles.get(user.name);
  let exec: ExecCredentialSource | undefined;
  const execConfig = user ? execs.get(user.name) : undefined;
  if (execConfig && !tokenFile) {
    try {
      exec = new ExecCredentialSource(execConfig);
    } catch (e) {
      throw new KubeConfigError(
        `kubeconfig ${source!}: user "${user!.name}": ${(e as ExecCredentialError).message}`,
      );
    }
  }
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
  } else if (exec) {
    const plugin = exec;
    authHeader = async () => `Bearer ${await plugin.token()}`;
  } else if (provider && provider.name !== "tokenFile") {
    // Auth providers refresh their own tokens; ask client-node, at most once a minute.
    let cached: { value?: string; at: number } | undefined;
    authHeader = async () => {
      if (!cached || performance.now() - cached.at > refreshMs) {
        const o: { headers: Record<string, string> } = { headers: {} };
        await kc.applyToHTTPSOptions(o);
        cached = { value: o.headers.Authorization, at: performance.now() };
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
    ...(exec ? { refreshAuth: () => (exec.invalidate(), true) } : {}),
    close: () => client.close(),
  };
}
