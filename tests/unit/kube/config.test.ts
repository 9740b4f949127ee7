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

/** A kubeconfig with a token user; `token` is the YAML written after `token:`. */
const tokenKubeconfig = (token: string) =>
  [
    "apiVersion: v1",
    "clusters:",
    "- cluster:",
    "    server: https://127.0.0.1:6443",
    "  name: a",
    "contexts:",
    "- context: {cluster: a, user: a, namespace: ns}",
    "  name: a",
    "current-context: a",
    "users:",
    "- name: a",
    "  user:",
    `    token: ${token}`,
    "",
  ].join("\n");

/** Loads a kubeconfig through lib/kube/config.ts in a deno that may not load npm packages (so not yaml). */
async function loadWithoutNpm(path: string): Promise<{ ok: boolean; out: string }> {
  const root = new URL("../../../", import.meta.url).pathname;
  const code = [
    'const { loadKubeConnection } = await import("./lib/kube/config.ts");',
    "const c = await loadKubeConnection({ kubeconfigPath: Deno.args[0], env: () => undefined });",
    "console.log(c.server, c.namespace, await c.authHeader());",
    "c.close();",
  ].join("\n");
  const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-npm", code, path],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { ok: success, out: text.decode(stdout) + text.decode(stderr) };
}

Deno.test("config: a usual kubeconfig loads without the yaml package; others still load with it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/usual`, tokenKubeconfig("t0k3n # a comment"));
    const usual = await loadWithoutNpm(`${dir}/usual`);
    assert.ok(usual.ok, usual.out);
    assert.equal(usual.out.trim(), "https://127.0.0.1:6443 ns Bearer t0k3n");
    // The check itself: a block scalar needs yaml, which a deno without npm cannot import.
    await Deno.writeTextFile(`${dir}/block`, tokenKubeconfig("|-\n      t0k3n"));
    const block = await loadWithoutNpm(`${dir}/block`);
    assert.ok(!block.ok && block.out.includes("--no-npm"), block.out);
    // With npm, yaml reads it as before.
    const conn = await loadKubeConnection({ kubeconfigPath: `${dir}/block`, env: noEnv() });
    try {
      assert.equal(await conn.authHeader(), "Bearer t0k3n");
    } finally {
      conn.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config: yaml still reports what the simple parser leaves to it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/dup`, tokenKubeconfig("a") + "current-context: b\n");
    await expectConfigError(
      loadKubeConnection({ kubeconfigPath: `${dir}/dup`, env: noEnv() }),
      /^kubeconfig .*\/dup \(from --kubeconfig\) is invalid: Map keys must be unique/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
