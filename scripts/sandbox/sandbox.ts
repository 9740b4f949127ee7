// `deno task sandbox up | down | status | env | identity NAME | pod NAME | exec NAME -- CMD...`: a local
// aad-pod-identity that outlives the command, to try an unmodified app against: a real control plane, the
// Azure emulator, and MIC and NMI as the real processes, running with the service-account tokens of the
// generated RBAC, on one emulated node of an emulated scale set.
//
// As root the node is a network namespace: NMI installs its iptables rules there, and each pod is a
// namespace behind it whose traffic to 169.254.169.254 goes through them. Without root, NMI listens on
// 127.0.0.1 and pods are loopback addresses (curl --interface). Everything made is recorded as it is made
// (sandbox_state.ts), and `down` removes it all but the run's logs, which are written beside the state.
// `up --kubelet` is the same on a real cluster (kubelet_sandbox.ts): MIC and NMI as the pods users deploy.

import { installCrds, runKubectl, startControlPlane } from "./control_plane.ts";
import { alive, spawnDetached, stopPid, tailOf, waitFor } from "./detached.ts";
import { addPod, createNode, mirror, type NetRecorder, type NodeNet, SANDBOX_NET } from "./node_net.ts";
import { netnsUnavailable } from "./netns.ts";
import { realNodeUnavailable } from "./node/preflight.ts";
import { kubeletKubectl, kubeletPod, kubeletReadyLines, startKubeletCluster } from "./kubelet_sandbox.ts";
import { serviceAccountKubeconfig } from "./service_accounts.ts";
import {
  emptyRecord,
  envExports,
  parseNamed,
  type PodImage,
  readRecord,
  runLogDir,
  sandboxDir,
  type SandboxIdentity,
  type SandboxPod,
  type SandboxRecord,
  writeRecord,
} from "./sandbox_state.ts";
import { MIC_ENTRYPOINT, MIC_PERMISSIONS } from "../../mic/permissions.ts";
import { NMI_ENTRY, NMI_PERMISSIONS } from "../../nmi/permissions.ts";
import { installationObjects, toYaml } from "../manifests.ts";
import { defaultOptions } from "../manifests/options.ts";
import { MIC_LEASE, MIC_SERVICE_ACCOUNT, NMI_SERVICE_ACCOUNT } from "../manifests/rbac.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const EMULATOR = new URL("./azure/main.ts", import.meta.url).pathname;
export const NODE_NAME = "aks-nodepool1-sandbox-0";
const RESOURCE_GROUP = "MC_sandbox";
const SCALE_SET = "aks-nodepool1";
const IDENTITY_GROUP = "sandbox-identities";
const NAMESPACE = "default";

type Print = (line: string) => void;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function recorder(r: SandboxRecord): NetRecorder {
  return {
    namespace: (name) => r.namespaces.push(name),
    spawn: (what, argv) =>
      r.pids.push({ what, pid: spawnDetached(argv, `${r.logDir ?? r.dir}/forwarders.log`) }),
  };
}

