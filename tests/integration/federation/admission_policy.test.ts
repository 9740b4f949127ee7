// The ValidatingAdmissionPolicy of federated mode on the real apiserver: NMI's service account, though RBAC
// lets it create service-account tokens, gets only tokens for api://AzureADTokenExchange, bound to a Pod,
// for at most an hour; everyone else is untouched.

import assert from "node:assert/strict";
import { stringify } from "yaml";
import { loadKubeConnection } from "../../../lib/kube/config.ts";
import { KubeClient } from "../../../lib/kube/rest.ts";
import { requestServiceAccountToken } from "../../../nmi/federated.ts";
import { decodeJwt } from "../../../scripts/sandbox/azure/jwt.ts";
import {
  federationPolicyObjects,
  NMI_TOKEN_REQUEST_RULE,
} from "../../../scripts/manifests/federation_policy.ts";
import { sharedCluster } from "../../support/cluster.ts";
import { clusterCaPem } from "../../support/federation.ts";
import { waitUntil } from "../nmi/harness.ts";

Deno.test("admission policy: NMI's service account gets only exchange-audience, pod-bound, <= 1 h tokens", async () => {
  const cluster = await sharedCluster();
  const ns = await cluster.namespace("vap");
  const name = `${ns}-nmi-tokens`;
  const client = Deno.createHttpClient({ caCerts: [await clusterCaPem(cluster)] });
  const apply = async (docs: Record<string, unknown>[]) => {
    const r = await cluster.kubectl(["apply", "-f", "-"], docs.map((d) => `---\n${stringify(d)}`).join(""));
    assert.equal(r.code, 0, r.stderr);
  };
  try {
    await apply([
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "nmi", namespace: ns } },
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "workload", namespace: ns } },
      {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "app", namespace: ns },
        spec: {
          serviceAccountName: "workload",
          containers: [{ name: "app", image: "registry.invalid/app:1" }],
        },
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRole",
        metadata: { name },
        rules: [NMI_TOKEN_REQUEST_RULE],
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
        subjects: [{ kind: "ServiceAccount", name: "nmi", namespace: ns }],
      },
      ...federationPolicyObjects({ nmiNamespace: ns, nmiServiceAccount: "nmi", name }),
    ]);
    const pod = JSON.parse((await cluster.kubectl(["-n", ns, "get", "pod", "app", "-o", "json"])).stdout);
    const nmiToken = (await cluster.kubectl(["-n", ns, "create", "token", "nmi"])).stdout.trim();
    assert.ok(nmiToken);
    const bound = { apiVersion: "v1", kind: "Pod", name: "app", uid: pod.metadata.uid };
    const ask = async (spec: Record<string, unknown>, as = nmiToken) => {
      const res = await fetch(`${cluster.server}/api/v1/namespaces/${ns}/serviceaccounts/workload/token`, {
        method: "POST",
        client,
        headers: { authorization: `Bearer ${as}`, "content-type": "application/json" },
        body: JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec }),
      });
      const body = await res.json();
      return { status: res.status, message: String(body.message ?? "") };
    };
    const exchange = ["api://AzureADTokenExchange"];

    // The policy compiles asynchronously after it is created.
    await waitUntil(
      "policy in force",
      async () => (await ask({ audiences: ["other"], boundObjectRef: bound })).status === 403,
      30_000,
      200,
    );

    const right = await ask({ audiences: exchange, boundObjectRef: bound, expirationSeconds: 600 });
    assert.equal(right.status, 201, right.message);
    const hour = await ask({ audiences: exchange, boundObjectRef: bound, expirationSeconds: 3600 });
    assert.equal(hour.status, 201, hour.message);

    const refusals: [string, Record<string, unknown>, RegExp][] = [
      ["another audience", {
        audiences: ["https://kubernetes.default.svc"],
        boundObjectRef: bound,
        expirationSeconds: 600,
      }, /only for the audience/],
      ["a second audience", {
        audiences: [...exchange, "other"],
        boundObjectRef: bound,
        expirationSeconds: 600,
      }, /only for the audience/],
      ["unbound", { audiences: exchange, expirationSeconds: 600 }, /bound to a Pod/],
      [
        "longer than an hour",
        { audiences: exchange, boundObjectRef: bound, expirationSeconds: 7200 },
        /at most 3600 seconds/,
      ],
    ];
    for (const [what, spec, message] of refusals) {
      const r = await ask(spec);
      assert.equal(r.status, 403, `${what}: ${r.message}`);
      assert.match(r.message, message, what);
      assert.match(r.message, new RegExp(name), what);
    }

    // NMI's own request (nmi/federated.ts), made as NMI's service account, passes the policy.
    const dir = await Deno.makeTempDir({ prefix: "vap-nmi-" });
    try {
      const kubeconfig = `${dir}/kubeconfig`;
      await Deno.writeTextFile(
        kubeconfig,
        stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [{
            name: "c",
            cluster: {
              server: cluster.server,
              "certificate-authority-data": btoa(await clusterCaPem(cluster)),
            },
          }],
          users: [{ name: "nmi", user: { token: nmiToken } }],
          contexts: [{ name: "c", context: { cluster: "c", user: "nmi" } }],
          "current-context": "c",
        }),
      );
      const nmi = new KubeClient(await loadKubeConnection({ kubeconfigPath: kubeconfig }));
      try {
        const minted = await requestServiceAccountToken(nmi, {
          name: "app",
          namespace: ns,
          uid: pod.metadata.uid,
          serviceAccount: "workload",
          nodeName: "",
        });
        assert.equal(decodeJwt(minted.token).payload.sub, `system:serviceaccount:${ns}:workload`);
        assert.ok(minted.expiresOn - Date.now() / 1000 <= 600 + 5);
      } finally {
        nmi.conn.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }

    // Other callers are not this policy's business: the admin may still ask for any audience.
    const admin = await cluster.kubectl([
      "-n",
      ns,
      "create",
      "token",
      "workload",
      "--audience=https://elsewhere",
    ]);
    assert.equal(admin.code, 0, admin.stderr);
  } finally {
    client.close();
    for (
      const kind of [
        "validatingadmissionpolicybinding",
        "validatingadmissionpolicy",
        "clusterrolebinding",
        "clusterrole",
      ]
    ) {
      await cluster.kubectl(["delete", kind, name, "--ignore-not-found"]);
    }
  }
});
