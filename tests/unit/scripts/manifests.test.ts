// The generated manifests: checked-in files equal the generator's output, and the security properties the
// README promises hold for every option combination that changes them.

import assert from "node:assert/strict";
import { parse, parseAllDocuments } from "yaml";
import { installationObjects, renderManifests } from "../../../scripts/manifests.ts";
import type {
  ClusterRole,
  DaemonSet,
  Deployment,
  Manifest,
  PolicyRule,
  Role,
} from "../../../scripts/manifests/k8s.ts";
import { defaultOptions, type ManifestOptions, validateOptions } from "../../../scripts/manifests/options.ts";
import { MIC_ROLE, NMI_ROLE } from "../../../scripts/manifests/rbac.ts";

const root = new URL("../../../", import.meta.url).pathname;
const objects = (o: ManifestOptions) => installationObjects(o) as Manifest[];
const find = <T extends Manifest>(list: Manifest[], kind: T["kind"], name: string) =>
  list.find((m) => m.kind === kind && m.metadata.name === name) as T | undefined;

/** Verbs a set of rules grants on a resource (any name). */
function verbs(rules: PolicyRule[], group: string, resource: string): string[] {
  return rules.filter((r) => r.apiGroups.includes(group) && r.resources.includes(resource)).flatMap((r) =>
    r.verbs
  );
}

Deno.test("manifests: deploy/ and charts/aad-pod-identity hold exactly what the generator writes (deno task manifests --check)", async () => {
  for (const [path, text] of renderManifests()) {
    assert.equal(
      await Deno.readTextFile(`${root}${path}`),
      text,
      `${path} is stale: run deno task manifests`,
    );
    // Every document of deploy/ parses back to an object with kind and name (chart templates are Helm's;
    // tests/integration/deploy/helm.test.ts renders them).
    if (!path.startsWith("deploy/")) continue;
    for (const doc of parseAllDocuments(text)) {
      const o = doc.toJS() as { kind?: string; metadata?: { name?: string } } | null;
      if (o === null) continue;
      assert.ok(o.kind && o.metadata?.name, `${path}: a document without kind or name`);
    }
  }
});

Deno.test("manifests: NMI cannot write assignments and reads no secrets unless named; MIC reads no secrets", () => {
  const std = objects(defaultOptions());
  const nmi = find<ClusterRole>(std, "ClusterRole", NMI_ROLE)!.rules;
  const mic = find<ClusterRole>(std, "ClusterRole", MIC_ROLE)!.rules;
  assert.deepEqual(verbs(nmi, "aadpodidentity.k8s.io", "azureassignedidentities"), ["get", "list", "watch"]);
  assert.deepEqual(verbs(nmi, "", "secrets"), []);
  assert.deepEqual(verbs(nmi, "", "nodes"), []);
  assert.deepEqual(verbs(mic, "", "secrets"), []);
  for (const r of [...nmi, ...mic]) {
    assert.ok(
      !r.verbs.includes("*") && !r.resources.includes("*") && !r.apiGroups.includes("*"),
      JSON.stringify(r),
    );
  }
  // No Role anywhere grants MIC or NMI secrets.
  assert.ok(!std.some((m) => m.kind === "Role" && verbs((m as Role).rules, "", "secrets").length));

  const withSecrets = objects({
    ...defaultOptions(),
    servicePrincipalSecrets: [{ namespace: "apps", name: "sp-b" }, { namespace: "apps", name: "sp-a" }, {
      namespace: "ops",
      name: "sp-c",
    }],
    removeNodeTaint: "aad-pod-identity/not-ready",
  });
  const secretRoles = withSecrets.filter((m) =>
    m.kind === "Role" && m.metadata.name.endsWith("-secrets")
  ) as Role[];
  assert.deepEqual(
    secretRoles.map((r) => [r.metadata.namespace, r.rules]),
    [
      ["apps", [{
        apiGroups: [""],
        resources: ["secrets"],
        verbs: ["get", "list", "watch"],
        resourceNames: ["sp-a", "sp-b"],
      }]],
      ["ops", [{
        apiGroups: [""],
        resources: ["secrets"],
        verbs: ["get", "list", "watch"],
        resourceNames: ["sp-c"],
      }]],
    ],
  );
  assert.equal(
    withSecrets.filter((m) => m.kind === "RoleBinding" && m.metadata.name.endsWith("-secrets-binding"))
      .length,
    2,
  );
  assert.deepEqual(verbs(find<ClusterRole>(withSecrets, "ClusterRole", NMI_ROLE)!.rules, "", "nodes"), [
    "get",
    "patch",
  ]);
  const ds = find<DaemonSet>(withSecrets, "DaemonSet", "nmi")!;
  assert.ok(
    ds.spec.template.spec.containers[0].args.includes("--remove-node-taint=aad-pod-identity/not-ready"),
  );
});