async function kubectl(r: SandboxRecord, args: string[], stdin?: string): Promise<string> {
  const c = r.cluster!;
  const out = await runKubectl(c.kubectl, c.kubeconfigPath, args, stdin);
  if (out.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${out.stderr.trim()}`);
  return out.stdout;
}

function saKubeconfig(r: SandboxRecord, serviceAccount: string, path: string): Promise<string> {
  return serviceAccountKubeconfig({
    kubectl: (args) => kubectl(r, args),
    adminKubeconfigPath: r.cluster!.kubeconfigPath,
    namespace: NAMESPACE,
    serviceAccount,
    path,
  });
}

/** Starts the Azure emulator as a detached process and reads the endpoints it prints. */
async function startEmulator(r: SandboxRecord, clusterCaPath: string): Promise<void> {
  const config = {
    lroDurationMs: 500,
    // IMDS learning of an attach late is real (10 s by default); NMI hides it, but the sandbox should
    // answer quickly, so it is short here.
    imdsPropagationDelayMs: 500,
    identities: [],
    // A VM beside the node pool, so an app's ARM call has something to list.
    vms: [{ resourceGroup: RESOURCE_GROUP, name: "jumpbox" }],
    vmss: [{ resourceGroup: RESOURCE_GROUP, name: SCALE_SET, capacity: 1 }],
    servicePrincipals: [{ clientId: crypto.randomUUID(), secret: crypto.randomUUID() }],
    imds: [{ vmss: `${RESOURCE_GROUP}/${SCALE_SET}`, instance: 0 }],
    // Federated identities: the emulated Azure AD fetches the apiserver's issuer discovery over TLS.
    federationCaFiles: [clusterCaPath],
  };
  await Deno.writeTextFile(`${r.dir}/azure-config.json`, JSON.stringify(config, null, 2), { mode: 0o600 });
  const log = `${r.logDir ?? r.dir}/azure.log`;
  r.pids.push({
    what: "azure emulator",
    pid: spawnDetached(
      [Deno.execPath(), "run", "-A", EMULATOR, "--admin", `${r.dir}/azure-config.json`],
      log,
    ),
  });
  await writeRecord(r);
  let printed: Record<string, unknown> | undefined;
  await waitFor(
    async () => {
      const line = (await Deno.readTextFile(log)).split("\n").find((l) => l.startsWith("{"));
      if (line) printed = JSON.parse(line);
      return !!printed;
    },
    30_000,
    async () => `the Azure emulator did not start; its log:\n${await tailOf(log)}`,
  );
  const p = printed as {
    adminUrl: string;
    armEndpoint: string;
    authorityHost: string;
    caCertPath: string;
    subscriptionId: string;
    tenantId: string;
    vmss: { id: string }[];
    imds: { url: string }[];
  };
  r.azure = {
    adminUrl: p.adminUrl,
    armEndpoint: p.armEndpoint,
    authorityHost: p.authorityHost,
    caCertPath: p.caCertPath,
    subscriptionId: p.subscriptionId,
    tenantId: p.tenantId,
    imdsUrl: p.imds[0].url,
    vmssId: p.vmss[0].id,
    resourceGroup: RESOURCE_GROUP,
  };
  // MIC signs in as the emulator's service principal, configured the way a custom cloud is.
  const sp = config.servicePrincipals[0];
  await Deno.writeTextFile(
    `${r.dir}/azure.json`,
    JSON.stringify({
      cloud: "AzureStackCloud",
      tenantId: p.tenantId,
      subscriptionId: p.subscriptionId,
      resourceGroup: RESOURCE_GROUP,
      vmType: "vmss",
      aadClientId: sp.clientId,
      aadClientSecret: sp.secret,
    }),
    { mode: 0o600 },
  );
  await Deno.writeTextFile(
    `${r.dir}/cloud.json`,
    JSON.stringify({
      name: "AzureStackCloud",
      resourceManagerEndpoint: p.armEndpoint,
      activeDirectoryEndpoint: p.authorityHost,
    }),
  );
}

async function httpOk(ns: string | undefined, url: string): Promise<boolean> {
  const argv = ["curl", "-s", "-o", "/dev/null", "-m", "2", "-w", "%{http_code}", url];
  const out = await new Deno.Command(ns ? "ip" : "curl", {
    args: ns ? ["netns", "exec", ns, ...argv] : argv.slice(1),
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout) === "200";
}

interface UpOptions {
  dir?: string;
  /** Force loopback mode even as root. */
  loopback?: boolean;
  /** The kubelet mode: a real cluster of this many nodes (1 or 2). */
  kubelet?: { nodes: number };
}

export async function up(print: Print, opts: UpOptions = {}): Promise<SandboxRecord> {
  const dir = opts.dir ?? sandboxDir();
  const existing = await readRecord(dir);
  if (existing) {
    if (existing.pids.length && existing.pids.every((p) => alive(p.pid))) {
      throw new Error(`a sandbox is already up (${dir}); \`deno task sandbox down\` stops it`);
    }
    print("removing what is left of a previous sandbox");
    await down(dir, () => {});
  }
  if (opts.kubelet) {
    const why = await realNodeUnavailable();
    if (why) throw new Error(`up --kubelet needs root and a real node's tools: ${why}`);
  }
  await Deno.mkdir(dir, { recursive: true });
  const unavailable = opts.kubelet ? undefined : opts.loopback ? "--loopback" : await netnsUnavailable();
  if (unavailable && !opts.loopback) {
    print(`no network namespaces (${unavailable}): pods are loopback addresses`);
  }
  const r = emptyRecord(dir, unavailable === undefined, runLogDir(dir));
  await Deno.mkdir(r.logDir!, { recursive: true });
  print(`logs: ${r.logDir} (kept after down)`);
  await writeRecord(r);
  try {
    if (opts.kubelet) {
      await startKubeletCluster(r, opts.kubelet.nodes, print);
      await writeRecord(r);
    } else await bringUp(r, print);
  } catch (e) {
    print(`sandbox up failed: ${(e as Error).message}\nremoving what was started`);
    await down(dir, () => {});
    throw e;
  }
  return r;
}

type SandboxAzure = NonNullable<SandboxRecord["azure"]>;

