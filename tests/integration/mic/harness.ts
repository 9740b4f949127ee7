// MIC integration harness: the run's real apiserver, the Azure emulator, and MIC started as a real
// `deno run <MIC_PERMISSIONS> mic/main.ts` process configured the way a user configures a custom cloud
// (azure.json + AZURE_ENVIRONMENT_FILEPATH + NODE_EXTRA_CA_CERTS). Each test gets its own namespace,
// lease, nodes and scale sets, and a watch on AzureAssignedIdentities that records every status it saw.

import { API_VERSION } from "../../../lib/api/types.ts";
import { Informer } from "../../../lib/kube/informer.ts";
import { KubeApiError, type KubeClient, Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { MIC_ENTRYPOINT, MIC_PERMISSIONS } from "../../../mic/permissions.ts";
import {
  type AzureEmulator,
  type AzureEmulatorOptions,
  type ComputeInfo,
  type ServicePrincipalInfo,
  startAzureEmulator,
  type UserAssignedIdentityInfo,
} from "../../../scripts/sandbox/azure/emulator.ts";
import { sharedCluster, type TestCluster } from "../../support/cluster.ts";
import { clientFor, waitUntil } from "../kube/helpers.ts";

export { waitUntil };

const root = new URL("../../../", import.meta.url).pathname;

type Raw = KubeObject & {
  spec?: Record<string, unknown>;
  status?: { status?: string };
};

interface MicProcess {
  name: string;
  child: Deno.ChildProcess;
  /** Every log line so far (stderr and stdout). */
  lines: string[];
  exited: Promise<Deno.CommandStatus>;
  kill(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

export interface MicEnv {
  cluster: TestCluster;
  client: KubeClient;
  emu: AzureEmulator;
  sp: ServicePrincipalInfo;
  ns: string;
  /** Resource group of this test's VMs / scale sets (unique per test). */
  rg: string;
  lease: string;
  /** Statuses each AzureAssignedIdentity went through, by `ns/name`, in order. */
  statuses: Map<string, string[]>;
  aais: Informer<Raw>;
  /** Starts MIC; `sp` gives it its own service principal (so the request log tells MICs apart). */
  startMic(
    name: string,
    extraArgs?: string[],
    extraEnv?: Record<string, string>,
    sp?: ServicePrincipalInfo,
    /** Replaces the azure.json MIC reads (e.g. a managed identity instead of a service principal). */
    azureJson?: Record<string, unknown>,
  ): Promise<MicProcess>;
  vmss(name: string): ComputeInfo;
  vm(name: string): ComputeInfo;
  uami(name: string): UserAssignedIdentityInfo;
  node(name: string, compute: ComputeInfo, instance?: number): Promise<void>;
  /** `spec` adds to the pod's spec (e.g. serviceAccountName). */
  pod(
    name: string,
    node: string,
    selector: string,
    namespace?: string,
    spec?: Record<string, unknown>,
  ): Promise<void>;
  deletePod(name: string, namespace?: string): Promise<void>;
  identity(name: string, spec: Record<string, unknown>, meta?: Record<string, unknown>): Promise<void>;
  binding(name: string, identity: string, selector: string, namespace?: string): Promise<void>;
  /** Resource ids on a VM / scale set in ARM state, lower-cased and sorted. */
  armIds(compute: ComputeInfo): string[];
  /** The AzureAssignedIdentity `ns/name` from the test's watch. */
  aai(key: string): Raw | undefined;
  /** Names in the watch with this pod namespace (spec.podNamespace). */
  aaisOfPods(podNamespace?: string): Raw[];
  armWrites(): number;
  /** Writes the azure.json a MIC started with `sp` reads (to test reloads); returns its path. */
  writeAzureJson(sp: ServicePrincipalInfo): Promise<string>;
  close(): Promise<void>;
}

export async function micEnv(prefix: string, emuOptions: AzureEmulatorOptions = {}): Promise<MicEnv> {
  const cluster = await sharedCluster();
  const client = await clientFor(cluster.kubeconfigPath);
  const ns = await cluster.namespace(prefix);
  const emu = await startAzureEmulator({ lroDurationMs: 100, imdsPropagationDelayMs: 0, ...emuOptions });
  const sp = emu.registerServicePrincipal({ displayName: "mic" });
  const dir = await Deno.makeTempDir({ prefix: "mic-test-" });
  const envFile = `${dir}/cloud.json`;
  await Deno.writeTextFile(
    envFile,
    JSON.stringify({
      name: "AzureStackCloud",
      resourceManagerEndpoint: emu.armEndpoint,
      activeDirectoryEndpoint: emu.authorityHost,
    }),
  );
  const writeAzureJson = async (who: ServicePrincipalInfo) => {
    const path = `${dir}/azure-${who.clientId}.json`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        cloud: "AzureStackCloud",
        tenantId: who.tenantId,
        subscriptionId: emu.subscriptionId,
        resourceGroup: ns,
        aadClientId: who.clientId,
        aadClientSecret: who.secret,
      }),
    );
    return path;
  };
  const rg = `mc-${ns}`;
  const lease = `mic-${ns}`;
  const statuses = new Map<string, string[]>();
  const ctrl = new AbortController();
  const aais = new Informer<Raw>({ client, resource: Resources.azureAssignedIdentities });
  const record = (o: Raw) => {
    const key = `${o.metadata.namespace}/${o.metadata.name}`;
    const list = statuses.get(key) ?? [];
    statuses.set(key, list);
    const s = o.status?.status ?? "";
    if (list.at(-1) !== s) list.push(s);
  };
  aais.addHandler({
    onAdd: record,
    onUpdate: (_, o) => record(o),
    onDelete: (o) => statuses.get(`${o.metadata.namespace}/${o.metadata.name}`)?.push("<deleted>"),
  });
  aais.start(ctrl.signal);
  await aais.synced;

  const mics: MicProcess[] = [];
  const nodes: string[] = [];
  const pods: [string, string][] = [];

  const env: MicEnv = {
    cluster,
    client,
    emu,
    sp,
    ns,
    rg,
    lease,
    statuses,
    aais,
    async startMic(name, extraArgs = [], extraEnv = {}, who = sp, azureJsonBody) {
      let azureJson = await writeAzureJson(who);
      if (azureJsonBody) {
        azureJson = `${dir}/azure-${name}.json`;
        await Deno.writeTextFile(azureJson, JSON.stringify(azureJsonBody));
      }
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          ...MIC_PERMISSIONS,
          `${root}${MIC_ENTRYPOINT}`,
          `--kubeconfig=${cluster.kubeconfigPath}`,
          `--cloudconfig=${azureJson}`,
          `--leader-election-namespace=${ns}`,
          `--leader-election-name=${lease}`,
          `--leader-election-instance=${name}`,
          "--leader-election-duration=3s",
          "--http-probe-port=0",
          "--prometheus-port=0",
          "--probe-address=127.0.0.1",
          "--cycle-debounce=50ms",
          "--arm-poll-interval=100ms",
          "--arm-retry-base=1s",
          ...extraArgs,
        ],
        env: {
          NODE_EXTRA_CA_CERTS: emu.caCertPath,
          AZURE_ENVIRONMENT_FILEPATH: envFile,
          MIC_POD_NAMESPACE: ns,
          NO_COLOR: "1",
          ...extraEnv,
        },
        stdout: "piped",
        stderr: "piped",
        stdin: "null",
      }).spawn();
      const lines: string[] = [];
      const pump = async (stream: ReadableStream<Uint8Array>) => {
        let buf = "";
        for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
          buf += chunk;
          const parts = buf.split("\n");
          buf = parts.pop()!;
          lines.push(...parts);
          if (Deno.env.get("MIC_TEST_VERBOSE")) { for (const p of parts) console.error(`[${name}] ${p}`); }
        }
        if (buf) lines.push(buf);
      };
      const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
      const exited = child.status.then(async (s) => {
        await pumps;
        return s;
      });
      const proc: MicProcess = {
        name,
        child,
        lines,
        exited,
        async kill(signal = "SIGTERM") {
          try {
            child.kill(signal);
          } catch {
            // already gone
          }
          return await exited;
        },
      };
      mics.push(proc);
      return proc;
    },
    vmss: (name) => emu.addVmss({ resourceGroup: rg, name }),
    vm: (name) => emu.addVm({ resourceGroup: rg, name }),
    uami: (name) => emu.addUserAssignedIdentity({ resourceGroup: `ids-${ns}`, name }),
    async node(name, compute, instance = 0) {
      const providerID = compute.id.includes("/virtualMachineScaleSets/")
        ? `azure://${compute.id}/virtualMachines/${instance}`
        : `azure://${compute.id}`;
      await client.create(Resources.nodes, { metadata: { name }, spec: { providerID } } as KubeObject);
      nodes.push(name);
    },
    async pod(name, node, selector, namespace = ns, spec = {}) {
      await client.create(Resources.pods, {
        metadata: { name, namespace, labels: { aadpodidbinding: selector } },
        spec: { nodeName: node, containers: [{ name: "app", image: "registry.invalid/app:1" }], ...spec },
      } as KubeObject);
      pods.push([namespace, name]);
    },
    async deletePod(name, namespace = ns) {
      await client.delete(Resources.pods, name, { namespace, gracePeriodSeconds: 0 });
    },
    async identity(name, spec, meta = {}) {
      await client.create(Resources.azureIdentities, {
        apiVersion: API_VERSION,
        kind: "AzureIdentity",
        metadata: { name, namespace: ns, ...meta },
        spec,
      } as KubeObject);
    },
    async binding(name, identity, selector, namespace = ns) {
      await client.create(Resources.azureIdentityBindings, {
        apiVersion: API_VERSION,
        kind: "AzureIdentityBinding",
        metadata: { name, namespace },
        spec: { azureIdentity: identity, selector },
      } as KubeObject);
    },
    armIds(compute) {
      const ids = Object.keys(emu.getIdentities(compute.id).userAssignedIdentities ?? {});
      return ids.map((i) => i.toLowerCase()).sort();
    },
    aai: (key) => aais.store.get(key),
    aaisOfPods: (podNamespace = ns) =>
      aais.store.list().filter((a) =>
        (a.spec as { podNamespace?: string } | undefined)?.podNamespace === podNamespace
      ),
    armWrites: () => emu.requests.count({ service: "arm", method: "PATCH", caller: sp.clientId }),
    writeAzureJson: (who) => writeAzureJson(who),
    async close() {
      await Promise.all(mics.map((m) => m.kill("SIGKILL")));
      // Leave nothing behind for other tests' MICs: pods, nodes and our AzureAssignedIdentities.
      for (const [namespace, name] of pods) {
        await client.delete(Resources.pods, name, { namespace, gracePeriodSeconds: 0 }).catch(() => {});
      }
      for (const n of nodes) await client.delete(Resources.nodes, n).catch(() => {});
      // Bindings select pods in every namespace (non-namespaced mode): none may outlive its test.
      for (const rt of [Resources.azureIdentityBindings, Resources.azureIdentities]) {
        for (const o of (await client.list(rt, { namespace: ns })).items) {
          await client.delete(rt, o.metadata.name!, { namespace: ns }).catch(() => {});
        }
      }
      for (const a of env.aaisOfPods()) {
        await client.patch(Resources.azureAssignedIdentities, a.metadata.name!, "merge", {
          metadata: { finalizers: null },
        }, { namespace: a.metadata.namespace }).catch(() => {});
        await client.delete(Resources.azureAssignedIdentities, a.metadata.name!, {
          namespace: a.metadata.namespace,
        }).catch((e) => {
          if (!(e instanceof KubeApiError && e.isNotFound)) throw e;
        });
      }
      ctrl.abort();
      await emu.stop();
      client.conn.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return env;
}

/** A line of a MIC's log matching `re`, waiting for it. */
export async function waitForLog(mic: MicProcess, re: RegExp, timeoutMs = 20_000): Promise<string> {
  let found: string | undefined;
  await waitUntil(
    `log line ${re} from ${mic.name}`,
    () => !!(found = mic.lines.find((l) => re.test(l))),
    timeoutMs,
  );
  return found!;
}

/**
 * The clientID/resourceID attack's objects: a victim identity bound by selector `victim-<ns>`, and a
 * "thief" AzureIdentity naming the team's own identity's resource id with the victim's client id, bound by
 * `thief-<ns>`. Returns both identities as the emulator knows them.
 */
export async function clientIdAttack(env: MicEnv): Promise<{
  victim: UserAssignedIdentityInfo;
  mine: UserAssignedIdentityInfo;
}> {
  const victim = env.uami("victim");
  const mine = env.uami("mine");
  await env.identity("victim", { type: 0, resourceID: victim.id, clientID: victim.clientId });
  await env.binding("b-victim", "victim", `victim-${env.ns}`);
  await env.identity("thief", { type: 0, resourceID: mine.id, clientID: victim.clientId });
  await env.binding("b-thief", "thief", `thief-${env.ns}`);
  return { victim, mine };
}
