// The NMI integration harness: the run's real apiserver, the Azure emulator with one scale set whose
// instance IMDS stands in for the node's, and NMI itself as a real `deno run <shipped permissions>
// nmi/main.ts` process. Test "pods" are Pod objects on the apiserver whose status.podIP is a loopback
// address 127.a.b.c; clients send from that address (node:http `localAddress`), so NMI sees the pod's IP.

import http from "node:http";
import { toWire } from "../../../lib/api/wire.ts";
import {
  normalizeAzureAssignedIdentity,
  normalizeAzureIdentity,
  normalizeAzureIdentityBinding,
} from "../../../lib/api/normalize.ts";
import type { AzureIdentity, AzureIdentityBinding } from "../../../lib/api/types.ts";
import type { Pod } from "../../../lib/kube/core.ts";
import { type KubeClient, Resources, type ResourceType } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { NMI_ENTRY, NMI_PERMISSIONS } from "../../../nmi/permissions.ts";
import {
  type AzureEmulator,
  type AzureEmulatorOptions,
  type ImdsEndpoint,
  startAzureEmulator,
  type UserAssignedIdentityInfo,
} from "../../../scripts/sandbox/azure/emulator.ts";
import { sharedCluster, type TestCluster } from "../../support/cluster.ts";
import { clientFor, waitUntil } from "../kube/helpers.ts";

export { waitUntil };

const ROOT = new URL("../../../", import.meta.url).pathname;
let ipCounter = 1;
const IP_PREFIX = `127.${1 + Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`;

/** A fresh loopback address for a test pod (never 127.0.0.1, which /host/token reserves for the host). */
export function nextPodIp(): string {
  return `${IP_PREFIX}.${1 + (ipCounter++ % 250)}`;
}

interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // deno-lint-ignore no-explicit-any
  json: any;
}