/** Starts the control plane detached, records its processes, and installs the CRDs; returns its CA path. */
async function startCluster(r: SandboxRecord): Promise<string> {
  const cp = await startControlPlane({ dir: `${r.dir}/cluster` });
  const detached = cp.detach();
  r.pids.push(...detached.pids.map((pid, i) => ({ what: i === 0 ? "etcd" : "kube-apiserver", pid })));
  r.cluster = {
    server: detached.server,
    kubeconfigPath: detached.kubeconfigPath,
    kubectl: detached.kubectl,
    dir: detached.dir,
  };
  await writeRecord(r);
  await installCrds(cp);
  return cp.caCertPath;
}

/** Applies the generated RBAC; returns the kubeconfigs of MIC's and NMI's service accounts. */
async function installRbac(r: SandboxRecord): Promise<{ micKc: string; nmiKc: string }> {
  // The generated RBAC and exceptions, as `deno task deploy` installs them (no Deployment or DaemonSet:
  // there is no kubelet; MIC and NMI run as processes with those service accounts' tokens).
  // Federated mode allowed, so `identity NAME --federated` works: NMI may create service-account tokens.
  const objects = installationObjects({ ...defaultOptions(), federated: true }).filter((o) =>
    !["Deployment", "DaemonSet"].includes((o as { kind: string }).kind)
  );
  await kubectl(r, ["apply", "--server-side", "-f", "-"], toYaml(objects));
  const micKc = await saKubeconfig(r, MIC_SERVICE_ACCOUNT, `${r.dir}/mic.kubeconfig`);
  const nmiKc = await saKubeconfig(r, NMI_SERVICE_ACCOUNT, `${r.dir}/nmi.kubeconfig`);
  return { micKc, nmiKc };
}

/** The Node object: instance 0 of the emulated scale set. */
function nodeObject(vmssId: string): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: NODE_NAME, labels: { "kubernetes.io/os": "linux" } },
    spec: { providerID: `azure://${vmssId}/virtualMachines/0` },
  };
}

/**
 * As root, the node's network namespace, with the apiserver, Azure AD and IMDS (at 169.254.169.254:80)
 * mirrored into it; without root, only the record of the node's name.
 */
async function createSandboxNode(r: SandboxRecord, azure: SandboxAzure): Promise<NodeNet | undefined> {
  const id = Math.random().toString(36).slice(2, 7);
  if (!r.netns) {
    r.node = { name: NODE_NAME, id };
    return undefined;
  }
  const node = await createNode(id, 1 + Math.floor(Math.random() * 250), recorder(r));
  r.node = { name: NODE_NAME, id, ns: node.ns, hostIp: node.hostIp, nodeIp: node.nodeIp };
  await writeRecord(r);
  await mirror(node, r.relays, Number(new URL(r.cluster!.server).port), { ns: node.ns }, recorder(r));
  const imdsPort = Number(new URL(azure.imdsUrl).port);
  // NMI exchanges federated identities' service-account tokens at Azure AD, from the node.
  await mirror(node, r.relays, Number(new URL(azure.authorityHost).port), { ns: node.ns }, recorder(r));
  await mirror(node, r.relays, imdsPort, {
    ns: node.ns,
    as: { ip: "169.254.169.254", port: 80 },
  }, recorder(r));
  return node;
}

function micArgv(dir: string, micKc: string, micProbe: number): string[] {
  return [
    Deno.execPath(),
    "run",
    ...MIC_PERMISSIONS,
    `${ROOT}${MIC_ENTRYPOINT}`,
    `--kubeconfig=${micKc}`,
    `--cloudconfig=${dir}/azure.json`,
    `--leader-election-namespace=${NAMESPACE}`,
    `--leader-election-name=${MIC_LEASE}`,
    "--leader-election-instance=mic-sandbox",
    `--http-probe-port=${micProbe}`,
    `--prometheus-port=${micProbe}`,
    "--probe-address=127.0.0.1",
    "--cycle-debounce=50ms",
  ];
}

/** Starts MIC detached, as its service account, signing in to the emulator; returns its log path. */
async function startMic(r: SandboxRecord, micKc: string, azure: SandboxAzure): Promise<string> {
  const micProbe = freePort();
  const micLog = `${r.logDir ?? r.dir}/mic.log`;
  r.pids.push({
    what: "mic",
    pid: spawnDetached(micArgv(r.dir, micKc, micProbe), micLog, {
      env: {
        NODE_EXTRA_CA_CERTS: azure.caCertPath,
        AZURE_ENVIRONMENT_FILEPATH: `${r.dir}/cloud.json`,
        MIC_POD_NAMESPACE: NAMESPACE,
        NO_COLOR: "1",
      },
    }),
  });
  r.mic = { probe: `http://127.0.0.1:${micProbe}`, log: micLog };
  await writeRecord(r);
  return micLog;
}

