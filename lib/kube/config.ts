// Connection settings for the apiserver, taken from kubeconfig files (merged as kubectl merges them) or the
// in-cluster service account, then turned into a Deno HttpClient for our own fetch-based REST and watch code.
// Clusters and users are read here (CA, client certificate and key as files or data, token, token file,
// exec plugin, basic auth); only legacy auth-provider plugins go through @kubernetes/client-node, loaded on
// demand because it costs about 75 MB of memory that MIC and NMI otherwise never need.

import { Http2Transport } from "./http2/transport.ts";
import { type ExecConfig, ExecCredentialError, ExecCredentialSource } from "./exec_credential.ts";
import { type KubeconfigDoc, mergeKubeconfigs, resolveRelativePaths } from "./kubeconfig_merge.ts";
import { importLazily } from "../lazy_import.ts";
import { parseSimpleYaml } from "./simple_yaml.ts";

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** A config problem the user must fix; the message is one line naming what is wrong. */
export class KubeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KubeConfigError";
  }
}

/** What carries requests over HTTP/2 (lib/kube's own client; the watch_loop bench compares node:http2). */
export interface Http2Requests {
  /** The answer, or undefined when fetch must carry this request. */
  request: Http2Transport["request"];
  close(): void;
}

export interface KubeConnection {
  /** Base URL without a trailing slash, e.g. `https://10.0.0.1:443`. */
  server: string;
  /**
   * Carries the cluster CA and any client certificate, for requests fetch makes. Made at first use when
   * `http2` is present (it then carries only what HTTP/2 declines; building fetch's TLS client costs a
   * process about 1 MiB of RSS). Close the connection when done.
   */
  readonly client: Deno.HttpClient;
  /**
   * lib/kube's own HTTP/2 connections, which carry every request when present (lists and watches read far
   * cheaper there; see http2/connection.ts). It declines servers fetch must reach (plain http, a proxy
   * from the environment, no h2 in ALPN); absent when turned off.
   */
  http2?: Http2Requests;
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

interface LoadKubeConfigOptions {
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
  /** Requests over lib/kube's own HTTP/2 connections (default true); false sends everything through fetch. */
  http2?: boolean;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
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

/** The merged document of some kubeconfig files and the files it came from, joined with ":". */
async function readMerged(
  paths: string[],
  origin: string,
): Promise<{ merged: KubeconfigDoc; source: string }> {
  const { merged, used } = await readKubeconfigs(paths, origin);
  return { merged, source: used.join(":") };
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
    // yaml (about 6 MiB of resident memory with the npm layer) loads only for what the simple parser
    // declines: anchors, block scalars, multi-line values, errors (which yaml then reports).
    let doc = parseSimpleYaml(text);
    if (doc === undefined) {
      const { parse: parseYaml } = await importLazily<typeof import("../npm/yaml.ts")>("lib/npm/yaml.ts");
      try {
        doc = parseYaml(text);
      } catch (e) {
        // YAML errors come with a multi-line excerpt; the first line says what is wrong.
        const why = (e as Error).message.split("\n")[0];
        throw new KubeConfigError(`kubeconfig ${path} (from ${origin}) is invalid: ${why}`);
      }
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

interface ClusterEntry {
  server?: string;
  "certificate-authority"?: string;
  "certificate-authority-data"?: string;
  "insecure-skip-tls-verify"?: boolean;
}

interface UserEntry {
  "client-certificate"?: string;
  "client-certificate-data"?: string;
  "client-key"?: string;
  "client-key-data"?: string;
  token?: string;
  tokenFile?: string;
  username?: string;
  password?: string;
  exec?: ExecConfig;
  "auth-provider"?: { name?: string; config?: Record<string, string> };
}

/** What the current (or named) context of a merged kubeconfig selects. */
interface Selected {
  cluster: { name: string; body: ClusterEntry };
  user?: { name: string; body: UserEntry };
  namespace?: string;
}

function entries<T>(doc: KubeconfigDoc, key: string, inner: string): Map<string, T> {
  const out = new Map<string, T>();
  const list = doc[key];
  for (const e of Array.isArray(list) ? list : []) {
    if (e && typeof e === "object" && typeof e.name === "string" && !out.has(e.name)) {
      out.set(e.name, (e[inner] ?? {}) as T);
    }
  }
  return out;
}

function select(doc: KubeconfigDoc, source: string, contextName?: string): Selected {
  const contexts = entries<{ cluster?: string; user?: string; namespace?: string }>(
    doc,
    "contexts",
    "context",
  );
  const name = contextName ?? (typeof doc["current-context"] === "string" ? doc["current-context"] : "");
  if (!name) throw new KubeConfigError(`kubeconfig ${source}: no current-context set`);
  const ctx = contexts.get(name);
  if (!ctx) throw new KubeConfigError(`kubeconfig ${source} has no context "${name}"`);
  const cluster = ctx.cluster
    ? entries<ClusterEntry>(doc, "clusters", "cluster").get(ctx.cluster)
    : undefined;
  if (!ctx.cluster || !cluster) {
    throw new KubeConfigError(`kubeconfig ${source}: the current context names no cluster`);
  }
  const user = ctx.user ? entries<UserEntry>(doc, "users", "user").get(ctx.user) : undefined;
  return {
    cluster: { name: ctx.cluster, body: cluster },
    user: ctx.user && user ? { name: ctx.user, body: user } : undefined,
    namespace: ctx.namespace,
  };
}

/** PEM from inline base64 data or a file (data wins, as in client-go). */
async function pemOf(
  data: string | undefined,
  file: string | undefined,
  what: string,
): Promise<string | undefined> {
  if (data) {
    try {
      return new TextDecoder().decode(
        Uint8Array.from(atob(data.replace(/\s+/g, "")), (c) => c.charCodeAt(0)),
      );
    } catch {
      throw new KubeConfigError(`${what}-data is not base64`);
    }
  }
  if (!file) return undefined;
  try {
    return await Deno.readTextFile(file);
  } catch (e) {
    throw new KubeConfigError(`cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}

/**
 * Legacy `auth-provider` plugins (oidc, azure, gcp) are client-node's to run; its module is large (about 75 MB
 * of resident memory), so it is loaded only for such a user.
 */
async function authProviderHeader(
  doc: KubeconfigDoc,
  context: string,
): Promise<() => Promise<string | undefined>> {
  const { KubeConfig } = await importLazily<typeof import("../npm/client_node.ts")>("lib/npm/client_node.ts");
  const kc = new KubeConfig();
  kc.loadFromString(JSON.stringify(doc));
  kc.setCurrentContext(context);
  return async () => {
    const o: { headers: Record<string, string> } = { headers: {} };
    await kc.applyToHTTPSOptions(o);
    return o.headers.Authorization;
  };
}

/** The kubeconfig to use and where it came from: an explicit path, `KUBECONFIG`, in-cluster, `~/.kube/config`. */
async function locateConfig(
  opts: LoadKubeConfigOptions,
  env: (name: string) => string | undefined,
  saDir: string,
): Promise<{ merged: KubeconfigDoc; source: string }> {
  const envKubeconfig = (env("KUBECONFIG") ?? "").split(":").filter((p) => p !== "");
  const home = env("HOME");
  if (opts.kubeconfigPath) return await readMerged([opts.kubeconfigPath], "--kubeconfig");
  if (envKubeconfig.length > 0) return await readMerged(envKubeconfig, "KUBECONFIG");
  if (env("KUBERNETES_SERVICE_HOST") && await exists(`${saDir}/token`)) {
    return { merged: inClusterConfig(env, saDir), source: "in-cluster" };
  }
  if (home && await exists(`${home}/.kube/config`)) {
    return await readMerged([`${home}/.kube/config`], "~/.kube/config");
  }
  throw new KubeConfigError(
    "no Kubernetes config found: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account",
  );
}

/** The in-cluster service account as a kubeconfig document, so one code path reads both. */
function inClusterConfig(env: (name: string) => string | undefined, saDir: string): KubeconfigDoc {
  const host = env("KUBERNETES_SERVICE_HOST")!;
  const port = env("KUBERNETES_SERVICE_PORT") ?? "443";
  const serverHost = host.includes(":") ? `[${host}]` : host;
  return {
    clusters: [{
      name: "in-cluster",
      cluster: { server: `https://${serverHost}:${port}`, "certificate-authority": `${saDir}/ca.crt` },
    }],
    users: [{ name: "in-cluster", user: { tokenFile: `${saDir}/token` } }],
    contexts: [{ name: "in-cluster", context: { cluster: "in-cluster", user: "in-cluster" } }],
    "current-context": "in-cluster",
  };
}

interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
}

/** The cluster's CA and the user's client certificate and key (PEM); a certificate needs its key. */
async function tlsMaterial(selected: Selected, source: string): Promise<TlsMaterial> {
  const { cluster, user } = selected;
  const u = user?.body ?? {};
  let tls: TlsMaterial;
  try {
    tls = {
      ca: await pemOf(
        cluster.body["certificate-authority-data"],
        cluster.body["certificate-authority"],
        "certificate-authority",
      ),
      cert: await pemOf(u["client-certificate-data"], u["client-certificate"], "client-certificate"),
      key: await pemOf(u["client-key-data"], u["client-key"], "client-key"),
    };
  } catch (e) {
    throw new KubeConfigError(`kubeconfig ${source}: ${(e as Error).message}`);
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new KubeConfigError(
      `kubeconfig ${source}: user "${user?.name}" has a client certificate without a key`,
    );
  }
  return tls;
}

interface Auth {
  header: () => Promise<string | undefined>;
  /** Present for an exec plugin, whose token can be fetched again after a 401. */
  exec?: ExecCredentialSource;
}

/** How the user authenticates: token, token file, exec plugin, auth-provider, basic auth, or not at all. */
async function authOf(
  doc: KubeconfigDoc,
  selected: Selected,
  source: string,
  opts: LoadKubeConfigOptions,
): Promise<Auth> {
  const u = selected.user?.body ?? {};
  const refreshMs = opts.tokenFileRefreshMs ?? 60_000;
  if (u.token) {
    const fixed = `Bearer ${u.token}`;
    return { header: () => Promise.resolve(fixed) };
  }
  if (u.tokenFile) {
    const read = tokenFileReader(u.tokenFile, refreshMs);
    return { header: async () => `Bearer ${await read()}` };
  }
  if (u.exec) {
    let exec: ExecCredentialSource;
    try {
      exec = new ExecCredentialSource(u.exec);
    } catch (e) {
      throw new KubeConfigError(
        `kubeconfig ${source}: user "${selected.user!.name}": ${(e as ExecCredentialError).message}`,
      );
    }
    return { header: async () => `Bearer ${await exec.token()}`, exec };
  }
  if (u["auth-provider"]) {
    const context = opts.context ?? String(doc["current-context"]);
    return { header: await cachedAuthProvider(doc, context, source, refreshMs) };
  }
  const fixed = u.username ? `Basic ${btoa(`${u.username}:${u.password ?? ""}`)}` : undefined;
  return { header: () => Promise.resolve(fixed) };
}

/** An auth-provider's header, asked for at most once per `refreshMs`: the providers refresh their own tokens. */
async function cachedAuthProvider(
  doc: KubeconfigDoc,
  context: string,
  source: string,
  refreshMs: number,
): Promise<() => Promise<string | undefined>> {
  let header: () => Promise<string | undefined>;
  try {
    header = await authProviderHeader(doc, context);
  } catch (e) {
    throw new KubeConfigError(`kubeconfig ${source}: auth-provider: ${(e as Error).message.split("\n")[0]}`);
  }
  let cached: { value?: string; at: number } | undefined;
  return async () => {
    if (!cached || performance.now() - cached.at > refreshMs) {
      cached = { value: await header(), at: performance.now() };
    }
    return cached.value;
  };
}

/** fetch's HttpClient with the cluster's CA and the client certificate. */
function httpClientOf(tls: TlsMaterial, source: string): Deno.HttpClient {
  const { ca, cert, key } = tls;
  try {
    return Deno.createHttpClient({
      ...(ca ? { caCerts: [ca] } : {}),
      ...(cert && key ? { cert, key } : {}),
    });
  } catch (e) {
    throw new KubeConfigError(`kubeconfig ${source}: unusable TLS material: ${(e as Error).message}`);
  }
}

/**
 * Finds and loads the connection settings: an explicit path, then `KUBECONFIG`, then the in-cluster
 * service account (when `KUBERNETES_SERVICE_HOST` is set), then `~/.kube/config`.
 */
export async function loadKubeConnection(opts: LoadKubeConfigOptions = {}): Promise<KubeConnection> {
  const env = opts.env ?? ((n: string) => Deno.env.get(n));
  const saDir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const { merged: doc, source } = await locateConfig(opts, env, saDir);
  const selected = select(doc, source, opts.context);
  const { cluster } = selected;
  if (!cluster.body.server) {
    throw new KubeConfigError(`kubeconfig ${source}: cluster "${cluster.name}" has no server`);
  }
  if (cluster.body["insecure-skip-tls-verify"]) {
    throw new KubeConfigError(
      `kubeconfig ${source}: insecure-skip-tls-verify is not supported; give the cluster's CA instead`,
    );
  }
  const tls = await tlsMaterial(selected, source);
  const { header: authHeader, exec } = await authOf(doc, selected, source, opts);
  let client = opts.http2 === false ? httpClientOf(tls, source) : undefined;
  let namespace = selected.namespace;
  if (source === "in-cluster") {
    namespace = await Deno.readTextFile(`${saDir}/namespace`).then((s) => s.trim()).catch(() => undefined);
  }
  const server = cluster.body.server.replace(/\/+$/, "");
  const http2 = opts.http2 === false
    ? undefined
    : new Http2Transport({ caCerts: tls.ca ? [tls.ca] : undefined, cert: tls.cert, key: tls.key }, env);
  return {
    server,
    get client() {
      return client ??= httpClientOf(tls, source);
    },
    ...(http2 ? { http2 } : {}),
    authHeader,
    namespace,
    source,
    ...(exec ? { refreshAuth: () => (exec.invalidate(), true) } : {}),
    close: () => {
      http2?.close();
      client?.close();
    },
  };
}
