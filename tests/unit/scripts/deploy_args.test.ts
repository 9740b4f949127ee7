import assert from "node:assert/strict";
import { parseDeployArgs } from "../../../scripts/deploy.ts";
import { classify, summaryLine } from "../../../scripts/deploy/changes.ts";
import { defaultOptions } from "../../../scripts/manifests/options.ts";

Deno.test("deploy args: --kubeconfig PATH and --kubeconfig=PATH name the same file", () => {
  const expected = {
    ok: true,
    options: { kubeconfig: "/tmp/kc", dryRun: false, help: false, manifests: defaultOptions() },
  };
  assert.deepEqual(parseDeployArgs(["--kubeconfig", "/tmp/kc"]), expected);
  assert.deepEqual(parseDeployArgs(["--kubeconfig=/tmp/kc"]), expected);
  assert.deepEqual(parseDeployArgs(["--dry-run", "--kubeconfig=/tmp/kc"]), {
    ok: true,
    options: { ...expected.options, dryRun: true },
  });
  assert.deepEqual(parseDeployArgs([]), {
    ok: true,
    options: { dryRun: false, help: false, manifests: defaultOptions() },
  });
  assert.deepEqual(parseDeployArgs(["--help"]), {
    ok: true,
    options: { dryRun: false, help: true, manifests: defaultOptions() },
  });
});

Deno.test("deploy args: namespace, mode, image, version, secrets and taint reach the manifests", () => {
  const r = parseDeployArgs([
    "--mode=managed",
    "-n",
    "pod-id",
    "--image",
    "registry.example/aad",
    "--version=2.1.0",
    "--sp-secret=apps/sp",
    "--sp-secret",
    "ops/sp2",
    "--remove-node-taint=aad/not-ready",
  ]);
  assert.ok(r.ok);
  assert.deepEqual(r.options.manifests, {
    namespace: "pod-id",
    mode: "managed",
    imageRepository: "registry.example/aad",
    version: "2.1.0",
    servicePrincipalSecrets: [{ namespace: "apps", name: "sp" }, { namespace: "ops", name: "sp2" }],
    removeNodeTaint: "aad/not-ready",
  });
  // Managed mode defaults to kube-system, as the original's managed manifest.
  const managed = parseDeployArgs(["--mode", "managed"]);
  assert.ok(managed.ok && managed.options.manifests.namespace === "kube-system");
  const federated = parseDeployArgs(["--federated"]);
  assert.ok(federated.ok && federated.options.manifests.federated === true);
  assert.ok(r.options.manifests.federated === undefined);
});

Deno.test("deploy args: unknown flags, stray words, missing and invalid values are errors", () => {
  for (
    const argv of [
      ["--kubeconfig"],
      ["--kubeconfig="],
      ["--kubeconfig", "--dry-run"],
      ["--kube-config=/tmp/kc"],
      ["--dryrun"],
      ["-k", "/tmp/kc"],
      ["apply"],
      ["--kubeconfig", "/tmp/kc", "extra"],
      ["--dry-run=yes"],
      ["--mode=hybrid"],
      ["--namespace=Bad_Name"],
      ["--image=UPPER/x"],
      ["--version=:latest"],
      ["--sp-secret=nonamespace"],
      ["--remove-node-taint=a b"],
    ]
  ) {
    const r = parseDeployArgs(argv);
    assert.equal(r.ok, false, `${JSON.stringify(argv)} was accepted`);
    if (!r.ok) assert.ok(r.error.length > 0);
  }
});

Deno.test("deploy summary: created, changed (spec differs), unchanged (only bookkeeping differs)", () => {
  const cm = (rv: string, data: Record<string, string>, extra: Record<string, unknown> = {}) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "a", namespace: "ns", resourceVersion: rv, managedFields: [{ time: rv }], ...extra },
    data,
  });
  const before = [cm("1", { x: "1" }), { ...cm("5", { y: "1" }), metadata: { name: "b", namespace: "ns" } }];
  const after = [
    cm("2", { x: "1" }, { generation: 2 }),
    { ...cm("6", { y: "2" }), metadata: { name: "b", namespace: "ns" } },
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "new" }, status: { phase: "Active" } },
  ];
  const lines = classify(before, after);
  assert.deepEqual(lines.map((l) => l.change), ["unchanged", "changed", "created"]);
  assert.equal(summaryLine(lines, false), "3 objects: 1 created, 1 changed, 1 unchanged");
  assert.equal(
    summaryLine(classify(after, after), false),
    "3 objects, nothing changed: the cluster already matches",
  );
  assert.match(summaryLine(lines, true), /1 would be created.*dry run: nothing stored/);
});

Deno.test("deploy args: --azure-secret / --azure-json choose where MIC reads its Azure settings; not both", () => {
  const secret = parseDeployArgs(["--azure-secret", "aadpodidentity-admin-secret"]);
  assert.ok(secret.ok);
  assert.deepEqual(secret.options.manifests.azureConfig, {
    source: "secret",
    secretName: "aadpodidentity-admin-secret",
  });
  const json = parseDeployArgs(["--azure-json=/etc/kubernetes/custom.json"]);
  assert.ok(json.ok);
  assert.deepEqual(json.options.manifests.azureConfig, {
    source: "hostPath",
    path: "/etc/kubernetes/custom.json",
  });
  for (
    const argv of [
      ["--azure-secret=a", "--azure-json=/x"],
      ["--azure-json=relative.json"],
      ["--azure-secret=Not_A_Name"],
      ["--azure-secret"],
    ]
  ) {
    assert.equal(parseDeployArgs(argv).ok, false, argv.join(" "));
  }
});