function nmiArgv(
  netns: boolean,
  nmiKc: string,
  nmiPort: number,
  nmiProbe: number,
  azure: SandboxAzure,
): string[] {
  const imds = new URL(azure.imdsUrl);
  return [
    Deno.execPath(),
    "run",
    ...NMI_PERMISSIONS,
    `${ROOT}${NMI_ENTRY}`,
    `--node=${NODE_NAME}`,
    `--kubeconfig=${nmiKc}`,
    `--nmi-port=${nmiPort}`,
    `--http-probe-port=${nmiProbe}`,
    "--prometheus-port=-1",
    "--probe-listen-address=127.0.0.1",
    `--MICNamespace=${NAMESPACE}`,
    `--ad-endpoint=${azure.authorityHost}`,
    `--tenant-id=${azure.tenantId}`,
    ...(netns
      ? ["--metadata-ip=169.254.169.254", "--metadata-port=80", "--ipt-update-interval-sec=10"]
      : [`--metadata-ip=${imds.hostname}`, `--metadata-port=${imds.port}`, "--manage-iptables=false"]),
  ];
}

/** Starts NMI detached (as root inside the node's namespace, where it manages iptables); returns its port. */
async function startNmi(
  r: SandboxRecord,
  nmiKc: string,
  azure: SandboxAzure,
  node: NodeNet | undefined,
): Promise<number> {
  const nmiProbe = freePort();
  const nmiLog = `${r.logDir ?? r.dir}/nmi.log`;
  const nmiPort = r.netns ? 2579 : freePort();
  const argv = nmiArgv(r.netns, nmiKc, nmiPort, nmiProbe, azure);
  r.pids.push({
    what: "nmi",
    pid: spawnDetached(r.netns ? ["ip", "netns", "exec", node!.ns, ...argv] : argv, nmiLog, {
      env: { NODE_EXTRA_CA_CERTS: azure.caCertPath, NO_COLOR: "1" },
    }),
  });
  r.nmi = { address: `127.0.0.1:${nmiPort}`, probe: `http://127.0.0.1:${nmiProbe}`, log: nmiLog };
  await writeRecord(r);
  return nmiPort;
}

async function waitForMicAndNmi(r: SandboxRecord, micLog: string): Promise<void> {
  const nmiLog = r.nmi!.log;
  await waitFor(
    () => httpOk(r.node?.ns, `${r.nmi!.probe}/readyz`),
    60_000,
    async () => `NMI did not become ready; its log:\n${await tailOf(nmiLog)}`,
  );
  await waitFor(
    async () => /leading:/.test(await Deno.readTextFile(micLog)),
    60_000,
    async () => `MIC did not start leading; its log:\n${await tailOf(micLog)}`,
  );
}

function readyLine(node: NodeNet | undefined, nmiPort: number): string {
  return `MIC leading, NMI ready on node ${NODE_NAME} ` +
    (node
      ? `(network namespace ${node.ns}, iptables redirect 169.254.169.254:80 -> 127.0.0.1:2579)`
      : `(no root: NMI at 127.0.0.1:${nmiPort}, pods are loopback addresses)`);
}

async function bringUp(r: SandboxRecord, print: Print): Promise<void> {
  const t0 = performance.now();
  const ms = () => `${Math.round(performance.now() - t0)} ms`;
  const clusterCaPath = await startCluster(r);
  const { micKc, nmiKc } = await installRbac(r);
  print(`control plane ${r.cluster!.server}, CRDs and RBAC installed (${ms()})`);

  await startEmulator(r, clusterCaPath);
  const azure = r.azure!;
  print(
    `Azure emulator: ARM ${azure.armEndpoint}, Azure AD ${azure.authorityHost}, scale set ${SCALE_SET} (${ms()})`,
  );
  await kubectl(r, ["apply", "-f", "-"], JSON.stringify(nodeObject(azure.vmssId)));

  const node = await createSandboxNode(r, azure);
  const micLog = await startMic(r, micKc, azure);
  const nmiPort = await startNmi(r, nmiKc, azure, node);
  await waitForMicAndNmi(r, micLog);
  print(`${readyLine(node, nmiPort)} (${ms()})`);
}

/** The process mode's etcd and kube-apiserver write their logs in the state directory: kept with the rest. */
async function keepControlPlaneLogs(r: SandboxRecord): Promise<void> {
  if (!r.logDir || !r.cluster || r.kubelet) return;
  for (const name of ["etcd.log", "kube-apiserver.log"]) {
    await Deno.copyFile(`${r.cluster.dir}/${name}`, `${r.logDir}/${name}`).catch(() => {});
  }
}

/**
 * Stops every recorded process (in the kubelet mode, the supervisor, which stops the cluster), deletes
 * every recorded namespace, removes the state directory; the logs directory stays.
 */
