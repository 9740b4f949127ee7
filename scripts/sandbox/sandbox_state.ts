// What a running sandbox is made of, recorded in one JSON file as each piece is made, so that `sandbox
// down` (and a failed `up`) can remove every process and namespace by pid and name, and the other
// subcommands find the endpoints. Pure helpers for the `env` output live here too.

import { sandboxCacheDir } from "./pki.ts";

export interface SandboxPod {
  name: string;
  namespace: string;
  ip: string;
  /** The pod's network namespace (root mode only). */
  netns?: string;
}

export interface SandboxIdentity {
  name: string;
  namespace: string;
  resourceId: string;
  clientId: string;
  /** Federated: a service account NAME in the namespace and a federated credential for it, nothing on the VM. */
  federated?: boolean;
}

/** The kubelet sandbox: a real cluster held by a supervisor process (kubelet_supervisor.ts). */
interface KubeletSandbox {
  /** 1 or 2 nodes. */
  nodes: number;
  /** The supervisor's ready file: what it started (see KubeletReady in kubelet_supervisor.ts). */
  readyPath: string;
  /** Set once the supervisor reported the cluster up. */
  ready?: boolean;
  /** Node names, containerd sockets and the ctr binary, for `pod --image-archive`. */
  ctr?: string;
  containerdSockets?: string[];
  nodeNames?: string[];
}

export interface SandboxRecord {
  dir: string;
  /** The run's logs: outside `dir`, so they outlive `down`. */
  logDir?: string;
  /** Set in the kubelet mode (`up --kubelet`); absent in the process mode. */
  kubelet?: KubeletSandbox;
  /** Network-namespace mode (root): NMI's iptables rules carry pod traffic. Otherwise loopback addresses. */
  netns: boolean;
  /** Processes to stop, in start order (stopped in reverse); SIGKILL only after graceMs (default 5 s). */
  pids: { what: string; pid: number; graceMs?: number }[];
  /** Network namespaces to delete, in creation order (deleted in reverse). */
  namespaces: string[];
  relays: Record<string, number>;
  cluster?: { server: string; kubeconfigPath: string; kubectl: string; dir: string };
  azure?: {
    adminUrl: string;
    armEndpoint: string;
    authorityHost: string;
    caCertPath: string;
    subscriptionId: string;
    tenantId: string;
    imdsUrl: string;
    vmssId: string;
    resourceGroup: string;
  };
  node?: { name: string; id: string; ns?: string; hostIp?: string; nodeIp?: string };
  nmi?: { address: string; probe: string; log: string };
  mic?: { probe: string; log: string };
  pods: SandboxPod[];
  identities: SandboxIdentity[];
}

/** Where the sandbox keeps its state; AAD_SANDBOX_DIR moves it (tests and the demo use their own). */
export function sandboxDir(): string {
  return Deno.env.get("AAD_SANDBOX_DIR") ?? `${sandboxCacheDir()}/sandbox`;
}

/**
 * Where a run's logs go: a fresh directory per `up`, beside the state directory rather than in it, so that
 * `down` (which removes the state) leaves them to read. AAD_SANDBOX_LOGS moves the parent.
 */
export function runLogDir(dir: string, now = new Date()): string {
  const parent = Deno.env.get("AAD_SANDBOX_LOGS") ?? `${dir}-logs`;
  return `${parent}/${now.toISOString().replace(/[:.]/g, "-")}`;
}

const statePath = (dir: string) => `${dir}/state.json`;

export function emptyRecord(dir: string, netns: boolean, logDir?: string): SandboxRecord {
  return {
    dir,
    ...(logDir ? { logDir } : {}),
    netns,
    pids: [],
    namespaces: [],
    relays: {},
    pods: [],
    identities: [],
  };
}

export async function readRecord(dir: string): Promise<SandboxRecord | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(statePath(dir))) as SandboxRecord;
  } catch {
    return undefined;
  }
}

export async function writeRecord(r: SandboxRecord): Promise<void> {
  const tmp = `${statePath(r.dir)}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(r, null, 2));
  await Deno.rename(tmp, statePath(r.dir));
}

const shellQuote = (v: string) => /^[A-Za-z0-9_./:@,+=-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;

/** `export K=V` lines for a shell: the cluster, the node, NMI and the emulator's endpoints. */
export function envExports(r: SandboxRecord): string {
  const vars: [string, string | undefined][] = [
    ["KUBECONFIG", r.cluster?.kubeconfigPath],
    ["KUBECTL_BIN", r.cluster?.kubectl],
    ["AAD_SANDBOX_NODE", r.node?.name],
    ["AAD_SANDBOX_NODE_NETNS", r.node?.ns],
    ["AAD_SANDBOX_NMI", r.nmi?.address],
    ["AZURE_ARM_ENDPOINT", r.azure?.armEndpoint],
    ["AZURE_AUTHORITY_HOST", r.azure?.authorityHost],
    ["AZURE_SUBSCRIPTION_ID", r.azure?.subscriptionId],
    ["AZURE_TENANT_ID", r.azure?.tenantId],
    ["AAD_SANDBOX_IMDS", r.azure?.imdsUrl],
    ["NODE_EXTRA_CA_CERTS", r.azure?.caCertPath],
  ];
  return vars.filter(([, v]) => v !== undefined).map(([k, v]) => `export ${k}=${shellQuote(v!)}`).join("\n");
}

/** A kubelet-mode pod's image: a reference, and an archive to import into every node first. */
export interface PodImage {
  image?: string;
  imageArchive?: string;
}

/** `pod NAME [--binding SELECTOR] [-n NS] [--image REF] [--image-archive FILE]` and `identity NAME [-n NS] [--federated]`: the words after the subcommand. */
export function parseNamed(
  args: string[],
  allowBinding: boolean,
  allowFederated = false,
):
  | ({ ok: true; name: string; namespace: string; binding?: string; federated?: boolean } & PodImage)
  | { ok: false; error: string } {
  let name: string | undefined;
  let namespace = "default";
  let binding: string | undefined;
  let federated = false;
  const image: PodImage = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined || v.startsWith("-")) throw new Error(`${a} needs a value`);
      return v;
    };
    try {
      if (a === "-n" || a === "--namespace") namespace = value();
      else if (a.startsWith("--namespace=")) namespace = a.slice(12);
      else if (allowBinding && a === "--binding") binding = value();
      else if (allowBinding && a.startsWith("--binding=")) binding = a.slice(10);
      else if (allowBinding && a === "--image") image.image = value();
      else if (allowBinding && a === "--image-archive") image.imageArchive = value();
      else if (allowFederated && a === "--federated") federated = true;
      else if (a.startsWith("-")) return { ok: false, error: `unknown flag ${a}` };
      else if (name === undefined) name = a;
      else return { ok: false, error: `unexpected argument ${a}` };
    } catch (e) {
      return { ok: false, error: (e as Error).message };
    }
  }
  const dns = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
  if (!name) return { ok: false, error: "a NAME is required" };
  if (!dns.test(name)) {
    return { ok: false, error: `'${name}' is not a valid name (lower-case letters, digits, -)` };
  }
  if (!dns.test(namespace)) return { ok: false, error: `'${namespace}' is not a valid namespace` };
  if (binding !== undefined && !/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(binding)) {
    return { ok: false, error: `'${binding}' is not a valid label value` };
  }
  return {
    ok: true,
    name,
    namespace,
    ...(binding !== undefined ? { binding } : {}),
    ...(federated ? { federated } : {}),
    ...image,
  };
}
