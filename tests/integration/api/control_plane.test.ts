// The sandbox control plane is a real one: RBAC decides, service-account tokens are issued and accepted,
// and stopping it leaves no process and no data behind.

import assert from "node:assert/strict";
import { startControlPlane } from "../../../scripts/sandbox/control_plane.ts";
import { sharedCluster } from "../../support/cluster.ts";

Deno.test("control plane: service-account tokens authenticate and RBAC denies until a RoleBinding grants", async () => {
  const cluster = await sharedCluster();
  const ns = await cluster.namespace("cp-rbac");
  assert.equal((await cluster.kubectl(["create", "serviceaccount", "nmi", "-n", ns])).code, 0);
  const token = await cluster.kubectl(["create", "token", "nmi", "-n", ns, "--duration=10m"]);
  assert.equal(token.code, 0, token.stderr);
  // A kubeconfig holding only the token: the shared one's admin client certificate would win otherwise.
  const view = async (path: string) =>
    (await cluster.kubectl(["config", "view", "--raw", "-o", `jsonpath={.clusters[0].cluster.${path}}`]))
      .stdout;
  const tokenKubeconfig = async (bearer: string) => {
    const file = await Deno.makeTempFile({ suffix: ".kubeconfig" });
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{
          name: "c",
          cluster: {
            server: await view("server"),
            "certificate-authority-data": await view("certificate-authority-data"),
          },
        }],
        users: [{ name: "u", user: { token: bearer } }],
        contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
        "current-context": "c",
      }),
    );
    return file;
  };
  const saConfig = await tokenKubeconfig(token.stdout.trim());
  const forgedConfig = await tokenKubeconfig("not-a-token");
  const asSa = [`--kubeconfig=${saConfig}`];

  const denied = await cluster.kubectl([...asSa, "get", "pods", "-n", ns]);
  assert.notEqual(denied.code, 0);
  assert.match(denied.stderr, new RegExp(`system:serviceaccount:${ns}:nmi" cannot list resource "pods"`));

  assert.equal(
    (await cluster.kubectl(["create", "role", "read-pods", "--verb=list", "--resource=pods", "-n", ns])).code,
    0,
  );
  assert.equal(
    (await cluster.kubectl([
      "create",
      "rolebinding",
      "nmi",
      "--role=read-pods",
      `--serviceaccount=${ns}:nmi`,
      "-n",
      ns,
    ]))
      .code,
    0,
  );
  const allowed = await cluster.kubectl([...asSa, "get", "pods", "-n", ns]);
  assert.equal(allowed.code, 0, allowed.stderr);
  // Still only what the role grants.
  const nodes = await cluster.kubectl([...asSa, "get", "nodes"]);
  assert.match(nodes.stderr, /cannot list resource "nodes"/);

  const forged = await cluster.kubectl([`--kubeconfig=${forgedConfig}`, "get", "pods", "-n", ns]);
  assert.match(forged.stderr, /Unauthorized|provide credentials/);
  await Deno.remove(saConfig);
  await Deno.remove(forgedConfig);
});

Deno.test("control plane: stop() ends etcd and kube-apiserver and removes their data", async () => {
  const cp = await startControlPlane();
  let stopped = false;
  try {
    const state = cp.detach();
    assert.equal(state.pids.length, 2);
    assert.ok((await Deno.stat(`${cp.dir}/etcd`)).isDirectory);
    const alive = (pid: number) => {
      try {
        Deno.kill(pid, "SIGCONT");
        return true;
      } catch {
        return false;
      }
    };
    assert.ok(state.pids.every(alive));
    await cp.stop();
    stopped = true;
    assert.deepEqual(state.pids.filter(alive), []);
    await assert.rejects(Deno.stat(cp.dir), Deno.errors.NotFound);
  } finally {
    if (!stopped) await cp.stop();
  }
});