export async function down(dir: string, print: Print): Promise<boolean> {
  const r = await readRecord(dir);
  if (!r) return false;
  if (r.kubelet && r.pids.some((p) => !alive(p.pid))) {
    // The supervisor alone knows the cluster's processes; killed outright, it could not stop them.
    print(`the cluster's supervisor had exited: what it started may remain (see ${r.logDir}/supervisor.log)`);
  }
  for (const p of [...r.pids].reverse()) await stopPid(p.pid, p.graceMs);
  for (const ns of [...r.namespaces].reverse()) {
    await new Deno.Command("ip", { args: ["netns", "del", ns], stdout: "null", stderr: "null" }).output();
  }
  // The kernel removes a deleted namespace's links a moment later: wait, so "down" means gone.
  if (r.namespaces.length && r.node?.id) {
    const link = `sbx${r.node.id}h`;
    await waitFor(
      async () =>
        !(await new Deno.Command("ip", { args: ["link", "show", link], stdout: "null", stderr: "null" })
          .output())
          .success,
      10_000,
      () => `link ${link} still exists`,
    ).catch((e) => print((e as Error).message));
  }
  await keepControlPlaneLogs(r);
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  print(`stopped ${r.pids.length} processes, removed ${r.namespaces.length} network namespaces`);
  if (r.logDir) print(`logs of the run kept in ${r.logDir}`);
  return true;
}

async function running(dir: string): Promise<SandboxRecord> {
  const r = await readRecord(dir);
  if (!r || !(r.nmi || r.kubelet?.ready)) throw new Error("no sandbox is up: `deno task sandbox up`");
  const dead = r.pids.filter((p) => !alive(p.pid));
  if (dead.length) {
    throw new Error(
      `sandbox processes exited: ${dead.map((p) => p.what).join(", ")} (logs in ${r.logDir ?? dir})`,
    );
  }
  return r;
}

async function ensureNamespace(r: SandboxRecord, namespace: string): Promise<void> {
  const yaml = JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
  await kubectl(r, ["apply", "-f", "-"], yaml);
}

const TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange";

