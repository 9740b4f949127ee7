import assert from "node:assert/strict";
import { KubeConfigError, loadKubeConnection } from "../../../lib/kube/config.ts";
import { ensureCa } from "../../../scripts/sandbox/pki.ts";

const noEnv = (vars: Record<string, string> = {}) => (name: string) => vars[name];

async function expectConfigError(p: Promise<unknown>, pattern: RegExp): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof KubeConfigError, `expected KubeConfigError, got ${e}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("\n"), "one line");
    return e.message;
  }
  throw new Error("expected a KubeConfigError");
}

Deno.test("config: a missing kubeconfig names the path and where it came from", async () => {
  await expectConfigError(
    loadKubeConnection({ kubeconfigPath: "/nope/kubeconfig", env: noEnv() }),
    /^kubeconfig \/nope\/kubeconfig \(from --kubeconfig\) does not exist$/,
  );
  await expectConfigError(
    loadKubeConnection({ env: noEnv({ KUBECONFIG: "/nope/kc" }) }),
    /kubeconfig \/nope\/kc \(from KUBECONFIG\) does not exist/,
  );
  const home = await Deno.makeTempDir();
  try {
    await expectConfigError(
      loadKubeConnection({ env: noEnv({ HOME: home }) }),
      /no Kubernetes config found: pass --kubeconfig, set KUBECONFIG, or run in a pod/,
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("config: broken kubeconfigs give one clear line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/bad`, "this: [is not: a kubeconfig");
    await expectConfigError(loadKubeConnection({ kubeconfigPath: `${dir}/bad`, env: noEnv() }), /is invalid/);
    await Deno.writeTextFile(
      `${dir}/ctx`,
      "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\ncurrent-context: ''\n",
    );
    await expectConfigError(
      loadKubeConnection({ kubeconfigPath: `${dir}/ctx`, context: "prod", env: noEnv() }),
      /has no context "prod"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config: in-cluster service account, token re-read after rotation", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ca = await ensureCa(`${dir}/pki`, "config test CA");
    await Deno.copyFile(ca.certPath, `${dir}/ca.crt`);
    await Deno.writeTextFile(`${dir}/token`, "first-token\n");
    await Deno.writeTextFile(`${dir}/namespace`, "kube-system");
    const conn = await loadKubeConnection({
      env: noEnv({ KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" }),
      serviceAccountDir: dir,
      tokenFileRefreshMs: 0,
    });
    try {
      assert.equal(conn.server, "https://10.0.0.1:443");
      assert.equal(conn.source, "in-cluster");
      assert.equal(conn.namespace, "kube-system");
      assert.equal(await conn.authHeader(), "Bearer first-token");
      await Deno.writeTextFile(`${dir}/token`, "rotated-token");
      assert.equal(await conn.authHeader(), "Bearer rotated-token");
    } finally {
      conn.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
