// The generated RBAC on the real apiserver: applied with `deno task deploy` (server-side apply; the second
// run changes nothing), questioned with `kubectl auth can-i --as` for each service account, and then lived
// in: MIC and NMI run as real processes with tokens of those service accounts (not admin) through the
// lifecycle (MIC assigns in the emulator, NMI serves the pod, including a service principal whose secret
// is the only one NMI may read).

import assert from "node:assert/strict";
import { Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { MIC_SERVICE_ACCOUNT, NMI_SERVICE_ACCOUNT } from "../../../scripts/manifests/rbac.ts";
import { sharedCluster, type TestCluster } from "../../support/cluster.ts";
import { micEnv, waitForLog, waitUntil } from "../mic/harness.ts";
import { MD, nextPodIp, request, spawnNmi, tokenPath } from "../nmi/harness.ts";
import { canI, serviceAccountKubeconfig } from "./service_accounts.ts";

const root = new URL("../../../", import.meta.url).pathname;

async function deploy(cluster: TestCluster, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}scripts/deploy.ts`, `--kubeconfig=${cluster.kubeconfigPath}`, ...args],
    env: { KUBECTL_BIN: Deno.env.get("AAD_TEST_KUBECTL") ?? "kubectl" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

Deno.test("deploy RBAC: server-side apply twice (no change the second time); can-i as MIC and NMI", async () => {
  const cluster = await sharedCluster();
  const ns = await cluster.namespace("aad-rbac");
  const spNs = await cluster.namespace("sp");
  const args = [`--namespace=${ns}`, `--sp-secret=${spNs}/sp-a`];
  const first = await deploy(cluster, args);
  assert.equal(first.code, 0, first.output);
  assert.match(first.output, new RegExp(`created +ServiceAccount ${ns}/${MIC_SERVICE_ACCOUNT}`));
  assert.match(first.output, new RegExp(`created +Deployment ${ns}/mic`));
  assert.match(first.output, new RegExp(`created +Role ${spNs}/aad-pod-id-nmi-role-secrets`));
  const second = await deploy(cluster, args);
  assert.equal(second.code, 0, second.output);
  assert.match(second.output, /objects, nothing changed: the cluster already matches/);
  assert.doesNotMatch(second.output, /^\s+(created|changed) /m);

  const mic = { namespace: ns, name: MIC_SERVICE_ACCOUNT };
  const nmi = { namespace: ns, name: NMI_SERVICE_ACCOUNT };
  const all = { allNamespaces: true };
  const expectations: [typeof mic, string, string, Parameters<typeof canI>[4], boolean][] = [
    // MIC: watches, owns assignments, rewrites legacy objects, its own Lease and ConfigMap; no secrets.
    [mic, "watch", "pods", all, true],
    [mic, "list", "nodes", all, true],
    [mic, "update", "azureidentities.aadpodidentity.k8s.io", all, true],
    [mic, "create", "azureassignedidentities.aadpodidentity.k8s.io", all, true],
    [mic, "delete", "azureassignedidentities.aadpodidentity.k8s.io", all, true],
    [mic, "create", "events", { namespace: spNs }, true],
    [mic, "update", "leases.coordination.k8s.io/aad-pod-identity-mic", {}, true],
    [mic, "get", "configmaps/aad-pod-identity-config", {}, true],
    [mic, "get", "secrets", all, false],
    [mic, "get", "secrets/sp-a", { namespace: spNs }, false],
    [mic, "list", "secrets", {}, false],
    [mic, "update", "leases.coordination.k8s.io/someone-elses-lease", {}, false],
    [mic, "get", "configmaps/other", {}, false],
    [mic, "create", "leases.coordination.k8s.io", { namespace: spNs }, false],
    [mic, "delete", "pods", all, false],
    [mic, "patch", "nodes", all, false],
    [mic, "create", "azureidentities.aadpodidentity.k8s.io", all, false],
    [mic, "delete", "customresourcedefinitions.apiextensions.k8s.io", all, false],
    // NMI: reads what it decides from; writes nothing but events; only the named secret.
    [nmi, "watch", "pods", all, true],
    [nmi, "watch", "azureassignedidentities.aadpodidentity.k8s.io", all, true],
    [nmi, "list", "azurepodidentityexceptions.aadpodidentity.k8s.io", all, true],
    [nmi, "get", "secrets/sp-a", { namespace: spNs }, true],
    [nmi, "watch", "secrets/sp-a", { namespace: spNs }, true],
    [nmi, "create", "azureassignedidentities.aadpodidentity.k8s.io", all, false],
    [nmi, "update", "azureassignedidentities.aadpodidentity.k8s.io", all, false],
    [nmi, "patch", "azureassignedidentities.aadpodidentity.k8s.io", all, false],
    [nmi, "delete", "azureassignedidentities.aadpodidentity.k8s.io", all, false],
    [nmi, "update", "azureidentities.aadpodidentity.k8s.io", all, false],
    [nmi, "get", "secrets/sp-b", { namespace: spNs }, false],
    [nmi, "list", "secrets", { namespace: spNs }, false],
    [nmi, "get", "secrets", all, false],
    [nmi, "patch", "nodes", all, false],
    [nmi, "update", "pods", all, false],
  ];
  const wrong: string[] = [];
  for (const [who, verb, resource, where, expected] of expectations) {
    const got = await canI(cluster, who, verb, resource, where);
    if (got !== expected) wrong.push(`${who.name} ${verb} ${resource} ${JSON.stringify(where)}: ${got}`);
  }
  assert.deepEqual(wrong, []);
});

Deno.test("deploy RBAC: MIC and NMI with their service-account tokens assign and serve (user-assigned and service principal)", async () => {
  const env = await micEnv("aad-sa");
  const { ns, client, cluster, emu } = env;
  const dir = await Deno.makeTempDir({ prefix: "aad-sa-" });
  let nmi: Awaited<ReturnType<typeof spawnNmi>> | undefined;
  try {
    const spNs = await cluster.namespace("sp");
    const deployed = await deploy(cluster, [`--namespace=${ns}`, `--sp-secret=${spNs}/sp-a`]);
    assert.equal(deployed.code, 0, deployed.output);
    const micKc = await serviceAccountKubeconfig(cluster, ns, MIC_SERVICE_ACCOUNT, `${dir}/mic`);
    const nmiKc = await serviceAccountKubeconfig(cluster, ns, NMI_SERVICE_ACCOUNT, `${dir}/nmi`);

    const pool = env.vmss("pool");
    const node = `${ns}-pool-0`;
    await env.node(node, pool, 0);
    const uami = env.uami("web");
    await env.identity("web", { type: 0, resourceID: uami.id, clientID: uami.clientId });
    await env.binding("web", "web", `${ns}-web`);
    const sp = emu.registerServicePrincipal({ displayName: "app-sp" });
    await client.create(Resources.secrets, {
      metadata: { name: "sp-a", namespace: spNs },
      stringData: { clientSecret: sp.secret! },
    } as KubeObject);
    await env.identity("app", {
      type: 1,
      clientID: sp.clientId,
      tenantID: sp.tenantId,
      clientPassword: { name: "sp-a", namespace: spNs },
      adEndpoint: emu.authorityHost,
    });
    await env.binding("app", "app", `${ns}-app`);

    const pods: Record<string, string> = {};
    for (
      const [name, selector] of [["web-0", `${ns}-web`], ["app-0", `${ns}-app`], ["loose-0", `${ns}-none`]]
    ) {
      await env.pod(name, node, selector);
      pods[name] = nextPodIp();
      await client.patch(Resources.pods, name, "merge", {
        status: { phase: "Running", podIP: pods[name], podIPs: [{ ip: pods[name] }] },
      }, { namespace: ns, subresource: "status" });
    }

    const mic = await env.startMic("mic-sa", [
      `--kubeconfig=${micKc}`,
      "--leader-election-name=aad-pod-identity-mic",
    ]);
    await waitForLog(mic, /leading:/);
    const status = (pod: string, id: string) => env.aai(`default/${pod}-${ns}-${id}`)?.status?.status;
    await waitUntil(
      "web-0 and app-0 Assigned",
      () => status("web-0", "web") === "Assigned" && status("app-0", "app") === "Assigned",
      30_000,
    );
    assert.deepEqual(env.armIds(pool), [uami.id.toLowerCase()]);

    const imds = await emu.startImds({ vmssResourceId: pool.id, instance: 0 });
    nmi = await spawnNmi([
      `--node=${node}`,
      `--kubeconfig=${nmiKc}`,
      "--nmi-port=0",
      "--http-probe-port=0",
      "--prometheus-port=-1",
      "--probe-listen-address=127.0.0.1",
      "--metadata-ip=127.0.0.1",
      `--metadata-port=${imds.port}`,
      `--MICNamespace=${ns}`,
      "--manage-iptables=false",
    ], { NODE_EXTRA_CA_CERTS: emu.caCertPath });
    const { port, probePort } = nmi;
    await waitUntil("NMI ready", async () => {
      const r = await fetch(`http://127.0.0.1:${probePort}/readyz`);
      await r.body?.cancel();
      return r.ok;
    }, 30_000);

    const web = await request(port, pods["web-0"], tokenPath(), { headers: MD });
    assert.equal(web.status, 200, web.text);
    assert.equal((await emu.verifyToken(web.json.access_token)).appid, uami.clientId);
    const app = await request(port, pods["app-0"], tokenPath(), { headers: MD });
    assert.equal(app.status, 200, app.text);
    assert.equal((await emu.verifyToken(app.json.access_token)).appid, sp.clientId);
    const loose = await request(port, pods["loose-0"], tokenPath(), { headers: MD });
    assert.equal(loose.status, 400, loose.text);

    // Nothing either process did was refused by RBAC.
    const refused = [...mic.lines, ...nmi.logs].filter((l) => /forbidden/i.test(l));
    assert.deepEqual(refused, []);

    await env.deletePod("web-0");
    await waitUntil("web-0's assignment gone", () => !env.aai(`default/web-0-${ns}-web`), 30_000);
    await waitUntil("web off the scale set", () => env.armIds(pool).length === 0, 30_000);
    await imds.stop();
  } finally {
    await nmi?.stop();
    await env.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("deploy RBAC: over the original's RBAC (kubectl client-side apply), NMI loses its read on every secret", async () => {
  const cluster = await sharedCluster();
  const ns = await cluster.namespace("aad-upgrade");
  // The original's NMI ClusterRole and binding (upstream deploy/infra/deployment-rbac.yaml, abridged).
  const original = [
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: NMI_SERVICE_ACCOUNT, namespace: ns },
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "aad-pod-id-nmi-role" },
      rules: [
        {
          apiGroups: ["apiextensions.k8s.io"],
          resources: ["customresourcedefinitions"],
          verbs: ["get", "list"],
        },
        { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
        { apiGroups: [""], resources: ["secrets"], verbs: ["get"] },
      ],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "aad-pod-id-nmi-binding" },
      subjects: [{ kind: "ServiceAccount", name: NMI_SERVICE_ACCOUNT, namespace: ns }],
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "aad-pod-id-nmi-role" },
    },
  ];
  const applied = await cluster.kubectl(
    ["apply", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: original }),
  );
  assert.equal(applied.code, 0, applied.stderr);
  const nmi = { namespace: ns, name: NMI_SERVICE_ACCOUNT };
  assert.equal(
    await canI(cluster, nmi, "get", "secrets", { allNamespaces: true }),
    true,
    "the original's grant",
  );

  const r = await deploy(cluster, [`--namespace=${ns}`]);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /changed +ClusterRole aad-pod-id-nmi-role/);
  assert.match(r.output, /changed +ClusterRoleBinding aad-pod-id-nmi-binding/);
  assert.equal(await canI(cluster, nmi, "get", "secrets", { allNamespaces: true }), false);
  assert.equal(
    await canI(cluster, nmi, "list", "customresourcedefinitions.apiextensions.k8s.io", {
      allNamespaces: true,
    }),
    false,
  );
  assert.equal(await canI(cluster, nmi, "watch", "pods", { allNamespaces: true }), true);
  const bindings = await cluster.kubectl(["get", "clusterrolebindings", "-o", "name"]);
  assert.deepEqual(bindings.stdout.split("\n").filter((l) => l.includes("aad-pod-id-nmi")), [
    "clusterrolebinding.rbac.authorization.k8s.io/aad-pod-id-nmi-binding",
  ]);
});
