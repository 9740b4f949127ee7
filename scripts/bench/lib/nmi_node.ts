// The node the NMI benchmark runs against: a real apiserver with the CRDs, the emulated node IMDS, one pod
// (IP 127.0.0.1) bound to a user-assigned identity and Assigned, NMI started and serving it, the cold path
// measured, then the filler pods added (the memory target is for a node with 500 pods).

import { toWire } from "../../../lib/api/wire.ts";
import { normalizeAzureIdentity, normalizeAzureIdentityBinding } from "../../../lib/api/normalize.ts";
import { loadKubeConnection } from "../../../lib/kube/config.ts";
import { KubeClient, Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { installCrds, startControlPlane } from "../../sandbox/control_plane.ts";
import { startAzureEmulator } from "../../sandbox/azure/emulator.ts";
import { rssMiB } from "./proc.ts";
import { benchTokenKubeconfig } from "./token_kubeconfig.ts";
import type { Logged } from "./spawn.ts";

const NODE = "bench-node";
const NS = "nmi-bench";

interface NmiArgs {
  node: string;
  kubeconfigPath: string;
  kubeletConfigPath: string;
  imdsHost: string;
  imdsPort: number;
}

/**
 * Anonymous resident memory in MiB (RssAnon): what the process itself allocated. The rest of VmRSS is the
 * deno executable's pages it has touched, which the kernel can drop and re-read, and which every Deno
 * process on the node shares.
 */
export async function rssAnonMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/RssAnon:\s+(\d+) kB/.exec(status)?.[1]) / 1024;
}

export interface Bench {
  nmi: Logged;
  nmiPort: number;
  sampleBody: string;
  cold: number[];
  /** RSS at start; 3 s after the 500 pods were added; 15 s after (NMI's idle collection has run). */
  rss: { nmiStart: number; nmiIdle: number; nmiIdleAnon: number; nmiSettled: number; nmiSettledAnon: number };
  imdsCalls(): number;
  cleanups: (() => Promise<unknown> | void)[];
  stop(): Promise<void>;
}

async function makePods(kube: KubeClient, id: KubeObject, binding: KubeObject) {
  await kube.create(Resources.namespaces, { metadata: { name: NS } });
  await kube.create(Resources.azureIdentities, id);
  await kube.create(Resources.azureIdentityBindings, binding);
  const makePod = async (name: string, ip: string, labels: Record<string, string>) => {
    await kube.create(Resources.pods, {
      metadata: { name, namespace: NS, labels },
      spec: { nodeName: NODE, containers: [{ name: "app", image: "app:1" }] },
    } as KubeObject);
    const status = { phase: "Running", podIP: ip, podIPs: [{ ip }] };
    await kube.patch(Resources.pods, name, "merge", { status }, { namespace: NS, subresource: "status" });
  };
  await makePod("bench-pod", "127.0.0.1", { aadpodidbinding: "bench" });
  await kube.create(Resources.azureAssignedIdentities, {
    metadata: { name: "bench-pod-nmi-bench-bench-id", namespace: NS, labels: { nodename: NODE } },
    spec: {
      azureIdentityRef: id,
      azureBindingRef: binding,
      pod: "bench-pod",
      podNamespace: NS,
      nodename: NODE,
    },
    status: { status: "Assigned" },
  } as unknown as KubeObject);
  return async (count: number) => {
    for (let i = 0; i < count; i += 25) {
      await Promise.all(Array.from({ length: Math.min(25, count - i) }, (_, j) => {
        const n = i + j;
        return makePod(`filler-${n}`, `10.9.${Math.floor(n / 250)}.${1 + (n % 250)}`, { app: `f-${n % 10}` });
      }));
    }
  };
}

