// The metrics contract of issue 20: every metric of the original (pkg/metrics/metrics.go at v1.8.17) with its
// name, type, label names and label values, checked on the /metrics of a real MIC and a real NMI after a
// scenario that exercises it (apiserver and Azure emulator as in the other integration tests).

import assert from "node:assert/strict";
import { Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { micEnv, waitForLog, waitUntil } from "../mic/harness.ts";
import { startHarness, tokenPath } from "../nmi/harness.ts";

interface OriginalMetric {
  name: string;
  type: "histogram" | "counter";
  labels: string[];
  component: "mic" | "nmi";
  /** Allowed values of a label (the original's constants). */
  values?: Record<string, string[]>;
  /** The scenario below makes it emit at least one sample. */
  exercised: boolean;
}

const ARM_OPS = ["vmss_get", "vmss_update", "vm_get", "vm_update"];
const KUBE_OPS = [
  "assigned_identity_addition",
  "assigned_identity_deletion",
  "assigned_identity_update",
  "update_azure_assigned_identity_status",
  "get_pod_list",
  "get_secret",
];
const IMDS_OPS = ["adal_token_msi", "adal_token_msi_userassignedid", "adal_token"];
const P = "aadpodidentity_";

/** The original's metrics, from https://github.com/Azure/aad-pod-identity/blob/v1.8.17/pkg/metrics/metrics.go */
const ORIGINAL_METRICS: OriginalMetric[] = [
  ...["addition", "deletion", "update"].flatMap((verb): OriginalMetric[] => [
    {
      name: `${P}assigned_identity_${verb}_duration_seconds`,
      type: "histogram",
      labels: [],
      component: "mic",
      exercised: verb !== "update",
    },
    {
      name: `${P}assigned_identity_${verb}_count`,
      type: "counter",
      labels: [],
      component: "mic",
      exercised: verb !== "update",
    },
  ]),
  {
    name: `${P}mic_cycle_duration_seconds`,
    type: "histogram",
    labels: [],
    component: "mic",
    exercised: true,
  },
  { name: `${P}mic_cycle_count`, type: "counter", labels: [], component: "mic", exercised: true },
  {
    name: `${P}mic_new_leader_election_count`,
    type: "counter",
    labels: [],
    component: "mic",
    exercised: true,
  },
  {
    name: `${P}cloud_provider_operations_errors_count`,
    type: "counter",
    labels: ["operation_type"],
    component: "mic",
    values: { operation_type: ARM_OPS },
    exercised: true,
  },
  {
    name: `${P}cloud_provider_operations_duration_seconds`,
    type: "histogram",
    labels: ["operation_type"],
    component: "mic",
    values: { operation_type: ARM_OPS },
    exercised: true,
  },
  {
    name: `${P}kubernetes_api_operations_errors_count`,
    type: "counter",
    labels: ["operation_type"],
    component: "mic",
    values: { operation_type: KUBE_OPS },
    exercised: false,
  },
  {
    name: `${P}kubernetes_api_operations_errors_count`,
    type: "counter",
    labels: ["operation_type"],
    component: "nmi",
    values: { operation_type: KUBE_OPS },
    exercised: false,
  },
  {
    name: `${P}nmi_operations_duration_seconds`,
    type: "histogram",
    labels: ["operation_type", "status_code", "namespace", "resource"],
    component: "nmi",
    exercised: true,
  },
  {
    name: `${P}imds_operations_errors_count`,
    type: "counter",
    labels: ["operation_type"],
    component: "nmi",
    values: { operation_type: IMDS_OPS },
    exercised: false,
  },
  {
    name: `${P}imds_operations_duration_seconds`,
    type: "histogram",
    labels: ["operation_type"],
    component: "nmi",
    values: { operation_type: IMDS_OPS },
    exercised: true,
  },
];

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseExposition(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) types.set(t[1], t[2]);
    const s = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!s) continue;
    const labels: Record<string, string> = {};
    for (const m of (s[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2];
    samples.push({ name: s[1], labels, value: Number(s[3]) });
  }
  return { types, samples };
}

