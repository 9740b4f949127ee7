// A whole cluster with real nodes, for the node tests and `sandbox up --kubelet`: the control plane in node
// mode, controller-manager and scheduler, the Azure emulator (a scale set whose instance N is node N, an
// IMDS per instance at 169.254.169.254 inside its node), the local images imported into every node's
// containerd, and aad-pod-identity installed as a user would: `deno task deploy`, or `kubectl apply` of the
// checked-in YAML with the image names replaced (install_routes.ts); the federated variant of either.

import { type ControlPlane, installCrds, type KubectlResult, startControlPlane } from "../control_plane.ts";
import {
  type AzureEmulator,
  type ComputeInfo,
  type ServicePrincipalInfo,
  startAzureEmulator,
  type UserAssignedIdentityInfo,
} from "../azure/emulator.ts";
import { stopPid } from "../detached.ts";
import { type NodeBinaries, resolveNodeBinaries } from "./binaries.ts";
import type { ClusterAccess } from "./identity.ts";
import { startControllers } from "./controllers.ts";
import { emulatorCacheFor } from "./emulator_tls.ts";
import { type NodeRecord, REAL_NODE_NET, startNode, stopNode } from "./node.ts";
import { createNode } from "../node_net.ts";
import { buildLocalImages, LOCAL_REPOSITORY, type LocalImages, PAUSE_IMAGE } from "../../images/build.ts";
import { importImages } from "../../images/oci.ts";
import { DEFAULT_VERSION } from "../../manifests/options.ts";
import { install, type InstallRoute } from "./install_routes.ts";

const RESOURCE_GROUP = "MC_realnode";
const SCALE_SET = "aks-nodepool1";
const CLOUD_FILE = "/etc/kubernetes/azurestackcloud.json";
/** Nodes register with it and NMI removes it when ready (the README's recommended set-up). */
export const NMI_STARTUP_TAINT = "aadpodidentity.k8s.io/nmi-not-ready";

interface RealClusterOptions {
  /** 1 or 2 nodes (`node-1`, `node-2`). */
  nodes: number;
  /** State (removed by stop) and logs (kept). */
  dir: string;
  logDir: string;
  lroDurationMs?: number;
  imdsPropagationDelayMs?: number;
  /** Extra `deno task deploy` flags. */
  deployArgs?: string[];
  /** How aad-pod-identity is installed (default: `deno task deploy`). */
  route?: InstallRoute;
  /**
   * Federated identities allowed (the federated YAML / `--federated`), and the emulated Azure AD trusts the
   * apiserver's service-account issuer (its discovery and JWKS are read over the cluster's CA).
   */
  federated?: boolean;
  /** Prints progress (default: nothing). */
  log?: (line: string) => void;
  /** More images (reference -> docker-archive) to import into every node, built trusting `caPem`. */
  extraImages?: (caPem: string) => Promise<Record<string, string>>;
}

export interface RealCluster {
  cp: ControlPlane;
  emu: AzureEmulator;
  vmss: ComputeInfo;
  /** An identity attached to the scale set from the start and bound to no pod: reachable only via IMDS. */
  preattached: UserAssignedIdentityInfo;
  nodes: NodeRecord[];
  images: LocalImages;
  /** Seconds each phase took (for the report). */
  timings: Record<string, number>;
  kubectl(args: string[], stdin?: string): Promise<KubectlResult>;
  /** Runs argv in a node's network namespace. */
  inNode(node: NodeRecord, argv: string[]): Promise<KubectlResult>;
  stop(): Promise<void>;
}

export function nodeName(index: number): string {
  return `node-${index}`;
}

interface Stop {
  what: string;
  stop: () => Promise<void>;
}

/** One start: its options, what it measured, and what to undo (run in reverse). */
interface Ctx {
  o: RealClusterOptions;
  log: (line: string) => void;
  timings: Record<string, number>;
  stops: Stop[];
}

async function timed<T>(ctx: Ctx, what: string, f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const v = await f();
  ctx.timings[what] = Math.round(performance.now() - t0) / 1000;
  ctx.log(`${what}: ${ctx.timings[what]} s`);
  return v;
}

async function stopAll(ctx: Ctx): Promise<void> {
  const errors: string[] = [];
  const t0 = performance.now();
  for (const s of ctx.stops.reverse()) {
    const t = performance.now();
    await s.stop().catch((e) => errors.push(`${s.what}: ${e}`));
    ctx.timings[`stop ${s.what}`] = Math.round(performance.now() - t) / 1000;
  }
  ctx.log(`stopped in ${Math.round(performance.now() - t0) / 1000} s`);
  ctx.stops.length = 0;
  if (errors.length) throw new Error(errors.join("; "));
}

/**
 * A real cluster uses fixed names and addresses (REAL_NODE_NET, the lab link), so one runs per machine at a
 * time: a second start waits here for the first to stop, rather than colliding with it.
 */
