// What a user with a broken setup sees: wrong credentials (401), missing RBAC (403) and a missing CRD (404)
// each give one clear error line naming the problem, and the loop keeps retrying with backoff, not in a
// tight loop.

import assert from "node:assert/strict";
import { parse, stringify } from "yaml";
import { sharedCluster } from "../../support/cluster.ts";
import { loadKubeConnection } from "../../../lib/kube/config.ts";
import { Informer } from "../../../lib/kube/informer.ts";
import { KubeClient, Resources, type ResourceType } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { memoryLogger } from "../../../lib/log.ts";
import { clientFor } from "./helpers.ts";

interface Kubeconfig {
  users: { name: string; user: Record<string, unknown> }[];
}

/** A copy of the admin kubeconfig whose user authenticates with `token` instead of a client certificate. */
async function kubeconfigWithToken(
  adminPath: string,
  dir: string,
  name: string,
  token: string,
): Promise<string> {
  const doc = parse(await Deno.readTextFile(adminPath)) as Kubeconfig;
  for (const u of doc.users) u.user = { token };
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, stringify(doc));
  return path;
}

const WINDOW_MS = 6_000;

/** Runs an informer for the window and returns its attempts and the lines it logged. */
async function runFor(client: KubeClient, resource: ResourceType, namespace?: string) {
  const log = memoryLogger();
  const informer = new Informer<KubeObject>({
    client,
    resource,
    namespace,
    log,
    backoff: { initialMs: 1_000, maxMs: 30_000, jitter: 0.5 },
  });
  const ctrl = new AbortController();
  const run = informer.start(ctrl.signal);
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  ctrl.abort();
  await run;
  const lines = log.records.filter((r) => r.level === "warn" || r.level === "error").map((r) => r.msg);
  return { attempts: informer.stats.errors, lines, synced: informer.stats.lists > 0 };
}

Deno.test("bad input: 401, 403 and a missing CRD each log one clear line and back off", async () => {
  const cluster = await sharedCluster();
  const admin = await clientFor(cluster.kubeconfigPath);
  const dir = await Deno.makeTempDir();
  const clients: KubeClient[] = [admin];
  try {
    const namespace = await cluster.namespace("kube-bad");
    // A real, valid identity with no permissions: a service account token from the TokenRequest API.
    await admin.create(Resources.serviceAccounts, { metadata: { name: "nobody", namespace } });
    const tr = await admin.request<{ status: { token: string } }>(
      "POST",
      `/api/v1/namespaces/${namespace}/serviceaccounts/nobody/token`,
      {
        body: {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenRequest",
          spec: { expirationSeconds: 600 },
        },
      },
    );
    const wrongPath = await kubeconfigWithToken(cluster.kubeconfigPath, dir, "wrong", "not-a-real-token");
    const nobodyPath = await kubeconfigWithToken(cluster.kubeconfigPath, dir, "nobody", tr.status.token);
    const wrong = new KubeClient(await loadKubeConnection({ kubeconfigPath: wrongPath }));
    const nobody = new KubeClient(await loadKubeConnection({ kubeconfigPath: nobodyPath }));
    clients.push(wrong, nobody);
    const missingCrd: ResourceType = {
      group: "widgets.aadpodidentity.test",
      version: "v1",
      plural: "widgets",
      kind: "Widget",
      namespaced: true,
    };

    const [unauthorized, forbidden, notFound] = await Promise.all([
      runFor(wrong, Resources.pods, namespace),
      runFor(nobody, Resources.azureIdentities, namespace),
      runFor(admin, missingCrd, namespace),
    ]);

    const expectations = [
      [
        unauthorized,
        /^list pods \(namespace=kube-bad-[^)]+\): 401 Unauthorized: the apiserver rejected the credentials from .*\/wrong/,
      ],
      [
        forbidden,
        /^list azureidentities\.aadpodidentity\.k8s\.io \(namespace=.*\): 403 .*system:serviceaccount:kube-bad-.*:nobody.* cannot list resource "azureidentities".*\(missing RBAC permission\?\)$/,
      ],
      [
        notFound,
        /^list widgets\.widgets\.aadpodidentity\.test \(namespace=.*\): 404 the server could not find the requested resource \(is the CRD installed\?\)$/,
      ],
    ] as const;
    for (const [result, pattern] of expectations) {
      assert.equal(result.synced, false);
      assert.equal(result.lines.length, 1, `one line, got:\n${result.lines.join("\n")}`);
      assert.match(result.lines[0], pattern);
      // Backoff 1 s, 2 s, 4 s (+ up to 50 %): 3 or 4 attempts in 6 s; a tight loop would make hundreds.
      assert.ok(
        result.attempts >= 2 && result.attempts <= 4,
        `attempts in ${WINDOW_MS} ms: ${result.attempts}`,
      );
    }
  } finally {
    for (const c of clients) c.conn.close();
    await Deno.remove(dir, { recursive: true });
  }
});
