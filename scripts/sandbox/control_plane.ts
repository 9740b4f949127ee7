// A real, local Kubernetes control plane: etcd and kube-apiserver on loopback, TLS with certificates made
// per run, RBAC on, service-account tokens on, an admin kubeconfig in a temp dir. No kubelet, scheduler or
// controller-manager: tests create Pods and Nodes and set their status through the API themselves.

import { type CommandResult, runCommandText } from "../../lib/command.ts";
import { ensureCa, issueCert, rsaKey, sandboxCacheDir } from "./pki.ts";

interface ControlPlaneBinaries {
  kubeApiserver: string;
  etcd: string;
  kubectl: string;
}

interface ControlPlaneOptions {
  /** Extra kube-apiserver flags, e.g. `--etcd-compaction-interval=0` or watch-cache tuning for fault tests. */
  apiserverArgs?: string[];
  /** Where to keep data, certificates, logs and the kubeconfig; a fresh temp dir by default. */
  dir?: string;
  readyTimeoutMs?: number;
  /**
   * Runs the control plane a real node needs (scripts/sandbox/node): the Node authorizer and NodeRestriction
   * for kubelets' own certificates, ServiceAccount admission (auto-mounted tokens; the controller-manager
   * makes each namespace's `default` account), and a client certificate to reach kubelets by InternalIP.
   */
  nodes?: boolean;
}

export interface ControlPlane {
  /** `https://127.0.0.1:<port>`; also the service-account token issuer. */
  server: string;
  /** PEM file of the cluster's CA (serving certificate and client certificates). */
  caCertPath: string;
  /** Its key: nodes and controllers get their own client certificates from it. */
  caKeyPath: string;
  kubeconfigPath: string;
  /** `http://127.0.0.1:<port>` (plain HTTP, loopback only). */
  etcdEndpoint: string;
  dir: string;
  binaries: ControlPlaneBinaries;
  /** Stops kube-apiserver (SIGTERM, or SIGKILL with `kill: true`); etcd and all data stay. */
  stopApiserver(opts?: { kill?: boolean }): Promise<void>;
  /** Starts kube-apiserver again on the same port against the same etcd, and waits for /readyz. */
  startApiserver(): Promise<void>;
  /** Compacts etcd up to its current revision, so older resourceVersions become "too old". */
  compactEtcd(): Promise<number>;
  /** Runs the pinned kubectl against this cluster. */
  kubectl(args: string[], stdin?: string): Promise<KubectlResult>;
  /** Leaves etcd and kube-apiserver running after this process exits; returns what is needed to stop them. */
  detach(): SandboxState;
  /** Stops both processes and removes the data directory. */
  stop(): Promise<void>;
}

const K8S_BIN_ENV = {
  kubeApiserver: "KUBE_APISERVER_BIN",
  etcd: "ETCD_BIN",
  kubectl: "KUBECTL_BIN",
} as const;

