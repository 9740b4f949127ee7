import assert from "node:assert/strict";
import { mergeKubeconfigs, resolveRelativePaths } from "../../../lib/kube/kubeconfig_merge.ts";
import { parseExecCredential } from "../../../lib/kube/exec_credential.ts";

Deno.test("kubeconfig merge: the first file to define a name wins; current-context from the first that sets it", () => {
  const merged = mergeKubeconfigs([
    {
      clusters: [{ name: "c", cluster: { server: "https://first" } }],
      contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
      "current-context": "",
    },
    {
      clusters: [{ name: "c", cluster: { server: "https://second" } }, {
        name: "d",
        cluster: { server: "https://d" },
      }],
      users: [{ name: "u", user: { token: "t2" } }],
      "current-context": "x",
    },
    { users: [{ name: "u", user: { token: "t3" } }], "current-context": "y" },
  ]);
  assert.deepEqual(merged.clusters, [
    { name: "c", cluster: { server: "https://first" } },
    { name: "d", cluster: { server: "https://d" } },
  ]);
  assert.deepEqual(merged.users, [{ name: "u", user: { token: "t2" } }]);
  assert.equal(merged["current-context"], "x");
});

Deno.test("kubeconfig merge: relative paths resolve against the file's folder; exec commands only with a slash", () => {
  const doc = resolveRelativePaths({
    clusters: [{ name: "c", cluster: { "certificate-authority": "pki/ca.crt", server: "https://s" } }],
    users: [
      { name: "a", user: { "client-certificate": "a.crt", "client-key": "/abs/a.key", tokenFile: "../tok" } },
      {
        name: "b",
        user: { exec: { command: "./bin/plugin", apiVersion: "client.authentication.k8s.io/v1" } },
      },
      { name: "c", user: { exec: { command: "kubelogin", apiVersion: "client.authentication.k8s.io/v1" } } },
    ],
  }, "/home/me/.kube/config");
  const users = doc.users as { user: Record<string, unknown> }[];
  assert.equal(
    (doc.clusters as { cluster: Record<string, unknown> }[])[0].cluster["certificate-authority"],
    "/home/me/.kube/pki/ca.crt",
  );
  assert.equal(users[0].user["client-certificate"], "/home/me/.kube/a.crt");
  assert.equal(users[0].user["client-key"], "/abs/a.key");
  assert.equal(users[0].user.tokenFile, "/home/me/tok");
  assert.equal((users[1].user.exec as { command: string }).command, "/home/me/.kube/bin/plugin");
  assert.equal((users[2].user.exec as { command: string }).command, "kubelogin");
});

Deno.test("exec credential: v1 and v1beta1 output, expiry, and clear errors that never echo the token", () => {
  const v1 = "client.authentication.k8s.io/v1";
  const out = (o: unknown) => JSON.stringify(o);
  assert.deepEqual(
    parseExecCredential(
      out({
        apiVersion: v1,
        kind: "ExecCredential",
        status: { token: "s3cret", expirationTimestamp: "2030-01-01T00:00:00Z" },
      }),
      v1,
    ),
    { token: "s3cret", expiresAt: Date.parse("2030-01-01T00:00:00Z") },
  );
  const beta = "client.authentication.k8s.io/v1beta1";
  assert.equal(
    parseExecCredential(out({ apiVersion: beta, kind: "ExecCredential", status: { token: "t" } }), beta)
      .expiresAt,
    undefined,
  );
  const bad = [
    ["not json", /not JSON/],
    [out({ apiVersion: beta, kind: "ExecCredential", status: { token: "s3cret" } }), /answered .*v1beta1/],
    [out({ apiVersion: v1, kind: "ExecCredential", status: {} }), /no status.token/],
    [
      out({
        apiVersion: v1,
        kind: "ExecCredential",
        status: { token: "s3cret", expirationTimestamp: "soon" },
      }),
      /bad status.expirationTimestamp/,
    ],
  ] as const;
  for (const [text, pattern] of bad) {
    assert.throws(
      () => parseExecCredential(text, v1),
      (e: Error) => pattern.test(e.message) && !e.message.includes("s3cret"),
    );
  }
});

Deno.test("kubeconfig merge: relative paths resolve as node:path's join(dirname(file), path)", async () => {
  const { dirname, join } = await import("node:path");
  const files = [
    "/a/b/kubeconfig",
    "kubeconfig",
    "./kubeconfig",
    "/kubeconfig",
    "a/b/",
    "/a//b//c",
    "../x/k",
  ];
  const paths = ["ca.crt", "../ca.crt", "./x/../y", "../../../../z", "a//b", ".", "/abs/ca.crt"];
  for (const file of files) {
    for (const path of paths) {
      const doc = resolveRelativePaths({
        clusters: [{ name: "c", cluster: { "certificate-authority": path } }],
      }, file);
      const got = (doc.clusters as { cluster: Record<string, string> }[])[0].cluster["certificate-authority"];
      assert.equal(got, path.startsWith("/") ? path : join(dirname(file), path), `${file} + ${path}`);
    }
  }
});
