// charts/aad-pod-identity with a real helm (built from its Go module) against a real apiserver of its own
// (cluster-scoped names are fixed, so the shared cluster's deploy tests would collide): rendered with its
// defaults it equals deploy/ (no drift); a release of the original chart 4.1.18 upgrades to it with the
// original's default values and with a values file that sets every key; uninstall removes it.

import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { type ControlPlane, startControlPlane } from "../../../scripts/sandbox/control_plane.ts";
import { installationObjects, toYaml } from "../../../scripts/manifests.ts";
import { defaultOptions } from "../../../scripts/manifests/options.ts";
import { helm, UPSTREAM_CHART, VALUES_ALL } from "../../support/upstream.ts";

const root = new URL("../../../", import.meta.url).pathname;
const CHART = `${root}charts/aad-pod-identity`;
const ORIGINAL_VALUES = `${UPSTREAM_CHART}/values.yaml`;

type Obj = { kind: string; metadata: { name: string; namespace?: string } };
const keyOf = (o: Obj) => `${o.kind} ${o.metadata.namespace ?? ""}/${o.metadata.name}`;

function objects(text: string): Map<string, Obj> {
  const docs = parseAllDocuments(text).map((d) => d.toJS() as Obj | null).filter((o): o is Obj => o !== null);
  return new Map(docs.map((o) => [keyOf(o), o]));
}

async function assertSameObjects(rendered: string, deployFile: string): Promise<void> {
  const chart = objects(rendered);
  const deploy = objects(await Deno.readTextFile(`${root}${deployFile}`));
  assert.deepEqual([...chart.keys()].sort(), [...deploy.keys()].sort(), `${deployFile}: same objects`);
  for (const [k, o] of deploy) assert.deepEqual(chart.get(k), o, `${deployFile}: ${k}`);
}

Deno.test("helm chart: rendered with its defaults it is deploy/ (standard and managed mode): no drift", async () => {
  await assertSameObjects(
    await helm(["template", "aad-pod-identity", CHART, "--namespace", "default"]),
    "deploy/aad-pod-identity.yaml",
  );
  await assertSameObjects(
    await helm([
      "template",
      "aad-pod-identity",
      CHART,
      "--namespace",
      "kube-system",
      "--set",
      "operationMode=managed",
    ]),
    "deploy/aad-pod-identity-managed.yaml",
  );
  // servicePrincipalSecrets: the Roles and bindings `deno task deploy --sp-secret` makes, grouped alike.
  const secrets = [{ namespace: "apps", name: "sp-b" }, { namespace: "apps", name: "sp-a" }, {
    namespace: "ops",
    name: "sp-c",
  }];
  const set = secrets.flatMap((x, i) => [
    `servicePrincipalSecrets[${i}].namespace=${x.namespace}`,
    `servicePrincipalSecrets[${i}].name=${x.name}`,
  ]).join(",");
  const chartSecrets = objects(
    await helm(["template", "aad-pod-identity", CHART, "--namespace", "default", "--set", set]),
  );
  const deploySecrets = objects(
    toYaml(installationObjects({ ...defaultOptions(), servicePrincipalSecrets: secrets })),
  );
  assert.deepEqual(chartSecrets, deploySecrets);
  // adminsecret: the MIC of deploy/aad-pod-identity-noazurejson.yaml (plus the Secret the chart makes of it).
  const withSecret = objects(
    await helm([
      "template",
      "aad-pod-identity",
      CHART,
      "--namespace",
      "default",
      "-f",
      VALUES_ALL,
      "--set",
      "mic.customCloud.enabled=false",
    ]),
  );
  const noJson = objects(await Deno.readTextFile(`${root}deploy/aad-pod-identity-noazurejson.yaml`));
  const [chartMic, deployMic] = [withSecret, noJson].map((m) =>
    (m.get("Deployment default/mic") as unknown as { spec: { template: { spec: Record<string, unknown> } } })
      .spec.template.spec
  );
  const containerOf = (spec: Record<string, unknown>) => (spec.containers as Record<string, unknown>[])[0];
  assert.deepEqual(containerOf(chartMic).securityContext, containerOf(deployMic).securityContext);
  // No hostPath at all: neither azure.json nor (customCloud off) the custom cloud file.
  assert.equal(chartMic.volumes, undefined);
  assert.equal(deployMic.volumes, undefined);
  const secretEnv = (spec: Record<string, unknown>) =>
    (containerOf(spec).env as { name: string; valueFrom?: { secretKeyRef?: unknown } }[])
      .filter((e) => e.valueFrom?.secretKeyRef);
  assert.deepEqual(secretEnv(chartMic), secretEnv(deployMic));
  assert.ok(!(containerOf(chartMic).args as string[]).some((a) => a.startsWith("--cloudconfig")));
  assert.ok(withSecret.has("Secret default/aadpodidentity-admin-secret"));
});