/** Posts to the emulator's admin API; its error message on refusal. */
async function admin(r: SandboxRecord, path: string, body: unknown): Promise<Record<string, string>> {
  const res = await fetch(`${r.azure!.adminUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(json.error);
  return json;
}

/** A second identity of that name, or a federated one where the sandbox cannot serve it: refused. */
function refuseIdentity(r: SandboxRecord, name: string, namespace: string, federated: boolean): void {
  if (federated && r.kubelet) {
    throw new Error(
      "identity --federated is not available in the kubelet sandbox yet (the process mode has it)",
    );
  }
  if (r.identities.some((i) => i.name === name && i.namespace === namespace)) {
    throw new Error(`identity ${namespace}/${name} already exists in the sandbox`);
  }
}

/**
 * Registers a user-assigned identity in the emulator; applies an AzureIdentity and a binding (selector
 * NAME). Federated: also a ServiceAccount NAME (no controller-manager runs here to make any), a federated
 * credential trusting it (issuer: this apiserver), and the AzureIdentity annotated federated with the tenant.
 */
export async function identity(
  dir: string,
  name: string,
  namespace: string,
  print: Print,
  federated = false,
): Promise<SandboxIdentity> {
  const r = await running(dir);
  refuseIdentity(r, name, namespace, federated);
  const body = await admin(r, "/identities", { resourceGroup: IDENTITY_GROUP, name }).catch((e) => {
    throw new Error(`the emulator refused identity ${name}: ${e.message}`);
  });
  const id: SandboxIdentity = {
    name,
    namespace,
    resourceId: body.id,
    clientId: body.clientId,
    ...(federated ? { federated } : {}),
  };
  await ensureNamespace(r, namespace);
  const subject = `system:serviceaccount:${namespace}:${name}`;
  if (federated) {
    await kubectl(
      r,
      ["apply", "-f", "-"],
      JSON.stringify({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace } }),
    );
    await admin(r, "/federated-credentials", {
      identityId: id.resourceId,
      name: `${namespace}-${name}`,
      issuer: r.cluster!.server,
      subject,
      audiences: [TOKEN_EXCHANGE_AUDIENCE],
    }).catch((e) => {
      throw new Error(`the emulator refused the federated credential of ${name}: ${e.message}`);
    });
  }
  await kubectl(
    r,
    ["apply", "-f", "-"],
    toYaml([
      {
        apiVersion: "aadpodidentity.k8s.io/v1",
        kind: "AzureIdentity",
        metadata: {
          name,
          namespace,
          ...(federated ? { annotations: { "aadpodidentity.k8s.io/federated": "true" } } : {}),
        },
        spec: {
          type: 0,
          resourceID: id.resourceId,
          clientID: id.clientId,
          ...(federated ? { tenantID: r.azure!.tenantId } : {}),
        },
      },
      {
        apiVersion: "aadpodidentity.k8s.io/v1",
        kind: "AzureIdentityBinding",
        metadata: { name: `${name}-binding`, namespace },
        spec: { azureIdentity: name, selector: name },
      },
    ]),
  );
  r.identities.push(id);
  await writeRecord(r);
  print(`identity ${namespace}/${name}: client id ${id.clientId}\n  ${id.resourceId}`);
  if (federated) {
    print(
      `federated: credential for ${subject} (issuer ${r.cluster!.server}, audience ` +
        `${TOKEN_EXCHANGE_AUDIENCE}); nothing is attached to the scale set`,
    );
  }
  print(`binding ${namespace}/${name}-binding selects pods labelled aadpodidbinding=${name}`);
  return id;
}

/**
 * Where pod number `index` lives: as root, a network namespace behind the node with the emulated ARM and
 * Azure AD mirrored into it; without root, a fresh loopback address.
 */
async function placePod(
  r: SandboxRecord,
  name: string,
  namespace: string,
  index: number,
): Promise<SandboxPod> {
  if (!r.netns) {
    return {
      name,
      namespace,
      ip: `127.${100 + Math.floor(Math.random() * 100)}.${index}.${10 + index % 200}`,
    };
  }
  const node: NodeNet = {
    id: r.node!.id,
    plan: SANDBOX_NET,
    ns: r.node!.ns!,
    hostIp: r.node!.hostIp!,
    nodeIp: r.node!.nodeIp!,
  };
  const made = await addPod(node, index, recorder(r));
  await writeRecord(r);
  // The emulated ARM (and Azure AD) at their usual URLs inside the pod, for apps that call Azure.
  for (const url of [r.azure!.armEndpoint, r.azure!.authorityHost]) {
    await mirror(node, r.relays, Number(new URL(url).port), { ns: made.ns }, recorder(r));
  }
  return { name, namespace, ip: made.ip, netns: made.ns };
}

function podObject(p: SandboxPod, binding: string | undefined, serviceAccount: string | undefined) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: p.name, namespace: p.namespace, labels: binding ? { aadpodidbinding: binding } : {} },
    spec: {
      nodeName: NODE_NAME,
      ...(serviceAccount ? { serviceAccountName: serviceAccount } : {}),
      containers: [{ name: "app", image: "your-app:latest" }],
    },
  };
}

/** Creates the Pod object and sets its status as a kubelet would: Running, with the pod's IP. */
async function applyRunningPod(
  r: SandboxRecord,
  p: SandboxPod,
  binding: string | undefined,
  serviceAccount: string | undefined,
): Promise<void> {
  await kubectl(r, ["apply", "-f", "-"], JSON.stringify(podObject(p, binding, serviceAccount)));
  await kubectl(r, [
    "patch",
    "pod",
    p.name,
    "-n",
    p.namespace,
    "--subresource=status",
    "--type=merge",
    "-p",
    JSON.stringify({ status: { phase: "Running", podIP: p.ip, podIPs: [{ ip: p.ip }] } }),
  ]);
}

/** What `pod` prints: the pod, and how to ask NMI for a token as it. */
function podLines(
  p: SandboxPod,
  binding: string | undefined,
  serviceAccount: string | undefined,
  nmiAddress: string,
): string[] {
  const query = "api-version=2018-02-01&resource=https://management.azure.com/";
  const about =
    `pod ${p.namespace}/${p.name} on ${NODE_NAME}, IP ${p.ip}${
      binding ? `, aadpodidbinding=${binding}` : ""
    }` +
    (serviceAccount ? `, service account ${serviceAccount} (federated)` : "");
  const howTo = p.netns
    ? `  deno task sandbox exec ${p.name} -- curl -s -H Metadata:true ` +
      `'http://169.254.169.254/metadata/identity/oauth2/token?${query}'`
    : `  curl -s --interface ${p.ip} -H Metadata:true 'http://${nmiAddress}/metadata/identity/oauth2/token?${query}'`;
  return [about, howTo];
}

/**
 * A Pod object on the node with a fresh IP and, as root, its network namespace; in the kubelet mode a real
 * pod of the image (`img`), scheduled by the cluster.
 */
export async function pod(
  dir: string,
  name: string,
  namespace: string,
  binding: string | undefined,
  print: Print,
  img: PodImage = {},
): Promise<SandboxPod> {
  const r = await running(dir);
  if (r.pods.some((p) => p.name === name && p.namespace === namespace)) {
    throw new Error(`pod ${namespace}/${name} already exists in the sandbox`);
  }
  if (r.kubelet) {
    await ensureNamespace(r, namespace);
    const made = await kubeletPod(r, { name, namespace }, binding, img, print);
    r.pods.push(made);
    await writeRecord(r);
    return made;
  }
  if (img.image || img.imageArchive) {
    throw new Error(
      "--image and --image-archive need the kubelet sandbox (`deno task sandbox up --kubelet`)",
    );
  }
  const index = r.pods.length + 1;
  if (index > 250) throw new Error("the sandbox holds at most 250 pods");
  const p = await placePod(r, name, namespace, index);
  await ensureNamespace(r, namespace);
  // A pod bound to a federated identity runs as the service account its credential trusts.
  const federatedAs = r.identities.find((i) =>
    i.federated && i.name === binding && i.namespace === namespace
  );
  await applyRunningPod(r, p, binding, federatedAs?.name);
  r.pods.push(p);
  await writeRecord(r);
  for (const line of podLines(p, binding, federatedAs?.name, r.nmi!.address)) print(line);
  return p;
}

/** Runs a command as the pod (in its network namespace), trusting the emulator's CA. */
export async function exec(
  dir: string,
  name: string,
  namespace: string,
  argv: string[],
  io: "inherit" | "piped" = "inherit",
): Promise<Deno.CommandOutput | Deno.CommandStatus> {
  const r = await running(dir);
  const p = r.pods.find((x) => x.name === name && x.namespace === namespace);
  if (!p) throw new Error(`no sandbox pod ${namespace}/${name}: \`deno task sandbox pod ${name}\``);
  if (r.kubelet) return await kubeletKubectl(r, ["exec", "-n", namespace, name, "--", ...argv], io);
  if (!p.netns) {
    throw new Error(
      `exec needs root (a network namespace per pod); without it, send from the pod's address: ` +
        `curl --interface ${p.ip} http://${r.nmi!.address}/...`,
    );
  }
  const ca = r.azure!.caCertPath;
  const cmd = new Deno.Command("ip", {
    args: ["netns", "exec", p.netns, ...argv],
    env: { NODE_EXTRA_CA_CERTS: ca, SSL_CERT_FILE: ca, REQUESTS_CA_BUNDLE: ca },
    stdin: io === "inherit" ? "inherit" : "null",
    stdout: io,
    stderr: io,
  });
  return io === "inherit" ? await cmd.spawn().status : await cmd.output();
}