/** Checks one component's exposition against the table; returns what each metric showed (for messages). */
function checkContract(component: "mic" | "nmi", text: string): void {
  const { types, samples } = parseExposition(text);
  for (const m of ORIGINAL_METRICS.filter((x) => x.component === component)) {
    assert.equal(types.get(m.name), m.type, `${component}: ${m.name} is a ${m.type}`);
    const own = m.type === "histogram"
      ? samples.filter((s) => [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`].includes(s.name))
      : samples.filter((s) => s.name === m.name);
    if (m.exercised) assert.ok(own.some((s) => s.value > 0), `${component}: ${m.name} was recorded`);
    for (const s of own) {
      const names = Object.keys(s.labels).filter((l) => l !== "le").sort();
      assert.deepEqual(names, [...m.labels].sort(), `${s.name} labels`);
      for (const [label, allowed] of Object.entries(m.values ?? {})) {
        assert.ok(allowed.includes(s.labels[label]), `${s.name}{${label}="${s.labels[label]}"}`);
      }
    }
  }
}

Deno.test("metrics contract: MIC exports the original's metrics with their shape after assign and release", async () => {
  const env = await micEnv("metrics");
  const { ns } = env;
  try {
    const ss = env.vmss("pool1");
    const id1 = env.uami("id1");
    await env.node(`${ns}-ss-0`, ss, 0);
    await env.identity("id1", { type: 0, resourceID: id1.id, clientID: id1.clientId });
    const sel = `m-${ns}`;
    await env.binding("b1", "id1", sel);
    const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (free.addr as Deno.NetAddr).port;
    free.close();
    const mic = await env.startMic("mic-m", [`--prometheus-port=${port}`]);
    await waitForLog(mic, /leading:/);
    const key = `default/app-${ns}-id1`;
    // One failed PATCH (retried after --arm-retry-base): the error counter has a sample.
    env.emu.faults.inject({ route: "vmss.patch", status: 500, times: 1 });
    await env.pod("app", `${ns}-ss-0`, sel);
    await waitUntil("Assigned", () => env.aai(key)?.status?.status === "Assigned");
    // MIC watches the whole cluster: in a full run it may also clean up other tests' leftovers at start, so
    // the deletion this test causes is counted as a difference.
    const deletions = async () => {
      const m = /^aadpodidentity_assigned_identity_deletion_count (\d+)$/m.exec(
        await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
      );
      return m ? Number(m[1]) : 0;
    };
    const deletedBefore = await deletions();
    await env.deletePod("app");
    await waitUntil("released", () => env.aai(key) === undefined);
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    checkContract("mic", text);
    // The original counted entering the election, once per process start.
    assert.match(text, /^aadpodidentity_mic_new_leader_election_count 1$/m);
    assert.match(text, /^aadpodidentity_assigned_identity_addition_count 1$/m);
    assert.equal(await deletions(), deletedBefore + 1, "one AzureAssignedIdentity deletion for the pod");
    assert.match(
      text,
      /^aadpodidentity_cloud_provider_operations_errors_count\{operation_type="vmss_update"\} 1$/m,
    );
  } finally {
    await env.close();
  }
});

Deno.test("metrics contract: NMI exports the original's metrics with their shape and values after token requests", async () => {
  const h = await startHarness({ attached: ["id-a"] });
  try {
    const idA = await h.createIdentity("id-a", {
      type: 0,
      resourceID: h.ids["id-a"].id,
      clientID: h.ids["id-a"].clientId,
    });
    const bA = await h.createBinding("b-a", "id-a", "a");
    const podA = await h.createPod("pod-a", { aadpodidbinding: "a" });
    await h.assign(podA, idA, bA, "Assigned");
    assert.equal((await h.get(podA.ip, tokenPath("https://vault.azure.net"))).status, 200);

    // A type-1 secret with several keys, none named clientSecret (the original read such secrets).
    const sp = h.emu.registerServicePrincipal();
    await h.kube.create(Resources.secrets, {
      metadata: { name: "sp", namespace: h.ns },
      data: { clientID: btoa(sp.clientId), secret: btoa(sp.secret!), tenantID: btoa(sp.tenantId) },
    } as KubeObject);
    const idS = await h.createIdentity("sp", {
      type: 1,
      clientID: sp.clientId,
      tenantID: sp.tenantId,
      clientPassword: { name: "sp", namespace: h.ns },
    });
    const bS = await h.createBinding("b-sp", "sp", "s");
    const podS = await h.createPod("pod-s", { aadpodidbinding: "s" });
    await h.assign(podS, idS, bS, "Assigned");
    const r = await h.get(podS.ip, tokenPath("https://storage.azure.com"));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.client_id, sp.clientId);
    await h.get(podA.ip, "/metadata/instance?api-version=2021-02-01", { Metadata: "true" });

    const text = await (await fetch(`http://127.0.0.1:${h.nmi.probePort}/metrics`)).text();
    checkContract("nmi", text);
    const { samples } = parseExposition(text);
    const ops = samples.filter((s) => s.name === `${P}nmi_operations_duration_seconds_count`);
    assert.ok(
      ops.some((s) =>
        s.labels.operation_type === "/metadata/identity/oauth2/token" && s.labels.status_code === "200" &&
        s.labels.namespace === h.ns && s.labels.resource === "https://vault.azure.net"
      ),
    );
    assert.ok(ops.some((s) => s.labels.operation_type === "/metadata/instance" && s.labels.resource === ""));
    const imds = samples.filter((s) => s.name === `${P}imds_operations_duration_seconds_count`);
    assert.deepEqual(
      imds.map((s) => s.labels.operation_type).sort(),
      ["adal_token", "adal_token_msi_userassignedid"],
    );
    assert.doesNotMatch(text, /pod-a|pod-s/, "no pod names in labels");
  } finally {
    await h.close();
  }
});
