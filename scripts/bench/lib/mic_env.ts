// The world the MIC benchmark runs in: a real apiserver with the CRDs, the Azure emulator (ARM + Azure AD),
// 20 nodes on 4 scale sets, and MIC as a real process with its shipped permissions, leading once it has
// assigned a throwaway pod. Helpers create identities and pods and wait for their assignments.

import { benchTokenKubeconfig } from "./token_kubeconfig.ts";
import { API_VERSION } from "../../../lib/api/types.ts";
import { loadKubeConnection } from "../../../lib/kube/config.ts";
import { Informer } from "../../../lib/kube/informer.ts";
import { KubeClient, Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { createLogger } from "../../../lib/log.ts";
import { MIC_ENTRYPOINT, MIC_PERMISSIONS } from "../../../mic/permissions.ts";
import { installCrds, startControlPlane } from "../../sandbox/control_plane.ts";
import { type AzureEmulator, startAzureEmulator } from "../../sandbox/azure/emulator.ts";
import { rssMiB } from "./proc.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
export const NS = "bench";
type Aai = KubeObject & { status?: { status?: string } };

export interface MicEnv {
  client: KubeClient;
  emu: AzureEmulator;
  assignedAt: Map<string, number>;
  identity(name: string, selector: string): Promise<void>;
  pod(name: string, node: number, selector: string): Promise<unknown>;
  waitAssigned(names: string[], timeoutMs: number): Promise<void>;
  rss(): Promise<number>;
  /** RSS split: anonymous (heap, malloc) and file-backed (the deno binary's pages in use), MiB. */
  rssParts(): Promise<{ anon: number; file: number }>;
  /** V8 heap used, from MIC's own /metrics. */
  heap(): Promise<number>;
  stop(): Promise<void>;
}

interface MicEnvOptions {
  lroDurationMs: number;
  lroRetryAfterSeconds?: number;
  probePort: number;
  /** `--v8-flags=...` for MIC; undefined = the shipped ones (mic/permissions.ts). */
  v8Flags?: string;
}

async function writeCloudFiles(dir: string, emu: AzureEmulator): Promise<void> {
  const sp = emu.registerServicePrincipal({ displayName: "mic" });
  const cloud = { name: "AzureStackCloud", resourceManagerEndpoint: emu.armEndpoint };
  await Deno.writeTextFile(
    `${dir}/cloud.json`,
    JSON.stringify({ ...cloud, activeDirectoryEndpoint: emu.authorityHost }),
  );
  await Deno.writeTextFile(
    `${dir}/azure.json`,
    JSON.stringify({
      cloud: "AzureStackCloud",
      tenantId: sp.tenantId,
      subscriptionId: emu.subscriptionId,
      aadClientId: sp.clientId,
      aadClientSecret: sp.secret,
    }),
  );
}

function spawnMic(o: MicEnvOptions, kubeconfig: string, dir: string, emu: AzureEmulator): Deno.ChildProcess {
  const perms = o.v8Flags === undefined ? MIC_PERMISSIONS : [
    ...MIC_PERMISSIONS.filter((f) => !f.startsWith("--v8-flags=")),
    ...(o.v8Flags && o.v8Flags !== "none" ? [`--v8-flags=${o.v8Flags}`] : []),
  ];
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...perms,
      `${ROOT}${MIC_ENTRYPOINT}`,
      `--kubeconfig=${kubeconfig}`,
      `--cloudconfig=${dir}/azure.json`,
      `--leader-election-namespace=${NS}`,
      `--http-probe-port=${o.probePort}`,
      `--prometheus-port=${o.probePort}`,
      "--probe-address=127.0.0.1",
    ],
    env: {
      NODE_EXTRA_CA_CERTS: emu.caCertPath,
      AZURE_ENVIRONMENT_FILEPATH: `${dir}/cloud.json`,
      MIC_POD_NAMESPACE: NS,
    },
    stdout: "null",
    stderr: "null",
  }).spawn();
}

