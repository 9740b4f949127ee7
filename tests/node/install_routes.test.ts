// The install routes a user takes, each on a real one-node cluster (kubelet, containerd, the local images):
// `kubectl apply --server-side -f deploy/aad-pod-identity.yaml` with only the image names replaced, and the
// federated variant through `deno task deploy --federated --custom-cloud-file ...`, where the emulated Azure
// AD trusts the apiserver's service-account issuer, and MIC reaches ARM through the custom cloud the flag
// names. In each, MIC leads, NMI is Ready with its rules, a bound pod's unmodified SDK gets exactly its
// identity's token and a pod no binding selects gets none.

import assert from "node:assert/strict";
import { realNodeUnavailable } from "../../scripts/sandbox/node/preflight.ts";
import { nodeName, type RealCluster, startRealCluster } from "../../scripts/sandbox/node/cluster.ts";
import type { InstallRoute } from "../../scripts/sandbox/node/install_routes.ts";
import { LOCAL_REPOSITORY, SDK_NODE_IMAGE } from "../../scripts/images/build.ts";
import { leftovers } from "./leftovers.ts";
import { assertClaimsOf, bindIdentity } from "./identity.ts";
import { kubectlApply, kubectlJson, lastJsonLine, runPodToEnd, until } from "./kubectl.ts";

const skip = await realNodeUnavailable();
if (skip) console.log(`real-node install-route tests skipped: ${skip}`);

const EXCHANGE = "api://AzureADTokenExchange";

/** Polls with this file's deadline, 90 s. */
const waitFor = <T>(what: string, f: () => Promise<T | undefined>) => until(what, f, 90_000, 250);

type Claims = { appid?: string; xms_mirid?: string; error?: string };

/** The SDK image in a pod on node 1, run to its end: its phase and the claims line it printed. */
async function sdkRun(
  c: RealCluster,
  name: string,
  o: { labels?: Record<string, string>; serviceAccount?: string } = {},
): Promise<{ phase: string; claims: Claims }> {
  const { phase, logs } = await runPodToEnd(c, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", labels: o.labels ?? {} },
    spec: {
      restartPolicy: "Never",
      nodeName: nodeName(1),
      ...(o.serviceAccount ? { serviceAccountName: o.serviceAccount } : {}),
      containers: [{ name: "app", image: SDK_NODE_IMAGE, imagePullPolicy: "Never" }],
    },
  }, 90_000);
  return { phase, claims: (lastJsonLine(logs) ?? {}) as Claims };
}

/** MIC's two pods run and one holds the lease; NMI's pod is Ready with its rules in the node's namespace. */
async function running(c: RealCluster): Promise<void> {
  const leader = await waitFor("MIC's leader", async () => {
    const d = await kubectlJson<{ status: { readyReplicas?: number } }>(c, ["get", "deployment", "mic"]);
    if (d.status.readyReplicas !== 2) return undefined;
    return (await kubectlJson<{ spec: { holderIdentity?: string } }>(c, [
      "get",
      "lease",
      "aad-pod-identity-mic",
    ])).spec
      .holderIdentity || undefined;
  });
  const mic = await kubectlJson<{ items: { metadata: { name: string; deletionTimestamp?: string } }[] }>(c, [
    "get",
    "pods",
    "-l",
    "app=mic",
  ]);
  assert.ok(mic.items.some((p) => p.metadata.name === leader && !p.metadata.deletionTimestamp), leader);
  await waitFor("NMI Ready", async () => {
    const ds = await kubectlJson<{ status: { numberReady?: number } }>(c, ["get", "daemonset", "nmi"]);
    return ds.status.numberReady === 1 ? true : undefined;
  });
  const rules = await c.inNode(c.nodes[0], ["iptables-save", "-t", "nat"]);
  assert.match(
    rules.stdout,
    /-A aad-metadata .*-d 169\.254\.169\.254\/32 .*--to-destination 127\.0\.0\.1:2579/,
  );
}

/** The workloads run the local images, and those are the only difference from the checked-in YAML. */
async function imagesOverridden(c: RealCluster): Promise<void> {
  const d = await kubectlJson<{ spec: { template: { spec: { containers: { image: string }[] } } } }>(c, [
    "get",
    "deployment",
    "mic",
  ]);
  assert.match(d.spec.template.spec.containers[0].image, new RegExp(`^${LOCAL_REPOSITORY}/mic:`));
  const ds = await kubectlJson<
    { spec: { template: { spec: { containers: { image: string; args: string[] }[] } } } }
  >(
    c,
    ["get", "daemonset", "nmi"],
  );
  assert.match(ds.spec.template.spec.containers[0].image, new RegExp(`^${LOCAL_REPOSITORY}/nmi:`));
  // No start-up taint named: the checked-in YAML's NMI arguments.
  assert.ok(!ds.spec.template.spec.containers[0].args.some((a) => a.startsWith("--remove-node-taint")));
}