/**
 * The run's logs: no NAME, where they are; in the kubelet mode a pod's (through the container runtime);
 * in the process mode a component's log file (mic, nmi, azure, forwarders).
 */
async function logs(
  dir: string,
  name: string | undefined,
  namespace: string,
  print: Print,
): Promise<number> {
  const r = await readRecord(dir);
  if (!r) {
    throw new Error(
      `no sandbox is up; the logs of past runs are under ${runLogDir(dir).replace(/\/[^/]*$/, "")}`,
    );
  }
  if (!name) {
    print(r.logDir ?? dir);
    for await (const e of Deno.readDir(r.logDir ?? dir)) print(`  ${e.name}${e.isDirectory ? "/" : ""}`);
    return 0;
  }
  if (r.kubelet) return (await kubeletKubectl(r, ["logs", "-n", namespace, name], "inherit")).code;
  const file = `${r.logDir ?? dir}/${name}.log`;
  const text = await Deno.readTextFile(file).catch(() => undefined);
  if (text === undefined) {
    throw new Error(
      `no log ${name}: the process mode's logs are mic, nmi, azure, forwarders (pods are namespaces)`,
    );
  }
  await Deno.stdout.write(new TextEncoder().encode(text));
  return 0;
}

const USAGE = `usage: deno task sandbox <command>
  up [--loopback]                         start control plane, Azure emulator, MIC and NMI (processes) on one node
  up --kubelet [--nodes 1|2]              a real cluster instead (root): kubelet + containerd per node, MIC and NMI
                                          deployed as pods by \`deno task deploy\`
  down                                    stop everything the sandbox started and remove its namespaces (logs stay)
  status                                  what is running
  env                                     shell exports: eval "$(deno task sandbox env)"
  identity NAME [-n NS] [--federated]     a user-assigned identity in the emulator + AzureIdentity + binding (selector NAME);
                                          --federated: + ServiceAccount NAME and its federated credential, nothing on the VM
  pod NAME [--binding SELECTOR] [-n NS]   a pod on the node with a fresh IP (as root: its own network namespace);
      [--image REF] [--image-archive F]   kubelet mode: a real pod of REF (default: the SDK image), F (docker or OCI
                                          archive) imported into every node's containerd first
  exec NAME [-n NS] -- CMD...             run CMD as that pod (root; kubelet mode: kubectl exec)
  logs [NAME] [-n NS]                     where the logs are; a component's log (mic, nmi, azure) or, kubelet mode, a pod's
State: ${sandboxDir()} (AAD_SANDBOX_DIR moves it); logs: beside it, <state>-logs/<time> (AAD_SANDBOX_LOGS moves them)`;