/** Finds the binaries: explicit env vars first, then KUBE_BIN_DIR, then the build cache (building if needed). */
async function resolveBinaries(): Promise<ControlPlaneBinaries> {
  const fromEnv = {
    kubeApiserver: Deno.env.get(K8S_BIN_ENV.kubeApiserver),
    etcd: Deno.env.get(K8S_BIN_ENV.etcd),
    kubectl: Deno.env.get(K8S_BIN_ENV.kubectl),
  };
  if (fromEnv.kubeApiserver && fromEnv.etcd && fromEnv.kubectl) {
    return fromEnv as ControlPlaneBinaries;
  }
  const script = new URL("./install-control-plane.sh", import.meta.url).pathname;
  const out = await new Deno.Command("bash", { args: [script], stdout: "piped", stderr: "inherit" }).output();
  if (!out.success) throw new Error(`control-plane install failed (${script}); see the output above`);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  const dir = lines[lines.length - 1];
  return {
    kubeApiserver: fromEnv.kubeApiserver ?? `${dir}/kube-apiserver`,
    etcd: fromEnv.etcd ?? `${dir}/etcd`,
    kubectl: fromEnv.kubectl ?? `${dir}/kubectl`,
  };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A child whose output goes straight to a log file, so no pipe can fill up and stall it. */
class LoggedProcess {
  #child: Deno.ChildProcess;
  readonly exited: Promise<Deno.CommandStatus>;

  constructor(bin: string, args: string[], logPath: string) {
    this.#child = new Deno.Command("sh", {
      args: ["-c", 'exec "$0" "$@" >>"$LOGFILE" 2>&1', bin, ...args],
      env: { LOGFILE: logPath },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.exited = this.#child.status;
  }

  /** Lets this process exit while the child keeps running. */
  unref(): void {
    this.#child.unref();
  }

  get pid(): number {
    return this.#child.pid;
  }

  async stop(signal: Deno.Signal = "SIGTERM", graceMs = 10_000): Promise<void> {
    try {
      this.#child.kill(signal);
    } catch {
      // already exited
    }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* exited */ }
    }, graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

async function tail(path: string, lines = 15): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trim().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

function b64(text: string): string {
  return btoa(text);
}

/**
 * Lets anyone read the issuer's discovery document and JWKS (as AKS and kubeadm clusters with an OIDC
 * issuer do), so Azure AD can verify service-account tokens without credentials.
 */
const ISSUER_DISCOVERY_BINDING = {
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "ClusterRoleBinding",
  metadata: { name: "service-account-issuer-discovery-unauthenticated" },
  roleRef: {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "ClusterRole",
    name: "system:service-account-issuer-discovery",
  },
  subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "system:unauthenticated" }],
};

/** Creates ISSUER_DISCOVERY_BINDING with the admin client (it already exists on a restart: fine). */
async function bindIssuerDiscovery(server: string, client: Deno.HttpClient): Promise<void> {
  const res = await fetch(`${server}/apis/rbac.authorization.k8s.io/v1/clusterrolebindings`, {
    method: "POST",
    client,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(ISSUER_DISCOVERY_BINDING),
  });
  const text = await res.text();
  if (!res.ok && res.status !== 409) {
    throw new Error(`binding issuer discovery failed: ${res.status} ${text}`);
  }
}

/** The cluster's certificates: a CA per run, the apiserver's serving pair, the admin's, the SA signing key. */
async function issueClusterCerts(pki: string, nodes: boolean | undefined) {
  // A CA per run for the cluster; the long-lived sandbox CA is only for serving local Azure endpoints.
  const ca = await ensureCa(pki, "aad-pod-identity sandbox kube CA");
  const [serving, admin, sa, kubeletClient] = await Promise.all([
    issueCert(ca, pki, "apiserver", {
      commonName: "kube-apiserver",
      dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
      ipAddresses: ["127.0.0.1", "10.96.0.1"],
      usage: "server",
    }),
    issueCert(ca, pki, "admin", {
      commonName: "sandbox-admin",
      organizations: ["system:masters"],
      usage: "client",
    }),
    rsaKey(pki, "service-account"),
    nodes
      ? issueCert(ca, pki, "apiserver-kubelet-client", {
        commonName: "kube-apiserver-kubelet-client",
        organizations: ["system:masters"], // kubelets authorise it by webhook: logs, exec
        usage: "client",
      })
      : undefined,
  ]);
  return { ca, serving, admin, sa, kubeletClient };
}

type ClusterCerts = Awaited<ReturnType<typeof issueClusterCerts>>;

function etcdFlags(dir: string, etcdEndpoint: string, etcdPeerPort: number): string[] {
  return [
    "--name=sandbox",
    `--data-dir=${dir}/etcd`,
    `--listen-client-urls=${etcdEndpoint}`,
    `--advertise-client-urls=${etcdEndpoint}`,
    `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
    `--initial-cluster=sandbox=http://127.0.0.1:${etcdPeerPort}`,
    // Test data is thrown away after the run: durability buys nothing and fsync costs latency.
    "--unsafe-no-fsync",
    "--log-level=warn",
  ];
}