export async function startMicEnv(o: MicEnvOptions): Promise<MicEnv> {
  const cp = await startControlPlane();
  const emu = await startAzureEmulator({
    lroDurationMs: o.lroDurationMs,
    lroRetryAfterSeconds: o.lroRetryAfterSeconds,
    computeThrottle: false,
  });
  const dir = await Deno.makeTempDir({ prefix: "mic-bench-" });
  const ctrl = new AbortController();
  let mic: Deno.ChildProcess | undefined;
  let client: KubeClient | undefined;
  const stop = async () => {
    ctrl.abort();
    try {
      mic?.kill("SIGTERM");
      await mic?.status;
    } catch { /* already gone */ }
    client?.conn.close();
    await emu.stop();
    await cp.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await installCrds(cp);
    client = new KubeClient(await loadKubeConnection({ kubeconfigPath: cp.kubeconfigPath }), {
      userAgent: "mic-bench",
    });
    await writeCloudFiles(dir, emu);
    const env = await populate(client, emu, ctrl.signal);
    mic = spawnMic(o, await benchTokenKubeconfig(cp, "mic", `${dir}/mic-kubeconfig`), dir, emu);
    const pid = mic.pid;
    const heap = async () => {
      const text = await (await fetch(`http://127.0.0.1:${o.probePort}/metrics`)).text();
      return Number(/mic_memory_bytes\{kind="heap_used"\} (\S+)/.exec(text)![1]) / 2 ** 20;
    };
    // Leading once the lease names it: wait for the first assignment of a throwaway pod.
    await env.identity("warm", "warm");
    await env.pod("warm", 0, "warm");
    await env.waitAssigned([`warm-${NS}-warm`], 60_000);
    const rssParts = async () => {
      const status = await Deno.readTextFile(`/proc/${pid}/status`);
      const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]) / 1024;
      return { anon: kb("RssAnon"), file: kb("RssFile") };
    };
    return { ...env, client, emu, rss: () => rssMiB(pid), rssParts, heap, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Namespace, 20 nodes on 4 scale sets, an informer of assignments; the identity/pod/wait helpers. */
async function populate(client: KubeClient, emu: AzureEmulator, signal: AbortSignal) {
  await client.create(Resources.namespaces, { metadata: { name: NS } } as KubeObject);
  const sets = [0, 1, 2, 3].map((i) => emu.addVmss({ resourceGroup: "mc", name: `pool${i}` }));
  for (let n = 0; n < 20; n++) {
    await client.create(Resources.nodes, {
      metadata: { name: `node${n}` },
      spec: { providerID: `azure://${sets[Math.floor(n / 5)].id}/virtualMachines/${n % 5}` },
    } as KubeObject);
  }
  const identity = async (name: string, selector: string) => {
    const u = emu.addUserAssignedIdentity({ resourceGroup: "ids", name });
    await client.create(Resources.azureIdentities, {
      apiVersion: API_VERSION,
      kind: "AzureIdentity",
      metadata: { name, namespace: NS },
      spec: { type: 0, resourceID: u.id, clientID: u.clientId },
    } as KubeObject);
    await client.create(Resources.azureIdentityBindings, {
      apiVersion: API_VERSION,
      kind: "AzureIdentityBinding",
      metadata: { name: `b-${name}`, namespace: NS },
      spec: { azureIdentity: name, selector },
    } as KubeObject);
  };
  const assignedAt = new Map<string, number>();
  const aais = new Informer<Aai>({
    client,
    resource: Resources.azureAssignedIdentities,
    log: createLogger({ level: "error" }),
  });
  const seen = (o: Aai) => {
    if (o.status?.status === "Assigned" && !assignedAt.has(o.metadata.name!)) {
      assignedAt.set(o.metadata.name!, performance.now());
    }
  };
  aais.addHandler({ onAdd: seen, onUpdate: (_, o) => seen(o) });
  aais.start(signal);
  await aais.synced;
  const pod = (name: string, node: number, selector: string) =>
    client.create(Resources.pods, {
      metadata: { name, namespace: NS, labels: { aadpodidbinding: selector } },
      spec: { nodeName: `node${node}`, containers: [{ name: "app", image: "registry.invalid/app:1" }] },
    } as KubeObject);
  const waitAssigned = async (names: string[], timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!names.every((n) => assignedAt.has(n))) {
      if (Date.now() > deadline) {
        throw new Error(`timed out: ${names.filter((n) => !assignedAt.has(n)).length} left`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return { assignedAt, identity, pod, waitAssigned };
}
