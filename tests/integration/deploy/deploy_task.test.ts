// `deno task deploy` against a real apiserver, through the user's own kubeconfig setting.

import assert from "node:assert/strict";
import { sharedCluster } from "../../support/cluster.ts";
import { TcpRelay } from "../kube/helpers.ts";

const root = new URL("../../../", import.meta.url).pathname;

async function deploy(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}scripts/deploy.ts`, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

Deno.test("deploy: applies deploy/ to the cluster KUBECONFIG names, CRDs first, idempotently", async () => {
  const cluster = await sharedCluster();
  const env = {
    KUBECONFIG: cluster.kubeconfigPath,
    KUBECTL_BIN: Deno.env.get("AAD_TEST_KUBECTL") ?? "kubectl",
  };
  for (let i = 0; i < 2; i++) {
    const r = await deploy([], env);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /CustomResourceDefinition azureidentities\.aadpodidentity\.k8s\.io/);
    assert.match(r.output, /DaemonSet default\/nmi/);
    if (i === 1) assert.match(r.output, /nothing changed: the cluster already matches/);
  }
  const dry = await deploy(["--dry-run"], env);
  assert.equal(dry.code, 0, dry.output);
  assert.match(dry.output, /\(dry run\)/);
  assert.match(dry.output, /nothing would change/);
  // Another version: exactly the two workloads would change, nothing is stored.
  const bump = await deploy(["--dry-run", "--version=9.9.9"], env);
  assert.equal(bump.code, 0, bump.output);
  assert.deepEqual(
    [...bump.output.matchAll(/^\s+changed\s+(.*)$/gm)].map((m) => m[1]),
    ["Deployment default/mic", "DaemonSet default/nmi"],
  );
  assert.match(
    bump.output,
    /0 would be created, 2 would be changed, \d+ unchanged \(dry run: nothing stored\)/,
  );
  const after = await deploy([], env);
  assert.match(after.output, /nothing changed/);
  // Managed mode: NMI only, in kube-system, no MIC.
  const managed = await deploy(["--dry-run", "--mode=managed"], env);
  assert.equal(managed.code, 0, managed.output);
  assert.match(managed.output, /DaemonSet kube-system\/nmi/);
  assert.doesNotMatch(managed.output, /Deployment|aad-pod-id-mic/);
  // Federated identities allowed: NMI's role gains one rule, and the admission policy narrows it.
  const federated = await deploy(["--dry-run", "--federated"], env);
  assert.equal(federated.code, 0, federated.output);
  assert.match(federated.output, /ValidatingAdmissionPolicy aad-pod-identity-nmi-token-requests/);
  assert.match(federated.output, /ValidatingAdmissionPolicyBinding aad-pod-identity-nmi-token-requests/);
  assert.match(federated.output, /changed\s+ClusterRole aad-pod-id-nmi-role/);
});

Deno.test("deploy: an unreachable cluster is a clear failure, not a hang", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/kubeconfig`,
      "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n" +
        "users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n",
    );
    const r = await deploy(["--kubeconfig", `${dir}/kubeconfig`], {
      KUBECTL_BIN: Deno.env.get("AAD_TEST_KUBECTL") ?? "kubectl",
    });
    assert.notEqual(r.code, 0);
    assert.match(r.output, /deploy: kubectl .* failed/);
    assert.match(r.output, /connection refused/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A copy of the cluster's kubeconfig that points at another server address (same credentials). */
async function kubeconfigFor(original: string, server: string, path: string): Promise<string> {
  const text = await Deno.readTextFile(original);
  await Deno.writeTextFile(path, text.replace(/server: \S+/, `server: ${server}`));
  return path;
}

const UNREACHABLE_KUBECONFIG =
  "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n" +
  "users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n";

Deno.test("deploy: --kubeconfig=PATH and --kubeconfig PATH win over KUBECONFIG", async () => {
  const cluster = await sharedCluster();
  const dir = await Deno.makeTempDir();
  try {
    // The current context (KUBECONFIG) is unreachable: a deploy that ignores the flag fails.
    await Deno.writeTextFile(`${dir}/unreachable`, UNREACHABLE_KUBECONFIG);
    const env = {
      KUBECONFIG: `${dir}/unreachable`,
      KUBECTL_BIN: Deno.env.get("AAD_TEST_KUBECTL") ?? "kubectl",
    };
    for (
      const args of [[`--kubeconfig=${cluster.kubeconfigPath}`], ["--kubeconfig", cluster.kubeconfigPath]]
    ) {
      const r = await deploy(args, env);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.output}`);
      assert.match(r.output, /CustomResourceDefinition azureidentities\.aadpodidentity\.k8s\.io/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deploy: an unknown flag or a missing value exits 2 with usage and sends nothing to the cluster", async () => {
  const cluster = await sharedCluster();
  const proxy = new TcpRelay(cluster.server);
  const dir = await Deno.makeTempDir();
  try {
    const viaProxy = await kubeconfigFor(cluster.kubeconfigPath, proxy.url, `${dir}/kubeconfig`);
    // Both the flag and the current context lead to the cluster, through a relay that counts connections.
    const env = { KUBECONFIG: viaProxy, KUBECTL_BIN: Deno.env.get("AAD_TEST_KUBECTL") ?? "kubectl" };
    for (
      const args of [
        [`--kubeconfig=${viaProxy}`, "--force"],
        ["--kubecfg", viaProxy],
        ["--dry-run", "--kubeconfig"],
        ["apply"],
      ]
    ) {
      const r = await deploy(args, env);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.output}`);
      assert.match(r.output, /usage: deno task deploy/);
      assert.equal(proxy.connections, 0, `${args.join(" ")} reached the apiserver`);
    }
    // The proxy does see a deploy that is allowed to run, so the zero above means something.
    const ok = await deploy([`--kubeconfig=${viaProxy}`, "--dry-run"], env);
    assert.equal(ok.code, 0, ok.output);
    assert.ok(proxy.connections > 0);
  } finally {
    await proxy.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deploy: the demo objects (the original README's, and both field casings) are valid on the apiserver", async () => {
  const cluster = await sharedCluster();
  for (const file of ["demo.yaml", "identities.yaml"]) {
    const r = await cluster.kubectl(["apply", "--dry-run=server", "-f", `${root}deploy/demo/${file}`]);
    assert.equal(r.code, 0, `${file}: ${r.stderr}`);
    assert.match(r.stdout, /azureidentitybinding\.aadpodidentity\.k8s\.io\/\S+ created \(server dry run\)/);
  }
});
