// A whole cluster with real nodes, for the node tests and `sandbox up --kubelet`: the control plane in node
// mode, controller-manager and scheduler, the Azure emulator (a scale set whose instance N is node N, an
// IMDS per instance at 169.254.169.254 inside its node), the local images imported into every node's
// containerd, and aad-pod-identity installed with `deno task deploy` as a user would.

import { type ControlPlane, installCrds, type KubectlResult, startControlPlane } from "../control_plane.ts";
import {
  type AzureEmulator,
  type ComputeInfo,
  startAzureEmulator,
  type UserAssignedIdentityInfo,
} from "../azure/emulator.ts";
import { stopPid } from "../detached.ts";
import { resolveNodeBinaries } from "./binaries.ts";
import { startControllers } from "./controllers.ts";
import { emulatorCacheFor } from "./emulator_tls.ts";
import { type NodeRecord, REAL_NODE_NET, startNode, stopNode } from "./node.ts";
import { createNode } from "../node_net.ts";
import { buildLocalImages, LOCAL_REPOSITORY, type LocalImages, PAUSE_IMAGE } from "../../images/build.ts";
import { importImages } from "../../images/oci.ts";
import { DEFAULT_VERSION } from "../../manifests/options.ts";

const DEPLOY = new URL("../../deploy.ts", import.meta.url).pathname;
export const RESOURCE_GROUP = "MC_realnode";
export const SCALE_SET = "aks-nodepool1";
export const CLOUD_FILE = "/etc/kubernetes/azurestackcloud.json";
/** Nodes register with it and NMI removes it when ready (the README's recommended set-up). */
export const NMI_STARTUP_TAINT = "aadpodidentity.k8s.io/nmi-not-ready";