Deno.test("manifests: MIC root only for a root-only azure.json, non-root from a Secret; read-only root, no capabilities, 2 replicas; NMI hostNetwork with NET_ADMIN/NET_RAW only", () => {
  const std = objects(defaultOptions());
  const mic = find<Deployment>(std, "Deployment", "mic")!;
  const mc = mic.spec.template.spec.containers[0];
  assert.equal(mic.spec.replicas, 2);
  // The node's azure.json is root-only (0600) on AKS: MIC reads it as root, as the original did.
  assert.equal(mc.securityContext.runAsUser, 0);
  assert.ok(mc.args.includes("--cloudconfig=/etc/kubernetes/azure.json"));
  assert.deepEqual(mic.spec.template.spec.volumes, [
    { name: "azure-json", hostPath: { path: "/etc/kubernetes/azure.json", type: "File" } },
  ]);
  const fromSecret = find<Deployment>(
    objects({
      ...defaultOptions(),
      azureConfig: { source: "secret", secretName: "aadpodidentity-admin-secret" },
    }),
    "Deployment",
    "mic",
  )!;
  const sc = fromSecret.spec.template.spec.containers[0];
  assert.equal(sc.securityContext.runAsNonRoot, true);
  assert.ok(sc.securityContext.runAsUser! > 0);
  assert.ok(!sc.args.some((a) => a.startsWith("--cloudconfig")));
  assert.equal(fromSecret.spec.template.spec.volumes, undefined);
  assert.deepEqual(
    sc.env!.filter((e) => e.valueFrom && "secretKeyRef" in e.valueFrom).map((e) => e.name),
    [
      "CLOUD",
      "SUBSCRIPTION_ID",
      "RESOURCE_GROUP",
      "VM_TYPE",
      "TENANT_ID",
      "CLIENT_ID",
      "CLIENT_SECRET",
      "USE_MSI",
      "USER_ASSIGNED_MSI_CLIENT_ID",
    ],
  );
  assert.equal(mc.securityContext.readOnlyRootFilesystem, true);
  assert.equal(mc.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(mc.securityContext.capabilities, { drop: ["ALL"] });
  assert.ok(mc.env!.some((e) => e.name === "MIC_POD_NAMESPACE"));
  assert.ok(mc.livenessProbe && mc.readinessProbe && mc.resources.limits.memory);

  const ds = find<DaemonSet>(std, "DaemonSet", "nmi")!;
  const spec = ds.spec.template.spec;
  const nc = spec.containers[0];
  assert.equal(spec.hostNetwork, true);
  assert.deepEqual(nc.securityContext.capabilities, { drop: ["ALL"], add: ["NET_ADMIN", "NET_RAW"] });
  assert.notEqual(nc.securityContext.privileged, true);
  assert.deepEqual(spec.tolerations, [{ operator: "Exists" }]);
  assert.ok(nc.volumeMounts!.some((v) => v.mountPath === "/run/xtables.lock" && !v.readOnly));
  assert.ok(spec.volumes!.some((v) => v.hostPath?.path === "/run/xtables.lock"));
  assert.deepEqual(nc.env, [{ name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } }]);
  // Probes on 8085, /metrics also on the original's ports (NMI 9090, MIC 8888); the token server stays on
  // loopback.
  assert.equal(nc.livenessProbe!.httpGet.port, 8085);
  assert.ok(nc.args.includes("--http-probe-port=8085") && nc.args.includes("--prometheus-port=9090"));
  assert.ok(mc.args.includes("--http-probe-port=8080") && mc.args.includes("--prometheus-port=8888"));
  assert.ok(!nc.args.some((a) => a.startsWith("--nmi-listen-address")), "token server stays on 127.0.0.1");
});

Deno.test("manifests: managed mode is NMI only, namespaced, without assignments", () => {
  const managed = objects(defaultOptions("managed"));
  assert.ok(!managed.some((m) => m.kind === "Deployment"));
  assert.ok(!managed.some((m) => m.metadata.name === MIC_ROLE));
  const nmi = find<ClusterRole>(managed, "ClusterRole", NMI_ROLE)!;
  assert.deepEqual(verbs(nmi.rules, "aadpodidentity.k8s.io", "azureassignedidentities"), []);
  const args = find<DaemonSet>(managed, "DaemonSet", "nmi")!.spec.template.spec.containers[0].args;
  assert.ok(args.includes("--operation-mode=managed") && args.includes("--forceNamespaced=true"));
  assert.ok(
    managed.every((m) => m.metadata.namespace === undefined || m.metadata.namespace === "kube-system"),
  );
});

