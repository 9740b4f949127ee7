// aad-pod-identity as users run it, on a real node: kubelet and containerd, the images built locally, the
// YAML of `deno task deploy`. MIC's Deployment elects a leader, NMI's DaemonSet pod turns Ready with its
// rules in the node's network namespace, an unmodified SDK in a labelled pod gets exactly its identity's
// token through 169.254.169.254 (pod created -> token measured), a pod without a binding gets none; and
// stopping the cluster leaves no process, namespace, cgroup or mount behind.

import assert from "node:assert/strict";
import { realNodeUnavailable } from "../../scripts/sandbox/node/preflight.ts";
import {
  NMI_STARTUP_TAINT,
  nodeName,
  type RealCluster,
  startRealCluster,
} from "../../scripts/sandbox/node/cluster.ts";
import { SDK_NODE_IMAGE } from "../../scripts/images/build.ts";
import { leftovers } from "./leftovers.ts";
import { assertClaimsOf, bindIdentity } from "./identity.ts";
import { kubectlJson, lastJsonLine, runPodToEnd, until } from "./kubectl.ts";
import { restartComponent } from "../../scripts/sandbox/node/node.ts";

const skip = await realNodeUnavailable();
if (skip) console.log(`real-node tests skipped: ${skip}`);

/** Polls with this file's deadline, 60 s. */
const waitFor = <T>(what: string, f: () => Promise<T | undefined>) => until(what, f, 60_000);

interface Pod {
  metadata: { name: string; deletionTimestamp?: string };
  status: { phase?: string; conditions?: { type: string; status: string }[] };
}

function sdkPod(name: string, labels: Record<string, string>, node = nodeName(1)) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", labels },
    spec: {
      restartPolicy: "Never",
      nodeName: node,
      containers: [{ name: "app", image: SDK_NODE_IMAGE, imagePullPolicy: "Never" }],
    },
  };
}

/** Runs the SDK pod to its end and returns the one JSON line it printed. */
async function runSdkPod(c: RealCluster, name: string, labels: Record<string, string>, node = nodeName(1)) {
  const { phase, logs } = await runPodToEnd(c, sdkPod(name, labels, node), 60_000);
  return { phase, out: lastJsonLine(logs) ?? {} };
}

/** Runs a pod bound to identity `web` on node 1 to its end; its token's claims. */
async function bound(c: RealCluster, name: string) {
  const { phase, out } = await runSdkPod(c, name, { aadpodidbinding: "web" });
  assert.equal(phase, "Succeeded", JSON.stringify(out));
  return out;
}

/** MIC's two pods run and one of them holds the lease */
async function micLeads(c: RealCluster): Promise<void> {
  const holder = await waitFor("MIC's leader", async () => {
    const d = await kubectlJson<{ status: { readyReplicas?: number } }>(c, ["get", "deployment", "mic"]);
    if (d.status.readyReplicas !== 2) return undefined;
    const lease = await kubectlJson<{ spec: { holderIdentity?: string } }>(c, [
      "get",
      "lease",
      "aad-pod-identity-mic",
    ]);
    return lease.spec.holderIdentity;
  });
  const pods = await kubectlJson<{ items: Pod[] }>(c, [
    "get",
    "pods",
    "-l",
    "app=mic",
  ]);
  const running = pods.items.filter((p) => !p.metadata.deletionTimestamp && p.status.phase === "Running");
  assert.equal(running.length, 2, JSON.stringify(pods.items.map((p) => [p.metadata, p.status.phase])));
  assert.ok(
    running.some((p) => p.metadata.name === holder),
    `leader ${holder} is one of MIC's pods`,
  );
}