const MACHINE_LOCK = "/run/aad-pod-identity-real-cluster.lock";

async function machineLock(ctx: Ctx): Promise<void> {
  const file = await Deno.open(MACHINE_LOCK, { create: true, write: true });
  const t0 = performance.now();
  await file.lock(true);
  const waited = Math.round(performance.now() - t0) / 1000;
  if (waited > 1) ctx.log(`waited ${waited} s for another real cluster on this machine to stop`);
  ctx.stops.push({ what: "machine lock", stop: () => Promise.resolve(file.close()) });
}

/** Starts it all; on a failure half-way everything made so far is stopped before the error is thrown. */
export async function startRealCluster(o: RealClusterOptions): Promise<RealCluster> {
  const ctx: Ctx = { o, log: o.log ?? (() => {}), timings: {}, stops: [] };
  try {
    await machineLock(ctx);
    const bins = await timed(ctx, "install", () => resolveNodeBinaries());
    const cp = await timed(
      ctx,
      "control plane",
      () => startControlPlane({ nodes: true, dir: `${o.dir}/control-plane` }),
    );
    ctx.stops.push({ what: "control plane", stop: () => cp.stop() });
    await installCrds(cp);
    const clusterCaPem = await Deno.readTextFile(cp.caCertPath);
    const cluster = { server: cp.server, caCertPath: cp.caCertPath, caKeyPath: cp.caKeyPath };
    const controllerPids = await startControllers({
      cluster,
      serviceAccountKeyPath: `${cp.dir}/pki/service-account-key.pem`,
      dir: `${o.dir}/controllers`,
      logDir: o.logDir,
      bins,
    });
    ctx.stops.push({
      what: "controllers",
      stop: async () => {
        for (const pid of controllerPids) await stopPid(pid);
      },
    });
    const az = await startAzure(ctx, o.federated ? [clusterCaPem] : []);
    const caPem = await Deno.readTextFile(az.emu.caCertPath);
    const local = await timed(ctx, "images", () => buildLocalImages(DEFAULT_VERSION, caPem));
    const extra = o.extraImages ? await timed(ctx, "extra images", () => o.extraImages!(caPem)) : {};
    const images = { ...local, tars: { ...local.tars, ...extra } };
    const nodes = await startNodes(ctx, { cluster, bins, az, images });
    const kubectl = (args: string[], stdin?: string) => cp.kubectl(args, stdin);
    await installAadPodIdentity(ctx, cp.kubeconfigPath, kubectl);
    return {
      cp,
      emu: az.emu,
      vmss: az.vmss,
      preattached: az.preattached,
      nodes,
      images,
      timings: ctx.timings,
      kubectl,
      inNode: (node, argv) => run("nsenter", [`--net=/run/netns/${node.ns}`, ...argv]),
      stop: () => stopAll(ctx),
    };
  } catch (e) {
    await stopAll(ctx).catch(() => {});
    throw e;
  }
}

interface Azure {
  emu: AzureEmulator;
  sp: ServicePrincipalInfo;
  vmss: ComputeInfo;
  preattached: UserAssignedIdentityInfo;
}

/**
 * The emulator listens on an address of the machine every node routes to (LAB_SERVICES_NET): its Azure AD
 * discovery names its own URL, so pods must reach it at the very address it listens on.
 */
async function startAzure(ctx: Ctx, federationCaCerts: string[]): Promise<Azure> {
  const lab = await labLink();
  ctx.stops.push({ what: "lab link", stop: () => deleteNetns(lab.ns) });
  const emu = await startAzureEmulator({
    hostname: lab.ip,
    cacheDir: await emulatorCacheFor(`${ctx.o.dir}/azure`, [lab.ip]),
    lroDurationMs: ctx.o.lroDurationMs ?? 100,
    imdsPropagationDelayMs: ctx.o.imdsPropagationDelayMs ?? 0,
    federationCaCerts,
  });
  ctx.stops.push({ what: "emulator", stop: () => emu.stop() });
  const sp = emu.registerServicePrincipal();
  const preattached = emu.addUserAssignedIdentity({ resourceGroup: RESOURCE_GROUP, name: "preattached" });
  const vmss = emu.addVmss({
    resourceGroup: RESOURCE_GROUP,
    name: SCALE_SET,
    capacity: ctx.o.nodes,
    userAssignedIdentities: [preattached.id],
  });
  return { emu, sp, vmss, preattached };
}