function waitForEtcd(etcdEndpoint: string, dir: string, readyTimeoutMs: number): Promise<void> {
  return waitFor(
    async () => (await fetch(`${etcdEndpoint}/health`)).ok,
    readyTimeoutMs,
    async () => `etcd did not become healthy; log:\n${await tail(`${dir}/etcd.log`)}`,
  );
}

function apiserverFlags(
  certs: ClusterCerts,
  etcdEndpoint: string,
  server: string,
  apiPort: number,
  opts: ControlPlaneOptions,
): string[] {
  const { ca, serving, sa, kubeletClient } = certs;
  return [
    `--etcd-servers=${etcdEndpoint}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${apiPort}`,
    `--tls-cert-file=${serving.certPath}`,
    `--tls-private-key-file=${serving.keyPath}`,
    `--client-ca-file=${ca.certPath}`,
    `--authorization-mode=${opts.nodes ? "Node,RBAC" : "RBAC"}`,
    // The issuer is this apiserver's own URL, so an external verifier (Azure AD, in federated mode) finds
    // its discovery document and JWKS there; the old in-cluster name stays accepted for tokens.
    `--service-account-issuer=${server}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-jwks-uri=${server}/openid/v1/jwks`,
    `--service-account-key-file=${sa.publicKeyPath}`,
    `--service-account-signing-key-file=${sa.keyPath}`,
    "--service-cluster-ip-range=10.96.0.0/16",
    "--allow-privileged=true",
    ...(kubeletClient ? nodeApiserverFlags(ca.certPath, kubeletClient) : [
      // No controller-manager creates each namespace's "default" ServiceAccount, so its admission check
      // would refuse every pod; tests create the service accounts they need explicitly.
      "--disable-admission-plugins=ServiceAccount",
    ]),
    "--profiling=false",
    ...(opts.apiserverArgs ?? []),
  ];
}

async function adminHttpClient(certs: ClusterCerts): Promise<Deno.HttpClient> {
  return Deno.createHttpClient({
    caCerts: [await Deno.readTextFile(certs.ca.certPath)],
    cert: await Deno.readTextFile(certs.admin.certPath),
    key: await Deno.readTextFile(certs.admin.keyPath),
  });
}

/** Closes the client the first time it is called; later calls do nothing. */
function closerOf(client: Deno.HttpClient): () => void {
  let open = true;
  return () => {
    if (open) client.close();
    open = false;
  };
}

/** The processes of one control plane; `apiserver` changes as tests stop and start it again. */
interface ControlPlaneProcesses {
  etcd: LoggedProcess;
  apiserver?: LoggedProcess;
}

/**
 * Stops what a failed start began and rethrows: it must not leave its processes running behind the caller,
 * who has nothing to stop. `tempDir` is removed too (only a directory the start made itself).
 */
async function abandonStart(e: unknown, procs: ControlPlaneProcesses, tempDir?: string): Promise<never> {
  try {
    await procs.apiserver?.stop();
  } finally {
    await procs.etcd.stop();
  }
  if (tempDir) await Deno.remove(tempDir, { recursive: true }).catch(() => {});
  throw e;
}

interface ApiserverLaunch {
  bin: string;
  args: string[];
  dir: string;
  server: string;
  adminClient: Deno.HttpClient;
  readyTimeoutMs: number;
}

/** Spawns kube-apiserver and waits for /readyz; `procs` holds it before the wait, so a failure can stop it. */
async function launchApiserver(l: ApiserverLaunch, procs: ControlPlaneProcesses): Promise<void> {
  const log = `${l.dir}/kube-apiserver.log`;
  const proc = procs.apiserver = new LoggedProcess(l.bin, l.args, log);
  let exited = false;
  proc.exited.then(() => exited = true);
  await waitFor(
    async () => {
      if (exited) {
        throw new ProcessExited(`kube-apiserver exited; log:\n${await tail(log)}`);
      }
      const r = await fetch(`${l.server}/readyz`, { client: l.adminClient });
      await r.body?.cancel();
      return r.ok;
    },
    l.readyTimeoutMs,
    async () => `kube-apiserver not ready at ${l.server}; log:\n${await tail(log)}`,
  );
}