/** A user-assigned identity `web` bound to `aadpodidbinding: web`: the bound pod gets exactly its token. */
async function boundPodGetsItsToken(c: RealCluster): Promise<void> {
  const web = await bindIdentity(c, "web", "MC_realnode");
  const t0 = Date.now();
  const { phase, claims } = await sdkRun(c, "web-app", { labels: { aadpodidbinding: "web" } });
  assert.equal(phase, "Succeeded", JSON.stringify(claims));
  assertClaimsOf(claims, web);
  console.log(`  pod created -> token ended: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

async function strangerGetsNothing(c: RealCluster, name: string): Promise<void> {
  const { phase, claims } = await sdkRun(c, name);
  assert.equal(phase, "Failed");
  assert.equal(claims.appid, undefined);
  assert.match(String(claims.error), /Identity not found|no AzureIdentityBinding|400/i);
}

/**
 * A federated identity `fed` (nothing attached to the scale set) trusting the apiserver's issuer for
 * service account `workload`: a pod bound to it and running as `workload` gets fed's token through NMI's
 * exchange; bound but running as another service account, the credential does not match and it gets none.
 */
async function federatedPodGetsItsToken(c: RealCluster): Promise<void> {
  // A custom cloud's Azure AD and tenant, named on the identity (NMI's defaults are the public cloud's).
  const fed = await bindIdentity(c, "fed", "MC_realnode", {
    annotations: { "aadpodidentity.k8s.io/federated": "true" },
    spec: { tenantID: c.emu.tenantId, adEndpoint: c.emu.authorityHost },
  });
  c.emu.putFederatedCredential(fed.id, {
    name: "workload",
    issuer: c.cp.server,
    subject: "system:serviceaccount:default:workload",
    audiences: [EXCHANGE],
  });
  await kubectlApply(c, [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "workload", namespace: "default" } },
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "other", namespace: "default" } },
  ]);
  const t0 = Date.now();
  const ok = await sdkRun(c, "fed-app", { labels: { aadpodidbinding: "fed" }, serviceAccount: "workload" });
  assert.equal(ok.phase, "Succeeded", JSON.stringify(ok.claims));
  assertClaimsOf(ok.claims, fed);
  console.log(`  federated pod created -> token ended: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const attached = JSON.stringify(c.emu.getIdentities(c.vmss.id)).toLowerCase();
  assert.ok(!attached.includes(fed.id.toLowerCase()), `fed is not on the scale set: ${attached}`);
  const wrongSa = await sdkRun(c, "fed-other", {
    labels: { aadpodidbinding: "fed" },
    serviceAccount: "other",
  });
  assert.equal(wrongSa.phase, "Failed", JSON.stringify(wrongSa.claims));
  assert.equal(wrongSa.claims.appid, undefined);
}

async function withCluster(
  o: { route: InstallRoute; federated: boolean },
  steps: (c: RealCluster) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "aad-routes-" });
  const logDir = `${dir}-logs`;
  const t0 = Date.now();
  const c = await startRealCluster({ nodes: 1, dir, logDir, ...o, log: (l) => console.log(`  ${l}`) });
  let stopped = false;
  try {
    await steps(c);
    const nodes = c.nodes;
    await c.stop();
    stopped = true;
    assert.deepEqual(await leftovers(nodes), []);
    console.log(`  whole case: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    if (!stopped) await c.stop().catch((e) => console.error(`  cluster stop: ${e}`));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.remove(logDir, { recursive: true }).catch(() => {});
  }
}

Deno.test({
  name:
    "install route kubectl apply: deploy/aad-pod-identity.yaml with only the images replaced runs and serves",
  ignore: !!skip,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) =>
    withCluster({ route: "kubectl-apply", federated: false }, async (c) => {
      await t.step("MIC leads, NMI Ready with its rules", () => running(c));
      await t.step("the workloads run the local images, the YAML otherwise as checked in", () =>
        imagesOverridden(c));
      await t.step("a bound SDK pod gets exactly its identity's token", () =>
        boundPodGetsItsToken(c));
      await t.step("a pod no binding selects gets none", () => strangerGetsNothing(c, "stranger"));
    }),
});

Deno.test({
  name: "install route deploy --federated: a bound pod gets its identity's token through NMI's exchange",
  ignore: !!skip,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) =>
    withCluster({ route: "deploy", federated: true }, async (c) => {
      await t.step("MIC leads, NMI Ready with its rules", () => running(c));
      // MIC's ARM calls reach the custom cloud named by --custom-cloud-file.
      await t.step("a bound SDK pod gets exactly its (attached) identity's token", () =>
        boundPodGetsItsToken(c));
      await t.step(
        "a pod bound to a federated identity gets its token as its service account; another account none",
        () =>
          federatedPodGetsItsToken(c),
      );
      await t.step("a pod no binding selects gets none", () => strangerGetsNothing(c, "stranger"));
    }),
});
