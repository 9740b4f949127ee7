// Kubeconfig loading against the real apiserver: a KUBECONFIG list merged like kubectl (missing files
// skipped, first definition wins, relative paths per file), and an exec credential plugin (a small script
// that counts its runs) whose token is kept until its expirationTimestamp and fetched again after a 401.

import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { sharedCluster } from "../../support/cluster.ts";
import { loadKubeConnection } from "../../../lib/kube/config.ts";
import { KubeClient } from "../../../lib/kube/rest.ts";

interface AdminKubeconfig {
  clusters: { cluster: { server: string; "certificate-authority-data": string } }[];
  users: { user: { "client-certificate-data": string; "client-key-data": string } }[];
}

const b64decode = (s: string) => new TextDecoder().decode(Uint8Array.from(atob(s), (c) => c.charCodeAt(0)));

async function whoami(client: KubeClient): Promise<string> {
  const review = await client.request<{ status?: { userInfo?: { username?: string } } }>(
    "POST",
    "/apis/authentication.k8s.io/v1/selfsubjectreviews",
    { body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" } },
  );
  return review.status?.userInfo?.username ?? "";
}

const yaml = (o: unknown) => JSON.stringify(o, null, 2); // JSON is YAML

Deno.test("kubeconfig: several KUBECONFIG files merge like kubectl, relative paths per file", async () => {
  const cluster = await sharedCluster();
  const admin = parseYaml(await Deno.readTextFile(cluster.kubeconfigPath)) as AdminKubeconfig;
  const root = await Deno.makeTempDir({ prefix: "kubeconfig-merge-" });
  try {
    for (const d of ["users", "clusters", "decoys"]) await Deno.mkdir(`${root}/${d}`);
    await Deno.writeTextFile(
      `${root}/users/admin.crt`,
      b64decode(admin.users[0].user["client-certificate-data"]),
    );
    await Deno.writeTextFile(`${root}/users/admin.key`, b64decode(admin.users[0].user["client-key-data"]));
    await Deno.writeTextFile(
      `${root}/clusters/ca.crt`,
      b64decode(admin.clusters[0].cluster["certificate-authority-data"]),
    );
    // Users and the context; the first current-context set wins.
    await Deno.writeTextFile(
      `${root}/users/config`,
      yaml({
        apiVersion: "v1",
        kind: "Config",
        users: [{ name: "admin", user: { "client-certificate": "admin.crt", "client-key": "admin.key" } }],
        contexts: [{ name: "sb", context: { cluster: "sandbox", user: "admin", namespace: "merged-ns" } }],
        "current-context": "sb",
      }),
    );
    await Deno.writeTextFile(
      `${root}/clusters/config`,
      yaml({
        clusters: [{
          name: "sandbox",
          cluster: { server: cluster.server, "certificate-authority": "ca.crt" },
        }],
        "current-context": "decoy",
      }),
    );
    // Later definitions of the same names lose.
    await Deno.writeTextFile(
      `${root}/decoys/config`,
      yaml({
        clusters: [{
          name: "sandbox",
          cluster: { server: "https://127.0.0.1:1", "certificate-authority": "none" },
        }],
        users: [{ name: "admin", user: { token: "wrong" } }],
        contexts: [{ name: "decoy", context: { cluster: "sandbox", user: "admin" } }],
      }),
    );
    const list = [
      `${root}/missing`,
      `${root}/users/config`,
      `${root}/clusters/config`,
      `${root}/decoys/config`,
    ];
    const conn = await loadKubeConnection({ env: (n) => n === "KUBECONFIG" ? list.join(":") : undefined });
    try {
      assert.equal(conn.server, cluster.server);
      assert.equal(conn.namespace, "merged-ns");
      assert.equal(conn.source, list.slice(1).join(":"));
      assert.equal(await whoami(new KubeClient(conn)), "sandbox-admin");
    } finally {
      conn.close();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

const PLUGIN = `#!/bin/sh
# Counts its runs; run n prints line n of ./tokens (the last line once they run out) and ./expiry.
d=$(dirname "$0")
n=$(( $(cat "$d/runs" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$d/runs"
printf '%s' "$KUBERNETES_EXEC_INFO" > "$d/exec-info"
t=$(sed -n "\${n}p" "$d/tokens")
[ -n "$t" ] || t=$(tail -n 1 "$d/tokens")
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"%s"}}\\n' "$t" "$(cat "$d/expiry")"
`;

Deno.test("kubeconfig: exec plugin token kept until expirationTimestamp, fetched again after a 401", async () => {
  const cluster = await sharedCluster();
  const admin = parseYaml(await Deno.readTextFile(cluster.kubeconfigPath)) as AdminKubeconfig;
  const namespace = await cluster.namespace("kube-exec");
  const sa = await cluster.kubectl(["-n", namespace, "create", "serviceaccount", "exec-user"]);
  assert.equal(sa.code, 0, sa.stderr);
  const tok = await cluster.kubectl(["-n", namespace, "create", "token", "exec-user"]);
  assert.equal(tok.code, 0, tok.stderr);
  const dir = await Deno.makeTempDir({ prefix: "kubeconfig-exec-" });
  const runs = async () => Number((await Deno.readTextFile(`${dir}/runs`)).trim());
  const expireIn = (ms: number) =>
    Deno.writeTextFile(`${dir}/expiry`, new Date(Date.now() + ms).toISOString());
  try {
    await Deno.writeTextFile(`${dir}/plugin.sh`, PLUGIN, { mode: 0o755 });
    // Run 1 hands out a token the apiserver refuses (401); every later run a good one.
    await Deno.writeTextFile(`${dir}/tokens`, `not-a-valid-token\n${tok.stdout.trim()}\n`);
    await Deno.writeTextFile(
      `${dir}/ca.crt`,
      b64decode(admin.clusters[0].cluster["certificate-authority-data"]),
    );
    await Deno.writeTextFile(
      `${dir}/config`,
      yaml({
        clusters: [{ name: "c", cluster: { server: cluster.server, "certificate-authority": "ca.crt" } }],
        users: [{
          name: "u",
          user: { exec: { apiVersion: "client.authentication.k8s.io/v1", command: "./plugin.sh", args: [] } },
        }],
        contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
        "current-context": "x",
      }),
    );
    await expireIn(2_000);
    const conn = await loadKubeConnection({ kubeconfigPath: `${dir}/config` });
    const client = new KubeClient(conn);
    try {
      const me = `system:serviceaccount:${namespace}:exec-user`;
      assert.equal(await whoami(client), me, "the 401 re-ran the plugin and retried");
      assert.equal(await runs(), 2);
      assert.equal(await whoami(client), me);
      assert.equal(await runs(), 2, "an unexpired token is reused");
      const info = JSON.parse(await Deno.readTextFile(`${dir}/exec-info`));
      assert.equal(info.apiVersion, "client.authentication.k8s.io/v1");
      await expireIn(3_600_000);
      await new Promise((r) => setTimeout(r, 2_200));
      assert.equal(await whoami(client), me);
      assert.equal(await runs(), 3, "an expired token runs the plugin again");
      assert.equal(await whoami(client), me);
      assert.equal(await runs(), 3);
    } finally {
      conn.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