Deno.test("manifests: namespace, image and version options land everywhere; bad values are named", () => {
  const o = {
    ...defaultOptions(),
    namespace: "pod-identity",
    imageRepository: "registry.example:5000/aad",
    version: "2.0.0",
  };
  const list = objects(o);
  assert.equal(list[0].kind, "Namespace");
  const images = list.flatMap((m) =>
    m.kind === "Deployment" || m.kind === "DaemonSet"
      ? m.spec.template.spec.containers.map((c) => c.image)
      : []
  );
  assert.deepEqual(images, ["registry.example:5000/aad/mic:2.0.0", "registry.example:5000/aad/nmi:2.0.0"]);
  for (const m of list) {
    if (m.kind === "ClusterRoleBinding" || m.kind === "RoleBinding") {
      assert.ok(m.subjects.every((s) => s.namespace === "pod-identity"));
    }
  }
  assert.deepEqual(validateOptions(o), []);
  const bad = validateOptions({
    ...o,
    namespace: "Bad_NS",
    imageRepository: "UPPER/case",
    version: "-x",
    servicePrincipalSecrets: [{ namespace: "a", name: "" }],
  });
  assert.equal(bad.length, 4, bad.join("\n"));
  assert.match(
    bad.join("\n"),
    /namespace 'Bad_NS'.*\n.*image repository.*\n.*version '-x'.*\n.*secret 'a\/'/,
  );
});

Deno.test("manifests: --federated adds only NMI's serviceaccounts/token create and the admission policy", () => {
  const std = objects(defaultOptions());
  const fed = objects({ ...defaultOptions(), federated: true });
  const nmiStd = find<ClusterRole>(std, "ClusterRole", NMI_ROLE)!.rules;
  const nmiFed = find<ClusterRole>(fed, "ClusterRole", NMI_ROLE)!.rules;
  assert.deepEqual(verbs(nmiStd, "", "serviceaccounts/token"), []);
  assert.deepEqual(verbs(nmiFed, "", "serviceaccounts/token"), ["create"]);
  assert.deepEqual(nmiFed.filter((r) => !r.resources.includes("serviceaccounts/token")), nmiStd);
  const kinds = (list: Manifest[]) => list.map((m) => m.kind);
  const added = kinds(fed).filter((k) => !kinds(std).includes(k));
  assert.deepEqual(added, ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]);
  const policy = fed.find((m) => (m.kind as string) === "ValidatingAdmissionPolicy") as unknown as {
    spec: { matchConditions: { expression: string }[] };
  };
  assert.equal(
    policy.spec.matchConditions[0].expression,
    "request.userInfo.username == 'system:serviceaccount:default:aad-pod-id-nmi-service-account'",
  );
});

Deno.test("manifests: service accounts, ClusterRoles and their bindings carry the original's names (deploy/infra)", async () => {
  const fixture = new URL(
    "../../fixtures/upstream-v1.8.17/deploy/infra/deployment-rbac.yaml",
    import.meta.url,
  );
  const original = parseAllDocuments(await Deno.readTextFile(fixture)).map((d) =>
    d.toJS() as { kind: string; metadata: { name: string } } | null
  );
  const names = (list: readonly ({ kind: string; metadata: { name: string } } | null)[], kind: string) =>
    list.filter((o) => o?.kind === kind).map((o) => o!.metadata.name).sort();
  const ours = objects(defaultOptions());
  for (const kind of ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]) {
    assert.deepEqual(names(ours, kind), names(original, kind), kind);
  }
});

Deno.test("chart: values.yaml has every key of the original chart's values.yaml, and its README names each", async () => {
  const original = parse(
    await Deno.readTextFile(
      new URL("../../fixtures/upstream-v1.8.17/chart/values.yaml", import.meta.url),
    ),
  ) as Record<string, unknown>;
  const files = renderManifests();
  const ours = parse(files.get("charts/aad-pod-identity/values.yaml")!) as Record<string, unknown>;
  const readme = files.get("charts/aad-pod-identity/README.md")!;
  // Maps whose content is the user's (resources, nodeSelector, ...) count as one key.
  const OPAQUE = new Set([
    "resources",
    "nodeSelector",
    "affinity",
    "updateStrategy",
    "podAnnotations",
    "podLabels",
  ]);
  const walk = (o: Record<string, unknown>, mine: Record<string, unknown>, path: string[]) => {
    for (const [k, v] of Object.entries(o)) {
      const p = [...path, k];
      assert.ok(k in mine, `values.yaml lacks ${p.join(".")}`);
      assert.ok(readme.includes(k), `the chart README does not name ${p.join(".")}`);
      if (v && typeof v === "object" && !Array.isArray(v) && !OPAQUE.has(k)) {
        walk(v as Record<string, unknown>, mine[k] as Record<string, unknown>, p);
      }
    }
  };
  walk(original, ours, []);
});