async function firstToken(url: string): Promise<string> {
  const t0 = performance.now();
  while (true) {
    const res = await fetch(url, { headers: { Metadata: "true" } });
    const text = await res.text();
    if (res.status === 200) return text;
    if (performance.now() - t0 > 30_000) throw new Error(`NMI never served: ${res.status} ${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function coldPath(tokenUrl: (r: string) => string, resources: string[]): Promise<number[]> {
  const cold: number[] = [];
  for (const r of resources) {
    const s = performance.now();
    const res = await fetch(tokenUrl(r), { headers: { Metadata: "true" } });
    await res.text();
    if (res.status !== 200) throw new Error(`cold ${r}: ${res.status}`);
    cold.push(performance.now() - s);
  }
  return cold.sort((a, b) => a - b);
}

/** NMI's RSS with the pods added: 3 s after (the watch has delivered them) and 15 s after. */
async function idleRss(pid: number): Promise<Omit<Bench["rss"], "nmiStart">> {
  await new Promise((r) => setTimeout(r, 3000));
  const nmiIdle = await rssMiB(pid);
  const nmiIdleAnon = await rssAnonMiB(pid);
  // A quiet node's NMI has been idle for minutes: by 15 s the pods' burst of watch events has been followed
  // by a quiet 5 s interval, in which NMI collects once (nmi/idle_gc.ts).
  await new Promise((r) => setTimeout(r, 12_000));
  return { nmiIdle, nmiIdleAnon, nmiSettled: await rssMiB(pid), nmiSettledAnon: await rssAnonMiB(pid) };
}

export async function setUpNode(o: {
  pods: number;
  resource: string;
  imds: { hostname: string; port: number };
  startNmi: (a: NmiArgs) => Logged;
}): Promise<Bench> {
  const cluster = await startControlPlane();
  const emu = await startAzureEmulator({ lroDurationMs: 50, imdsPropagationDelayMs: 0 });
  const dir = await Deno.makeTempDir({ prefix: "nmi-bench-" });
  const cleanups: (() => Promise<unknown> | void)[] = [
    () => emu.stop(),
    () => cluster.stop(),
    () => Deno.remove(dir, { recursive: true }),
  ];
  const stop = async () => {
    for (const c of cleanups) await Promise.resolve().then(c).catch(() => {});
  };
  try {
    await installCrds(cluster);
    const conn = await loadKubeConnection({ kubeconfigPath: cluster.kubeconfigPath });
    cleanups.unshift(() => conn.close());
    const uami = emu.addUserAssignedIdentity({ resourceGroup: "rg", name: "bench-id" });
    const vmss = emu.addVmss({ resourceGroup: "rg", name: "nodes", userAssignedIdentities: [uami.id] });
    const imds = await emu.startImds({ vmssResourceId: vmss.id, instance: 0, ...o.imds });
    const resources = Array.from({ length: 30 }, (_, i) => `api://nmi-bench-${i}`);
    for (const r of resources) emu.registerResource(r);
    const id = toWire(normalizeAzureIdentity({
      apiVersion: "aadpodidentity.k8s.io/v1",
      kind: "AzureIdentity",
      metadata: { name: "bench-id", namespace: NS },
      spec: { type: 0, resourceID: uami.id, clientID: uami.clientId },
    })) as unknown as KubeObject;
    const binding = toWire(normalizeAzureIdentityBinding({
      apiVersion: "aadpodidentity.k8s.io/v1",
      kind: "AzureIdentityBinding",
      metadata: { name: "bench-binding", namespace: NS },
      spec: { azureIdentity: "bench-id", selector: "bench" },
    })) as unknown as KubeObject;
    const addFillers = await makePods(new KubeClient(conn), id, binding);
    const kubeletConfigPath = `${dir}/kubelet-config`;
    await Deno.writeTextFile(kubeletConfigPath, "");
    const nmi = o.startNmi({
      node: NODE,
      kubeconfigPath: await benchTokenKubeconfig(cluster, "nmi", `${dir}/nmi-kubeconfig`),
      kubeletConfigPath,
      imdsHost: imds.hostname,
      imdsPort: imds.port,
    });
    cleanups.unshift(() => nmi.stop());
    const nmiPort = await nmi.port;
    const tokenUrl = (r: string) =>
      `http://127.0.0.1:${nmiPort}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${
        encodeURIComponent(r)
      }`;
    const sampleBody = await firstToken(tokenUrl(o.resource));
    const nmiStart = await rssMiB(nmi.child.pid);
    const cold = await coldPath(tokenUrl, resources);
    await addFillers(o.pods);
    const idle = await idleRss(nmi.child.pid);
    const imdsCalls = () => emu.requests.count({ service: "imds", route: "imds.token" });
    return {
      nmi,
      nmiPort,
      sampleBody,
      cold,
      rss: { nmiStart, ...idle },
      imdsCalls,
      cleanups,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