/** MIC's azure.json (the emulator's service principal) and the custom cloud's endpoints, inside a node. */
function nodeFiles(az: Azure): Record<string, string> {
  return {
    "/etc/kubernetes/azure.json": JSON.stringify({
      cloud: "AzureStackCloud",
      tenantId: az.emu.tenantId,
      subscriptionId: az.emu.subscriptionId,
      resourceGroup: RESOURCE_GROUP,
      vmType: "vmss",
      aadClientId: az.sp.clientId,
      aadClientSecret: az.sp.secret,
    }),
    [CLOUD_FILE]: JSON.stringify({
      name: "AzureStackCloud",
      resourceManagerEndpoint: `${az.emu.armEndpoint}/`,
      activeDirectoryEndpoint: `${az.emu.authorityHost}/`,
      tokenAudience: "https://management.azure.com/",
    }),
  };
}

/** Node i is instance i-1 of the scale set, with that instance's IMDS; then the images go into every node. */
async function startNodes(
  ctx: Ctx,
  s: { cluster: ClusterAccess; bins: NodeBinaries; az: Azure; images: LocalImages },
): Promise<NodeRecord[]> {
  const nodes: NodeRecord[] = [];
  // Nodes stop together (each waits for its processes to go): first, before their IMDS and the rest.
  const started = new Map<number, NodeRecord>();
  ctx.stops.push({
    what: "nodes",
    stop: async () => {
      const results = await Promise.allSettled([...started.values()].map((r) => stopNode(r)));
      const failed = results.filter((r) => r.status === "rejected").map((r) => String(r.reason));
      if (failed.length) throw new Error(failed.join("; "));
    },
  });
  for (let i = 1; i <= ctx.o.nodes; i++) {
    const imds = await s.az.emu.startImds({ vmssResourceId: s.az.vmss.id, instance: i - 1 });
    ctx.stops.splice(ctx.stops.length - 1, 0, { what: `imds ${i}`, stop: () => imds.stop() });
    const node = await timed(ctx, `${nodeName(i)} Ready`, () =>
      startNode({
        name: nodeName(i),
        index: i,
        dir: `${ctx.o.dir}/${nodeName(i)}`,
        logDir: `${ctx.o.logDir}/${nodeName(i)}`,
        cluster: s.cluster,
        bins: s.bins,
        pauseImage: PAUSE_IMAGE,
        providerID: `azure://${s.az.vmss.id}/virtualMachines/${i - 1}`,
        // The checked-in YAML names no start-up taint for NMI to remove: its nodes register without one.
        startupTaints: route(ctx.o) === "deploy" ? [NMI_STARTUP_TAINT] : [],
        mirrors: [{ port: imds.port, as: { ip: "169.254.169.254", port: 80 } }],
        files: () => nodeFiles(s.az),
      }, (r) => Promise.resolve(void started.set(i, r))));
    nodes.push(node);
  }
  // Into every node at once: the imports wait on disk as much as on the CPU.
  const ctr = `${s.bins.containerdBinDir}/ctr`;
  await timed(
    ctx,
    "images imported",
    () => Promise.all(nodes.map((n) => importImages(ctr, n.containerdSocket, Object.values(s.images.tars)))),
  );
  return nodes;
}

function route(o: RealClusterOptions): InstallRoute {
  return o.route ?? "deploy";
}

/** Installed by the chosen route with MIC on the custom cloud (the emulator), both workloads rolled out. */
async function installAadPodIdentity(ctx: Ctx, kubeconfig: string, kubectl: RealCluster["kubectl"]) {
  const spec = {
    route: route(ctx.o),
    federated: ctx.o.federated ?? false,
    imageRepository: LOCAL_REPOSITORY,
    version: DEFAULT_VERSION,
    cloudFile: CLOUD_FILE,
    removeNodeTaint: NMI_STARTUP_TAINT,
    deployArgs: ctx.o.deployArgs ?? [],
  };
  await timed(ctx, spec.route, () => install(spec, kubeconfig, kubectl));
  await timed(ctx, "rollout", async () => {
    for (const what of ["deployment/mic", "daemonset/nmi"]) {
      const out = await kubectl(["rollout", "status", what, "--timeout=120s"]);
      if (out.code !== 0) throw new Error(`${what} did not roll out: ${out.stdout}${out.stderr}`);
    }
  });
}

/** The machine's end of a link whose address (`<hostNet>.0.1`) is LAB_SERVICES_NET's. */
async function labLink(): Promise<{ ns: string; ip: string }> {
  const namespaces: string[] = [];
  const node = await createNode("lab", 0, {
    namespace: (n) => namespaces.push(n),
    spawn: () => {
      throw new Error("the lab link runs no process");
    },
  }, REAL_NODE_NET).catch(async (e) => {
    for (const ns of namespaces) await deleteNetns(ns);
    throw e;
  });
  return { ns: node.ns, ip: node.hostIp };
}

async function deleteNetns(ns: string): Promise<void> {
  const out = await run("ip", ["netns", "del", ns]);
  if (out.code !== 0 && !/No such file/.test(out.stderr)) {
    throw new Error(`ip netns del ${ns}: ${out.stderr}`);
  }
}

async function run(cmd: string, args: string[]): Promise<KubectlResult> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