/** `up [--loopback | --kubelet [--nodes N]]`; undefined when the words are not that. */
export function parseUp(rest: string[]): { loopback?: boolean; kubelet?: { nodes: number } } | undefined {
  if (rest.length === 0) return {};
  if (rest.length === 1 && rest[0] === "--loopback") return { loopback: true };
  if (rest[0] !== "--kubelet") return undefined;
  if (rest.length === 1) return { kubelet: { nodes: 1 } };
  const nodes = rest.length === 3 && rest[1] === "--nodes"
    ? rest[2]
    : /^--nodes=(.*)$/.exec(rest[1] ?? "")?.[1];
  if (rest.length > 3 || (rest.length === 3 && rest[1] !== "--nodes")) return undefined;
  return nodes === "1" || nodes === "2" ? { kubelet: { nodes: Number(nodes) } } : undefined;
}

async function upCommand(dir: string, rest: string[], err: Print): Promise<number> {
  const how = parseUp(rest);
  if (!how) {
    err(USAGE);
    return 2;
  }
  const r = await up(err, { dir, ...how });
  if (r.kubelet) { for (const l of kubeletReadyLines(r)) err(l); }
  else err('sandbox up; use it with:\n  eval "$(deno task sandbox env)"');
  err("  deno task sandbox identity demo && deno task sandbox pod app --binding demo");
  if (r.kubelet) err("  deno task sandbox exec app -- node /app/token_claims.mjs");
  return 0;
}

async function status(dir: string, out: Print): Promise<number> {
  const r = await readRecord(dir);
  if (!r) {
    out("not running");
    return 1;
  }
  for (const p of r.pids) out(`${alive(p.pid) ? "running" : "EXITED "} ${p.what} (pid ${p.pid})`);
  if (r.kubelet) {
    out(`kubelet mode: ${r.kubelet.ready ? `nodes ${r.kubelet.nodeNames!.join(", ")}` : "starting"}`);
    if (r.cluster) out(`  KUBECONFIG=${r.cluster.kubeconfigPath}`);
  }
  for (const p of r.pods) {
    out(`pod ${p.namespace}/${p.name} ${p.ip}${p.netns ? ` netns ${p.netns}` : ""}`);
  }
  if (r.logDir) out(`logs: ${r.logDir}`);
  return r.pids.every((p) => alive(p.pid)) ? 0 : 1;
}

async function execCommand(dir: string, rest: string[], err: Print): Promise<number> {
  const sep = rest.indexOf("--");
  const a = parseNamed(sep < 0 ? rest : rest.slice(0, sep), false);
  if (sep < 0 || sep === rest.length - 1 || !a.ok) {
    err(`sandbox exec: ${!a.ok ? a.error : "usage: exec NAME [-n NS] -- CMD..."}`);
    return 2;
  }
  return (await exec(dir, a.name, a.namespace, rest.slice(sep + 1))).code;
}

async function cli(args: string[]): Promise<number> {
  const dir = sandboxDir();
  const out: Print = (l) => console.log(l);
  const err: Print = (l) => console.error(l);
  const [command, ...rest] = args;
  switch (command) {
    case "up":
      return await upCommand(dir, rest, err);
    case "down":
      if (rest.length) break;
      if (!(await down(dir, err))) err("no sandbox is up");
      return 0;
    case "status":
      if (rest.length) break;
      return await status(dir, out);
    case "env": {
      if (rest.length) break;
      out(envExports(await running(dir)));
      return 0;
    }
    case "identity": {
      const a = parseNamed(rest, false, true);
      if (!a.ok) {
        err(`sandbox identity: ${a.error}`);
        return 2;
      }
      await identity(dir, a.name, a.namespace, out, a.federated);
      return 0;
    }
    case "pod": {
      const a = parseNamed(rest, true);
      if (!a.ok) {
        err(`sandbox pod: ${a.error}`);
        return 2;
      }
      await pod(dir, a.name, a.namespace, a.binding, out, { image: a.image, imageArchive: a.imageArchive });
      return 0;
    }
    case "exec":
      return await execCommand(dir, rest, err);
    case "logs": {
      const a = rest.length ? parseNamed(rest, false) : undefined;
      if (a && !a.ok) {
        err(`sandbox logs: ${a.error}`);
        return 2;
      }
      return await logs(dir, a?.name, a?.namespace ?? "default", out);
    }
  }
  err(USAGE);
  return 2;
}

if (import.meta.main) {
  try {
    Deno.exit(await cli(Deno.args));
  } catch (e) {
    console.error(`sandbox: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