/** One HTTP request from `fromIp` to NMI, with raw path and headers exactly as given. */
export function request(
  port: number,
  fromIp: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; host?: string } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: opts.host ?? "127.0.0.1",
      port,
      path,
      method: opts.method ?? "GET",
      headers: opts.headers ?? {},
      localAddress: fromIp,
      agent: false,
    }, (res) => {
      const chunks: Uint8Array[] = [];
      res.on("data", (c: Uint8Array) => chunks.push(c));
      res.on("end", () => {
        const text = new TextDecoder().decode(concat(chunks));
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

export const TOKEN_PATH = "/metadata/identity/oauth2/token";
export const MD = { Metadata: "true" };

export function tokenPath(resource = "https://vault.azure.net", extra: Record<string, string> = {}): string {
  return `${TOKEN_PATH}?${new URLSearchParams({ "api-version": "2018-02-01", resource, ...extra })}`;
}

export interface NmiProcess {
  port: number;
  probePort: number;
  /** Every line NMI wrote to stderr/stdout so far. */
  logs: string[];
  stop(): Promise<void>;
}

/**
 * NMI as a real process with its shipped permissions. `wrap` runs it through another command first (the e2e
 * suite passes `ip netns exec <node>`, which execs NMI in the node's network namespace).
 */
export async function spawnNmi(
  args: string[],
  env: Record<string, string> = {},
  wrap: string[] = [],
): Promise<NmiProcess> {
  const argv = [Deno.execPath(), "run", ...NMI_PERMISSIONS, NMI_ENTRY, ...args];
  const child = new Deno.Command(wrap[0] ?? argv[0], {
    args: [...wrap.slice(1), ...(wrap.length ? argv : argv.slice(1))],
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs: string[] = [];
  let resolveListen!: (v: { port: number; probePort: number }) => void;
  const listening = new Promise<{ port: number; probePort: number }>((r) => resolveListen = r);
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        logs.push(line);
        const m = /NMI listening address=\S+:(\d+) probePort=(\d+)/.exec(line);
        if (m) resolveListen({ port: Number(m[1]), probePort: Number(m[2]) });
      }
    }
    if (buf) logs.push(buf);
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const exited = child.status.then((s) => {
    throw new Error(`NMI exited (${s.code}) before listening:\n${logs.join("\n")}`);
  });
  exited.catch(() => {});
  const { port, probePort } = await Promise.race([listening, exited]);
  let stopped = false;
  return {
    port,
    probePort,
    logs,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 5000);
      await child.status;
      clearTimeout(t);
      await pumps;
    },
  };
}

interface HarnessOptions {
  emulator?: AzureEmulatorOptions;
  /** Extra NMI flags. */
  nmiArgs?: string[];
  /** Identities (names) to create in the emulator and attach to the scale set from the start. */
  attached?: string[];
  /** Identities created but not attached. */
  detached?: string[];
  imdsLimits?: { requestsPerSecond: number; maxConcurrent: number };
  startNmi?: boolean;
}

export interface Harness {
  cluster: TestCluster;
  kube: KubeClient;
  emu: AzureEmulator;
  imds: ImdsEndpoint;
  vmssId: string;
  node: string;
  ns: string;
  ids: Record<string, UserAssignedIdentityInfo>;
  nmi: NmiProcess;
  /** Starts (or restarts) NMI with the harness flags plus `extra`. */
  startNmi(extra?: string[]): Promise<NmiProcess>;
  nmiArgs(extra?: string[]): string[];
  get(fromIp: string, path: string, headers?: Record<string, string>, method?: string): Promise<HttpAnswer>;
  createPod(
    name: string,
    labels: Record<string, string>,
    opts?: PodOptions,
  ): Promise<{ name: string; ip: string; uid: string }>;
  createIdentity(
    name: string,
    spec: Partial<AzureIdentity["spec"]> & Record<string, unknown>,
    ns?: string,
    annotations?: Record<string, string>,
  ): Promise<AzureIdentity>;
  createBinding(
    name: string,
    identity: string,
    selector: string,
    ns?: string,
    weight?: number,
  ): Promise<AzureIdentityBinding>;
  assign(
    pod: { name: string; namespace?: string },
    identity: AzureIdentity,
    binding: AzureIdentityBinding,
    status: "Created" | "Assigned",
    node?: string,
  ): Promise<string>;
  setAssignedStatus(name: string, status: "Created" | "Assigned" | "Unassigned"): Promise<void>;
  /** Attaches an identity to the scale set through ARM (PATCH + long-running operation), as MIC does. */
  attachIdentity(name: string): Promise<void>;
  close(): Promise<void>;
}

interface PodOptions {
  namespace?: string;
  node?: string;
  ip?: string;
  phase?: "Pending" | "Running" | "Succeeded";
  ownerReplicaSet?: string;
  ipv6?: string;
  serviceAccountName?: string;
}

/** A user-assigned identity's AzureIdentity spec for an emulator identity. */
export function msiSpec(info: UserAssignedIdentityInfo): { type: 0; resourceID: string; clientID: string } {
  return { type: 0, resourceID: info.id, clientID: info.clientId };
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const cluster = await sharedCluster();
  const kube = await clientFor(cluster.kubeconfigPath);
  const ns = await cluster.namespace("nmi");
  const node = `node-${crypto.randomUUID().slice(0, 8)}`;
  const emu = await startAzureEmulator({ lroDurationMs: 50, ...opts.emulator });
  const ids: Record<string, UserAssignedIdentityInfo> = {};
  let armSp: { clientId: string; tenantId: string; secret?: string } | undefined;
  for (const name of [...(opts.attached ?? []), ...(opts.detached ?? [])]) {
    ids[name] = emu.addUserAssignedIdentity({ resourceGroup: "rg", name });
  }
  const vmss = emu.addVmss({
    resourceGroup: "rg",
    name: "nodes",
    capacity: 2,
    userAssignedIdentities: (opts.attached ?? []).map((n) => ids[n].id),
  });
  const imds = await emu.startImds({ vmssResourceId: vmss.id, instance: 0, limits: opts.imdsLimits });
  /** Every object the harness created, deleted again by close(). */
  const made: [ResourceType, string, string][] = [];
  const h: Harness = {
    cluster,
    kube,
    emu,
    imds,
    vmssId: vmss.id,
    node,
    ns,
    ids,
    nmi: undefined as unknown as NmiProcess,
    nmiArgs(extra = []) {
      return [
        "--node",
        node,
        "--kubeconfig",
        cluster.kubeconfigPath,
        "--nmi-port",
        "0",
        "--http-probe-port",
        "0",
        "--prometheus-port",
        "-1",
        "--probe-listen-address",
        "127.0.0.1",
        "--metadata-ip",
        "127.0.0.1",
        "--metadata-port",
        String(imds.port),
        "--ad-endpoint",
        emu.authorityHost,
        // No root here: these tests call NMI directly; the e2e suite tests the redirection.
        "--manage-iptables=false",
        ...(opts.nmiArgs ?? []),
        ...extra,
      ];
    },
    async startNmi(extra = []) {
      await h.nmi?.stop();
      h.nmi = await spawnNmi(h.nmiArgs(extra), { NODE_EXTRA_CA_CERTS: emu.caCertPath, LOG_LEVEL: "debug" });
      try {
        await waitUntil(
          "NMI ready",
          async () => {
            const r = await fetch(`http://127.0.0.1:${h.nmi.probePort}/readyz`, {
              signal: AbortSignal.timeout(2000),
            });
            await r.body?.cancel();
            return r.status === 200;
          },
          30_000,
          50,
        );
      } catch (e) {
        throw new Error(`${(e as Error).message}; NMI logs:\n${h.nmi.logs.join("\n")}`);
      }
      return h.nmi;
    },
    get: (fromIp, path, headers = MD, method = "GET") =>
      request(h.nmi.port, fromIp, path, { headers, method }),
    async createPod(name, labels, o = {}) {
      const namespace = o.namespace ?? ns;
      const ip = o.ip ?? nextPodIp();
      const pod: Pod = {
        metadata: {
          name,
          namespace,
          labels,
          ownerReferences: o.ownerReplicaSet
            ? [{
              apiVersion: "apps/v1",
              kind: "ReplicaSet",
              name: o.ownerReplicaSet,
              uid: crypto.randomUUID(),
              controller: true,
            }]
            : undefined,
        },
        spec: {
          nodeName: o.node ?? node,
          containers: [{ name: "app", image: "app:1" }],
          ...(o.serviceAccountName ? { serviceAccountName: o.serviceAccountName } : {}),
        } as Pod["spec"],
      };
      const created = await kube.create<Pod>(Resources.pods, pod);
      made.push([Resources.pods, namespace, name]);
      const podIPs = [{ ip }, ...(o.ipv6 ? [{ ip: o.ipv6 }] : [])];
      await kube.patch(Resources.pods, name, "merge", {
        status: { phase: o.phase ?? "Running", podIP: ip, podIPs },
      }, {
        namespace,
        subresource: "status",
      });
      return { name, ip, uid: created.metadata.uid! };
    },
    async createIdentity(name, spec, namespace = ns, annotations = {}) {
      const obj = normalizeAzureIdentity({
        apiVersion: "aadpodidentity.k8s.io/v1",
        kind: "AzureIdentity",
        metadata: { name, namespace, annotations },
        spec: { type: 0, ...spec },
      });
      await kube.create(Resources.azureIdentities, toWire(obj) as unknown as KubeObject);
      made.push([Resources.azureIdentities, namespace, name]);
      return obj;
    },
    async createBinding(name, identity, selector, namespace = ns, weight = 0) {
      const obj = normalizeAzureIdentityBinding({
        apiVersion: "aadpodidentity.k8s.io/v1",
        kind: "AzureIdentityBinding",
        metadata: { name, namespace },
        spec: { azureIdentity: identity, selector, weight },
      });
      await kube.create(Resources.azureIdentityBindings, toWire(obj) as unknown as KubeObject);
      made.push([Resources.azureIdentityBindings, namespace, name]);
      return obj;
    },
    async assign(pod, identity, binding, status, onNode = node) {
      const podNs = pod.namespace ?? ns;
      const name = `${pod.name}-${podNs}-${identity.metadata.name}`;
      const obj = normalizeAzureAssignedIdentity({
        apiVersion: "aadpodidentity.k8s.io/v1",
        kind: "AzureAssignedIdentity",
        metadata: { name, namespace: identity.metadata.namespace, labels: { nodename: onNode } },
        spec: {
          azureIdentityRef: toWire(identity),
          azureBindingRef: toWire(binding),
          pod: pod.name,
          podNamespace: podNs,
          nodename: onNode,
        },
        status: { status },
      });
      await kube.create(Resources.azureAssignedIdentities, toWire(obj) as unknown as KubeObject);
      made.push([Resources.azureAssignedIdentities, identity.metadata.namespace, name]);
      return name;
    },
    async setAssignedStatus(name, status) {
      await kube.patch(Resources.azureAssignedIdentities, name, "merge", { status: { status } }, {
        namespace: ns,
      });
    },
    async attachIdentity(name) {
      const ca = await Deno.readTextFile(emu.caCertPath);
      const client = Deno.createHttpClient({ caCerts: [ca] });
      try {
        armSp ??= emu.registerServicePrincipal();
        const tokenRes = await fetch(`${emu.authorityHost}/${armSp.tenantId}/oauth2/v2.0/token`, {
          method: "POST",
          client,
          body: new URLSearchParams({
            grant_type: "client_credentials",
            client_id: armSp.clientId,
            client_secret: armSp.secret!,
            scope: "https://management.azure.com/.default",
          }),
        });
        const { access_token } = await tokenRes.json();
        const url = `${emu.armEndpoint}${vmss.id}?api-version=2026-04-01`;
        const res = await fetch(url, {
          method: "PATCH",
          client,
          headers: { authorization: `Bearer ${access_token}`, "content-type": "application/json" },
          body: JSON.stringify({
            identity: { type: "UserAssigned", userAssignedIdentities: { [ids[name].id]: {} } },
          }),
        });
        await res.body?.cancel();
        if (res.status >= 300) throw new Error(`PATCH ${vmss.id}: ${res.status}`);
        await waitUntil(
          `${name} attached`,
          () => {
            const uai = emu.getIdentities(vmss.id).userAssignedIdentities ?? {};
            return Object.keys(uai).some((k) => k.toLowerCase() === ids[name].id.toLowerCase()) &&
              emu.getResource(vmss.id).properties !== undefined &&
              (emu.getResource(vmss.id).properties as { provisioningState?: string }).provisioningState ===
                "Succeeded";
          },
          30_000,
          20,
        );
      } finally {
        client.close();
      }
    },
    async close() {
      await h.nmi?.stop();
      // Bindings select pods in every namespace and MIC tests watch the whole cluster: leave nothing behind.
      for (const [rt, namespace, name] of made.reverse()) {
        if (rt === Resources.azureAssignedIdentities) {
          await kube.patch(rt, name, "merge", { metadata: { finalizers: null } }, { namespace }).catch(
            () => {},
          );
        }
        await kube.delete(rt, name, { namespace, gracePeriodSeconds: 0 }).catch(() => {});
      }
      await emu.stop();
      kube.conn.close();
    },
  };
  if (opts.startNmi ?? true) await h.startNmi();
  return h;
}