/** NMI's DaemonSet pods are Ready on both nodes, rules in each node's namespace, start-up taints gone */
async function nmiReady(c: RealCluster): Promise<void> {
  await waitFor("NMI Ready", async () => {
    const ds = await kubectlJson<{ status: { numberReady?: number } }>(c, ["get", "daemonset", "nmi"]);
    return ds.status.numberReady === 2 ? true : undefined;
  });
  const nmiLog = await c.kubectl(["logs", "-l", "app=nmi"]);
  for (const [i, n] of c.nodes.entries()) {
    const rules = await c.inNode(n, ["iptables-save", "-t", "nat"]);
    assert.match(
      rules.stdout,
      /-A aad-metadata ! -s 127\.0\.0\.1\/32 -d 169\.254\.169\.254\/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127\.0\.0\.1:2579/,
    );
    assert.match(rules.stdout, /-A PREROUTING -j aad-metadata/);
    // The node registered with NMI's start-up taint; NMI removed it once its rules were in place.
    const node = await kubectlJson<{ spec: { taints?: { key: string }[] } }>(c, [
      "get",
      "node",
      nodeName(i + 1),
    ]);
    assert.ok(
      !(node.spec.taints ?? []).some((t) => t.key === NMI_STARTUP_TAINT),
      JSON.stringify(node.spec),
    );
    assert.ok(
      nmiLog.stdout.includes(`removed taint ${NMI_STARTUP_TAINT} from node ${nodeName(i + 1)}`),
    );
  }
  // Not in the machine's own namespace.
  const host = await new Deno.Command("iptables-save", { args: ["-t", "nat"], stdout: "piped" })
    .output();
  assert.doesNotMatch(new TextDecoder().decode(host.stdout), /aad-metadata/);
}

/** a labelled pod's unmodified SDK gets exactly its identity's token (created -> token timed) */
async function boundPodGetsToken(c: RealCluster): Promise<void> {
  const web = await bindIdentity(c, "web", "MC_realnode");
  const t0 = Date.now();
  const { phase, out } = await runSdkPod(c, "web-app", { aadpodidbinding: "web" });
  assert.equal(phase, "Succeeded", JSON.stringify(out));
  assertClaimsOf(out, web);
  const ms = Number(out.receivedAt) - t0;
  console.log(
    `  pod created -> first token: ${(ms / 1000).toFixed(2)} s (LRO 100 ms, propagation off)`,
  );
}

/** a bound pod on the other node gets its token from that node's NMI */
async function otherNodeServes(c: RealCluster): Promise<void> {
  const { phase, out } = await runSdkPod(c, "web-node-2", { aadpodidbinding: "web" }, nodeName(2));
  assert.equal(phase, "Succeeded", JSON.stringify(out));
  const web = await kubectlJson<{ spec: { clientID: string } }>(c, ["get", "azureidentity", "web"]);
  assert.equal(out.appid, web.spec.clientID);
  // Node 2's NMI asked node 2's IMDS (its metrics count the call).
  const metrics = await c.inNode(c.nodes[1], [
    "curl",
    "-s",
    `http://${c.nodes[1].nodeIp}:8085/metrics`,
  ]);
  assert.match(metrics.stdout, /imds_operations_duration_seconds_count\{[^}]*\} [1-9]/);
}

/** a pod no binding selects gets no token */
async function strangerGetsNothing(c: RealCluster): Promise<void> {
  const { phase, out } = await runSdkPod(c, "stranger", {});
  assert.equal(phase, "Failed");
  assert.equal(out.appid, undefined);
  assert.match(String(out.error), /Identity not found|no AzureIdentityBinding|400/i);
}