export interface RealClusterOptions {
  /** 1 or 2 nodes (`node-1`, `node-2`). */
  nodes: number;
  /** State (removed by stop) and logs (kept). */
  dir: string;
  logDir: string;
  lroDurationMs?: number;
  imdsPropagationDelayMs?: number;
  /** Extra `deno task deploy` flags. */
  deployArgs?: string[];
  /** Prints progress (default: nothing). */
  log?: (line: string) => void;
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

/** Starts it all; on a failure half-way everything made so far is stopped before the error is thrown. */
export async function startRealCluster(o: RealClusterOptions): Promise<RealCluster> {
  const log = o.log ?? (() => {});
  const timings: Record<string, number> = {};
  const timed = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const v = await f();
    timings[what] = Math.round(performance.now() - t0) / 1000;
    log(`${what}: ${timings[what]} s`);
    return v;
  };
  const stops: { what: string; stop: () => Promise<void> }[] = [];
  const stopAll = async () => {
    const errors: string[] = [];
    const t0 = performance.now();
    for (const s of stops.reverse()) {
      const t = performance.now();
      await s.stop().catch((e) => errors.push(`${s.what}: ${e}`));
      timings[`stop ${s.what}`] = Math.round(performance.now() - t) / 1000;
    }
    log(`stopped in ${Math.round(performance.now() - t0) / 1000} s`);
    stops.length = 0;
    if (errors.length) throw new Error(errors.join("; "));
  };
  try {
    const bins = await timed("install", () => resolveNodeBinaries());
    const cp = await timed(
      "control plane",
      () => startControlPlane({ nodes: true, dir: `${o.dir}/control-plane` }),
    );
    stops.push({ what: "control plane", stop: () => cp.stop() });
    await installCrds(cp);
    const cluster = { server: cp.server, caCertPath: cp.caCertPath, caKeyPath: cp.caKeyPath };
    const controllerPids = await startControllers({
      cluster,
      serviceAccountKeyPath: `${cp.dir}/pki/service-account-key.pem`,
      dir: `${o.dir}/controllers`,
      logDir: o.logDir,
      bins,
    });
    stops.push({
      what: "controllers",
      stop: async () => {
        for (const pid of controllerPids) await stopPid(pid);
      },
    });

    const indexes = Array.from({ length: o.nodes }, (_, i) => i + 1);
    // The emulator listens on an address of the machine every node routes to (LAB_SERVICES_NET): its
    // Azure AD discovery names its own URL, so pods must reach it at the very address it listens on.
    const lab = await labLink();
    stops.push({ what: "lab link", stop: () => deleteNetns(lab.ns) });
    const emu = await startAzureEmulator({
      hostname: lab.ip,
      cacheDir: await emulatorCacheFor(`${o.dir}/azure`, [lab.ip]),
      lroDurationMs: o.lroDurationMs ?? 100,
      imdsPropagationDelayMs: o.imdsPropagationDelayMs ?? 0,
    });
    stops.push({ what: "emulator", stop: () => emu.stop() });
    const sp = emu.registerServicePrincipal();
    const preattached = emu.addUserAssignedIdentity({ resourceGroup: RESOURCE_GROUP, name: "preattached" });
    const vmss = emu.addVmss({
      resourceGroup: RESOURCE_GROUP,
      name: SCALE_SET,
      capacity: o.nodes,
      userAssignedIdentities: [preattached.id],
    });
    const caPem = await Deno.readTextFile(emu.caCertPath);
    const images = await timed("images", () => buildLocalImages(DEFAULT_VERSION, caPem));

    const nodes: NodeRecord[] = [];
    // Nodes stop together (each waits for its processes to go): first, before their IMDS and the rest.
    const started = new Map<number, NodeRecord>();
    stops.push({
      what: "nodes",
      stop: async () => {
        const results = await Promise.allSettled([...started.values()].map((r) => stopNode(r)));
        const failed = results.filter((r) => r.status === "rejected").map((r) => String(r.reason));
        if (failed.length) throw new Error(failed.join("; "));
      },
    });
    for (const i of indexes) {
      const imds = await emu.startImds({ vmssResourceId: vmss.id, instance: i - 1 });
      stops.splice(stops.length - 1, 0, { what: `imds ${i}`, stop: () => imds.stop() });
      const node = await timed(`${nodeName(i)} Ready`, () =>
        startNode({
          name: nodeName(i),
          index: i,
          dir: `${o.dir}/${nodeName(i)}`,
          logDir: `${o.logDir}/${nodeName(i)}`,
          cluster,
          bins,
          pauseImage: PAUSE_IMAGE,
          providerID: `azure://${vmss.id}/virtualMachines/${i - 1}`,
          startupTaints: [NMI_STARTUP_TAINT],
          mirrors: [{ port: imds.port, as: { ip: "169.254.169.254", port: 80 } }],
          files: () => ({
            "/etc/kubernetes/azure.json": JSON.stringify({
              cloud: "AzureStackCloud",
              tenantId: emu.tenantId,
              subscriptionId: emu.subscriptionId,
              resourceGroup: RESOURCE_GROUP,
              vmType: "vmss",
              aadClientId: sp.clientId,
              aadClientSecret: sp.secret,
            }),
            [CLOUD_FILE]: JSON.stringify({
              name: "AzureStackCloud",
              resourceManagerEndpoint: `${emu.armEndpoint}/`,
              activeDirectoryEndpoint: `${emu.authorityHost}/`,
              tokenAudience: "https://management.azure.com/",
            }),
          }),
        }, (r) => Promise.resolve(void started.set(i, r))));
      nodes.push(node);
    }
    // Into every node at once: the imports wait on disk as much as on the CPU.
    await timed("images imported", () =>
      Promise.all(
        nodes.map((n) =>
          importImages(`${bins.containerdBinDir}/ctr`, n.containerdSocket, Object.values(images.tars))
        ),
      ));

    const kubectl = (args: string[], stdin?: string) => cp.kubectl(args, stdin);
    await timed("deploy", () => deploy(cp.kubeconfigPath, o.deployArgs ?? []));
    await pointMicAtCloudFile(kubectl);
    await timed("rollout", async () => {
      for (const what of ["deployment/mic", "daemonset/nmi"]) {
        const out = await kubectl(["rollout", "status", what, "--timeout=120s"]);
        if (out.code !== 0) throw new Error(`${what} did not roll out: ${out.stdout}${out.stderr}`);
      }
    });
    return {
      cp,
      emu,
      vmss,
      preattached,
      nodes,
      images,
      timings,
      kubectl,
      inNode: (node, argv) => run("nsenter", [`--net=/run/netns/${node.ns}`, ...argv]),
      stop: stopAll,
    };
  } catch (e) {
    await stopAll().catch(() => {});
    throw e;
  }
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

/** `deno task deploy` with the local images, exactly as a user runs it. */
async function deploy(kubeconfig: string, extra: string[]): Promise<void> {
  const out = await run(Deno.execPath(), [
    "run",
    "-A",
    DEPLOY,
    `--kubeconfig=${kubeconfig}`,
    `--image=${LOCAL_REPOSITORY}`,
    `--version=${DEFAULT_VERSION}`,
    `--remove-node-taint=${NMI_STARTUP_TAINT}`,
    ...extra,
  ]);
  if (out.code !== 0) throw new Error(`deno task deploy failed:\n${out.stdout}\n${out.stderr}`);
}

/**
 * A custom cloud (here the emulator) is named by AZURE_ENVIRONMENT_FILEPATH, which the generated MIC
 * Deployment does not set: an Azure Stack user adds it the same way.
 */
async function pointMicAtCloudFile(kubectl: RealCluster["kubectl"]): Promise<void> {
  const patch = [
    {
      op: "add",
      path: "/spec/template/spec/volumes/-",
      value: { name: "cloud", hostPath: { path: CLOUD_FILE, type: "File" } },
    },
    {
      op: "add",
      path: "/spec/template/spec/containers/0/volumeMounts/-",
      value: { name: "cloud", mountPath: CLOUD_FILE, readOnly: true },
    },
    {
      op: "add",
      path: "/spec/template/spec/containers/0/env/-",
      value: { name: "AZURE_ENVIRONMENT_FILEPATH", value: CLOUD_FILE },
    },
  ];
  const out = await kubectl(["patch", "deployment", "mic", "--type=json", "-p", JSON.stringify(patch)]);
  if (out.code !== 0) throw new Error(`patching MIC's cloud file failed: ${out.stderr}`);
}

async function run(cmd: string, args: string[]): Promise<KubectlResult> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