/** An admin kubeconfig with the certificates inline, so it works from any directory. */
function kubeconfigYaml(server: string, caPem: string, certPem: string, keyPem: string): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: sandbox",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(caPem)}`,
    "users:",
    "- name: sandbox-admin",
    "  user:",
    `    client-certificate-data: ${b64(certPem)}`,
    `    client-key-data: ${b64(keyPem)}`,
    "contexts:",
    "- name: sandbox",
    "  context: {cluster: sandbox, user: sandbox-admin, namespace: default}",
    "current-context: sandbox",
    "",
  ].join("\n");
}

async function writeKubeconfig(path: string, server: string, certs: ClusterCerts): Promise<void> {
  const caPem = await Deno.readTextFile(certs.ca.certPath);
  const certPem = await Deno.readTextFile(certs.admin.certPath);
  const keyPem = await Deno.readTextFile(certs.admin.keyPath);
  await Deno.writeTextFile(path, kubeconfigYaml(server, caPem, certPem, keyPem));
}

/** Compacts etcd up to its current revision and returns that revision. */
async function compactEtcd(etcdEndpoint: string): Promise<number> {
  const range = await (await fetch(`${etcdEndpoint}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: b64("\0") }),
  })).json() as { header: { revision: string } };
  const revision = Number(range.header.revision);
  const r = await fetch(`${etcdEndpoint}/v3/kv/compaction`, {
    method: "POST",
    body: JSON.stringify({ revision, physical: true }),
  });
  if (!r.ok) throw new Error(`etcd compaction failed: ${r.status} ${await r.text()}`);
  await r.body?.cancel();
  return revision;
}

type ControlPlaneFacts = Pick<
  ControlPlane,
  "server" | "caCertPath" | "caKeyPath" | "kubeconfigPath" | "etcdEndpoint" | "dir" | "binaries"
>;

/** The caller's handle on a started control plane: restarts, detaching, and the stop that cleans up. */
function controlPlaneHandle(
  facts: ControlPlaneFacts,
  procs: ControlPlaneProcesses,
  startApiserver: () => Promise<void>,
  closeAdminClient: () => void,
  tempDir: string | undefined,
): ControlPlane {
  const { server, kubeconfigPath, etcdEndpoint, dir, binaries } = facts;
  return {
    ...facts,
    async stopApiserver(o = {}) {
      await procs.apiserver?.stop(o.kill ? "SIGKILL" : "SIGTERM");
      procs.apiserver = undefined;
    },
    startApiserver,
    compactEtcd: () => compactEtcd(etcdEndpoint),
    kubectl: (args: string[], stdin?: string) => runKubectl(binaries.kubectl, kubeconfigPath, args, stdin),
    detach() {
      closeAdminClient();
      procs.etcd.unref();
      procs.apiserver?.unref();
      return {
        server,
        kubeconfigPath,
        kubectl: binaries.kubectl,
        dir,
        pids: [procs.etcd.pid, ...(procs.apiserver ? [procs.apiserver.pid] : [])],
      };
    },
    async stop() {
      // Processes first: nothing that can throw may run before them, or they outlive the run.
      try {
        await procs.apiserver?.stop();
      } finally {
        await procs.etcd.stop();
        closeAdminClient();
      }
      if (tempDir) await Deno.remove(tempDir, { recursive: true }).catch(() => {});
    },
  };
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const binaries = await resolveBinaries();
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "aad-sandbox-" });
  const tempDir = opts.dir ? undefined : dir;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 90_000;
  const certs = await issueClusterCerts(`${dir}/pki`, opts.nodes);

  const [etcdPort, etcdPeerPort, apiPort] = [freePort(), freePort(), freePort()];
  const etcdEndpoint = `http://127.0.0.1:${etcdPort}`;
  const server = `https://127.0.0.1:${apiPort}`;

  const etcd = new LoggedProcess(
    binaries.etcd,
    etcdFlags(dir, etcdEndpoint, etcdPeerPort),
    `${dir}/etcd.log`,
  );
  const procs: ControlPlaneProcesses = { etcd };
  await waitForEtcd(etcdEndpoint, dir, readyTimeoutMs).catch((e) => abandonStart(e, procs, tempDir));

  const args = apiserverFlags(certs, etcdEndpoint, server, apiPort, opts);
  const adminClient = await adminHttpClient(certs);
  const closeAdminClient = closerOf(adminClient);
  const launch = { bin: binaries.kubeApiserver, args, dir, server, adminClient, readyTimeoutMs };
  const startApiserver = () => launchApiserver(launch, procs);
  const failStart = (e: unknown) => {
    closeAdminClient();
    return abandonStart(e, procs, tempDir);
  };
  await startApiserver().catch(failStart);
  await bindIssuerDiscovery(server, adminClient).catch(failStart);

  const kubeconfigPath = `${dir}/kubeconfig`;
  await writeKubeconfig(kubeconfigPath, server, certs);

  const facts = {
    server,
    caCertPath: certs.ca.certPath,
    caKeyPath: certs.ca.keyPath,
    kubeconfigPath,
    etcdEndpoint,
    dir,
    binaries,
  };
  return controlPlaneHandle(facts, procs, startApiserver, closeAdminClient, tempDir);
}

/** What kube-apiserver needs to serve real kubelets (see ControlPlaneOptions.nodes). */
function nodeApiserverFlags(
  caCertPath: string,
  kubeletClient: { certPath: string; keyPath: string },
): string[] {
  return [
    "--enable-admission-plugins=NodeRestriction",
    `--kubelet-client-certificate=${kubeletClient.certPath}`,
    `--kubelet-client-key=${kubeletClient.keyPath}`,
    `--kubelet-certificate-authority=${caCertPath}`,
    // Nodes live in network namespaces reachable by address only; their names resolve nowhere.
    "--kubelet-preferred-address-types=InternalIP,Hostname",
  ];
}

/** Applies deploy/crds.yaml and waits until every CRD in it is established. */
export async function installCrds(cluster: Pick<ControlPlane, "kubectl">): Promise<void> {
  const crds = new URL("../../deploy/crds.yaml", import.meta.url).pathname;
  const applied = await cluster.kubectl(["apply", "--server-side", "-f", crds]);
  if (applied.code !== 0) throw new Error(`installing CRDs failed: ${applied.stderr}`);
  const waited = await cluster.kubectl(["wait", "--for=condition=established", "--timeout=60s", "-f", crds]);
  if (waited.code !== 0) throw new Error(`CRDs not established: ${waited.stderr}`);
}

export type KubectlResult = CommandResult;

/** Runs kubectl against one kubeconfig, optionally feeding it stdin (e.g. a manifest for `-f -`). */
export function runKubectl(
  kubectlBin: string,
  kubeconfigPath: string,
  args: string[],
  stdin?: string,
): Promise<KubectlResult> {
  return runCommandText(kubectlBin, [`--kubeconfig=${kubeconfigPath}`, ...args], stdin);
}

/** A process waited on has exited: no point in waiting any longer. */
class ProcessExited extends Error {}

async function waitFor(
  check: () => Promise<boolean>,
  timeoutMs: number,
  describe: () => Promise<string>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (e) {
      lastError = e;
      if (e instanceof ProcessExited) break;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
  throw new Error(`${await describe()}${why}`);
}

/** What `deno task cluster up` records so other processes (tests, the demo) can use the same cluster. */
export interface SandboxState {
  server: string;
  kubeconfigPath: string;
  kubectl: string;
  dir: string;
  pids: number[];
}

/** Where a long-lived sandbox (`deno task cluster up`) records itself. */
export function sandboxStatePath(): string {
  return `${sandboxCacheDir()}/cluster.json`;
}