/** the leading MIC pod deleted: the other one takes over the lease */
async function leaderDeleted(c: RealCluster): Promise<void> {
  const before = await kubectlJson<{ spec: { holderIdentity: string } }>(c, [
    "get",
    "lease",
    "aad-pod-identity-mic",
  ]);
  const pods = await kubectlJson<{ items: Pod[] }>(c, ["get", "pods", "-l", "app=mic"]);
  // The standby: a running MIC pod that is not going away (a pod of the rollout may still be terminating).
  const other = pods.items
    .filter((p) => !p.metadata.deletionTimestamp && p.status.phase === "Running")
    .map((p) => p.metadata.name)
    .find((n) => n !== before.spec.holderIdentity);
  const t0 = Date.now();
  const del = await c.kubectl(["delete", "pod", before.spec.holderIdentity, "--wait=false"]);
  assert.equal(del.code, 0, del.stderr);
  const holder = await waitFor("a new MIC leader", async () => {
    const l = await kubectlJson<{ spec: { holderIdentity?: string } }>(c, [
      "get",
      "lease",
      "aad-pod-identity-mic",
    ]);
    // A leader that stops cleanly releases the lease (an empty holder) before another takes it.
    const h = l.spec.holderIdentity;
    return h && h !== before.spec.holderIdentity ? h : undefined;
  });
  // Usually the warm standby; a leader that stops cleanly hands the lease back at once, and its replacement
  // (which tries at start, while the standby waits out its retry period) may win the race. Either is a
  // live MIC pod other than the deleted one.
  const now = await kubectlJson<{ items: Pod[] }>(c, ["get", "pods", "-l", "app=mic"]);
  const live = now.items.filter((p) => !p.metadata.deletionTimestamp).map((p) => p.metadata.name);
  assert.ok(other, "a standby was running");
  assert.notEqual(holder, before.spec.holderIdentity);
  assert.ok(live.includes(holder), `${holder} is a live MIC pod (${live.join(", ")})`);
  console.log(
    `  MIC leader pod deleted -> the standby leads after ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
}

/** kubelet restarted: the node stays Ready, NMI keeps running, a new pod gets its token */
async function kubeletRestarted(c: RealCluster): Promise<void> {
  const nmiBefore = await kubectlJson<{ items: Pod[] }>(c, ["get", "pods", "-l", "app=nmi"]);
  restartComponent(c.nodes[0], "kubelet");
  await new Promise((r) => setTimeout(r, 1000));
  const out = await bound(c, "after-kubelet");
  assert.ok(out.appid);
  const nmiAfter = await kubectlJson<{ items: Pod[] }>(c, ["get", "pods", "-l", "app=nmi"]);
  assert.deepEqual(
    nmiAfter.items.map((p) => p.metadata.name),
    nmiBefore.items.map((p) => p.metadata.name),
  );
}

/** containerd restarted: running containers stay, a new pod gets its token */
async function containerdRestarted(c: RealCluster): Promise<void> {
  restartComponent(c.nodes[0], "containerd");
  await new Promise((r) => setTimeout(r, 1000));
  const out = await bound(c, "after-containerd");
  assert.ok(out.appid);
  const nmi = await kubectlJson<{ items: { status: { containerStatuses: { restartCount: number }[] } }[] }>(
    c,
    [
      "get",
      "pods",
      "-l",
      "app=nmi",
    ],
  );
  assert.equal(nmi.items[0].status.containerStatuses[0].restartCount, 0);
}

/** NMI rolling update: a pod is refused or answered by NMI, never reaches IMDS itself */
async function nmiRollingUpdate(c: RealCluster): Promise<void> {
  // Asks every 50 ms, from a pod no binding selects, for an identity attached to the node: NMI refuses
  // (400), the node's IMDS would answer 200 with a token. Prints its tally when done.
  const script = `
  const http = require("node:http");
  const tally = { token: 0, refusedByNmi: 0, connectionFailed: 0 };
  const url = "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01" +
    "&resource=https://management.azure.com/&client_id=${c.preattached.clientId}";
  const ask = () => new Promise((done) => {
    const req = http.get(url, { headers: { Metadata: "true" }, timeout: 2000 }, (res) => {
      res.resume();
      if (res.statusCode === 200) tally.token++;
      else tally.refusedByNmi++;
      done();
    });
    req.on("error", () => { tally.connectionFailed++; done(); });
    req.on("timeout", () => req.destroy());
  });
  (async () => {
    const end = Date.now() + 30000;
    while (Date.now() < end) { await ask(); await new Promise((r) => setTimeout(r, 50)); }
    console.log(JSON.stringify(tally));
  })();`;
  const created = await c.kubectl(
    ["create", "-f", "-"],
    JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "prober", namespace: "default" },
      spec: {
        restartPolicy: "Never",
        nodeName: nodeName(1),
        containers: [{
          name: "app",
          image: SDK_NODE_IMAGE,
          imagePullPolicy: "Never",
          command: ["/usr/local/bin/node", "-e", script],
        }],
      },
    }),
  );
  assert.equal(created.code, 0, created.stderr);
  await waitFor("prober running", async () => {
    const p = await kubectlJson<Pod>(c, ["get", "pod", "prober"]);
    return p.status.phase === "Running" ? true : undefined;
  });
  await new Promise((r) => setTimeout(r, 3000));
  const restart = await c.kubectl(["rollout", "restart", "daemonset/nmi"]);
  assert.equal(restart.code, 0, restart.stderr);
  const status = await c.kubectl(["rollout", "status", "daemonset/nmi", "--timeout=60s"]);
  assert.equal(status.code, 0, status.stderr);
  await waitFor("prober to end", async () => {
    const p = await kubectlJson<Pod>(c, ["get", "pod", "prober"]);
    return p.status.phase === "Succeeded" || p.status.phase === "Failed" ? true : undefined;
  });
  const logs = await c.kubectl(["logs", "prober"]);
  const tally = JSON.parse(logs.stdout.trim().split("\n").pop() ?? "{}");
  console.log(`  during NMI's rolling update: ${JSON.stringify(tally)}`);
  assert.equal(tally.token, 0, "a pod reached the node's IMDS directly");
  assert.ok(tally.refusedByNmi > 0, "NMI answered before and after");
  // The same request from the node itself (not redirected) gets a token: what a leak would look like.
  const direct = await c.inNode(c.nodes[0], [
    ..."curl -s -o /dev/null -w %{http_code} -H".split(" "),
    "Metadata: true",
    "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01" +
    `&resource=https://management.azure.com/&client_id=${c.preattached.clientId}`,
  ]);
  assert.equal(direct.stdout, "200");
}

Deno.test({
  name:
    "real node: deploy as a user would; MIC leads, NMI Ready with its rules, an SDK pod gets its identity",
  ignore: !!skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "aad-realnode-" });
    const logDir = `${dir}-logs`;
    const c = await startRealCluster({ nodes: 2, dir, logDir, log: (l) => console.log(`  ${l}`) });
    let stopped = false;
    try {
      await t.step("MIC's two pods run and one of them holds the lease", () => micLeads(c));
      await t.step(
        "NMI's DaemonSet pods are Ready on both nodes, rules in each node's namespace, start-up taints gone",
        () => nmiReady(c),
      );
      await t.step(
        "a labelled pod's unmodified SDK gets exactly its identity's token (created -> token timed)",
        () => boundPodGetsToken(c),
      );
      await t.step(
        "a bound pod on the other node gets its token from that node's NMI",
        () => otherNodeServes(c),
      );
      await t.step("a pod no binding selects gets no token", () => strangerGetsNothing(c));
      await t.step("the leading MIC pod deleted: the other one takes over the lease", () => leaderDeleted(c));
      await t.step(
        "kubelet restarted: the node stays Ready, NMI keeps running, a new pod gets its token",
        () => kubeletRestarted(c),
      );
      await t.step(
        "containerd restarted: running containers stay, a new pod gets its token",
        () => containerdRestarted(c),
      );
      await t.step(
        "NMI rolling update: a pod is refused or answered by NMI, never reaches IMDS itself",
        () => nmiRollingUpdate(c),
      );

      await t.step("stopping the cluster leaves nothing behind and keeps the logs", async () => {
        const nodes = c.nodes;
        await c.stop();
        stopped = true;
        console.log(`  timings: ${JSON.stringify(c.timings)}`);
        assert.deepEqual(await leftovers(nodes), []);
        const kubelet = await Deno.readTextFile(`${logDir}/${nodeName(1)}/kubelet.log`);
        assert.ok(kubelet.length > 0);
      });
    } finally {
      if (!stopped) await c.stop().catch((e) => console.error(`  cluster stop: ${e}`));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(logDir, { recursive: true }).catch(() => {});
    }
  },
});