Deno.test("helm chart: install the original chart, upgrade to ours with its default values and with every key set, uninstall", async () => {
  const cp: ControlPlane = await startControlPlane();
  const home = await Deno.makeTempDir({ prefix: "helm-home-" });
  const env = {
    KUBECONFIG: cp.kubeconfigPath,
    HELM_CACHE_HOME: `${home}/cache`,
    HELM_CONFIG_HOME: `${home}/config`,
    HELM_DATA_HOME: `${home}/data`,
  };
  const kubectl = async (args: string[]) => {
    const out = await new Deno.Command(cp.binaries.kubectl, {
      args: [`--kubeconfig=${cp.kubeconfigPath}`, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return new TextDecoder().decode(out.stdout);
  };
  const micArgs = async () =>
    JSON.parse(await kubectl(["get", "deployment", "mic", "-n", "default", "-o", "json"]))
      .spec.template.spec.containers[0].args as string[];
  try {
    await helm(["install", "pod-identity", UPSTREAM_CHART, "--namespace", "default"], env);
    // The original's objects are there (its names), and the release is deployed.
    assert.match(
      await kubectl(["get", "deployments", "-n", "default", "-o", "name"]),
      /deployment.apps\/aad-pod-identity-mic/,
    );

    await helm(["upgrade", "pod-identity", CHART, "--namespace", "default", "-f", ORIGINAL_VALUES], env);
    const names = await kubectl(["get", "deployments,daemonsets", "-n", "default", "-o", "name"]);
    assert.match(names, /deployment\.apps\/mic\n/);
    assert.match(names, /daemonset\.apps\/nmi\n/);
    assert.doesNotMatch(names, /deployment.apps\/aad-pod-identity-mic/, "the original's objects are gone");
    assert.ok((await micArgs()).includes("--cloudconfig=/etc/kubernetes/azure.json"));
    // Helm never upgrades CRDs: the documented step replaces the original's with ours.
    const specProps = async () =>
      JSON.parse(await kubectl(["get", "crd", "azureidentities.aadpodidentity.k8s.io", "-o", "json"]))
        .spec.versions[0].schema.openAPIV3Schema.properties.spec.properties;
    assert.ok(!("ClientID" in await specProps()), "the original's CRDs are still there after the upgrade");
    const crds = await kubectl([
      "apply",
      "--server-side",
      "--force-conflicts",
      "-f",
      `${root}deploy/crds.yaml`,
    ]);
    assert.match(crds, /azureidentities\.aadpodidentity\.k8s\.io serverside-applied/);
    assert.ok("ClientID" in await specProps(), "our schema (with the legacy spellings) is in place");

    await helm(["upgrade", "pod-identity", CHART, "--namespace", "default", "-f", VALUES_ALL], env);
    const args = await micArgs();
    assert.ok(args.includes("-v=5") && args.includes("--clientQps=5.5"), args.join(" "));
    assert.match(
      await kubectl(["get", "secret", "aadpodidentity-admin-secret", "-n", "default", "-o", "name"]),
      /secret/,
    );
    assert.match(await kubectl(["get", "azureidentities", "-A", "-o", "name"]), /azure-identity/);
    assert.match(await kubectl(["get", "poddisruptionbudgets", "-n", "default", "-o", "name"]), /mic-pdb/);
    assert.match(await kubectl(["get", "clusterroles", "-o", "name"]), /aad-pod-identity-view/);

    await helm(["uninstall", "pod-identity", "--namespace", "default"], env);
    assert.doesNotMatch(
      await kubectl(["get", "deployments,daemonsets", "-n", "default", "-o", "name"]),
      /mic|nmi/,
    );
    assert.equal(await helm(["list", "--namespace", "default", "-q"], env), "");
  } finally {
    await cp.stop();
    await Deno.remove(home, { recursive: true });
  }
});
