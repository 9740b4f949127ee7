// `deno task deploy` against a real apiserver, through the user's own kubeconfig setting.

import assert from "node:assert/strict";
import { sharedCluster } from "../../support/cluster.ts";

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
    assert.match(r.output, /azureidentities\.aadpodidentity\.k8s\.io serverside-applied/);
    assert.match(r.output, /condition met/);
  }
  const dry = await deploy(["--dry-run"], env);
  assert.equal(dry.code, 0, dry.output);
  assert.match(dry.output, /serverside-applied \(server dry run\)/);
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
    assert.match(r.output, /deploy: kubectl apply .* failed/);
    assert.match(r.output, /connection refused/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
