// End to end on a namespaced node: unmodified SDK applications in pod network namespaces ask the hard-coded
// 169.254.169.254 for a token; the node's iptables (installed by NMI, the real `deno run` process inside the
// node namespace) send it to NMI, which identifies the pod by its source address on the real apiserver and
// answers with the pod's identity from the node's emulated IMDS. Tokens are checked by their claims.

import assert from "node:assert/strict";
import { Lab, type LabPod, netnsUnavailable } from "../../scripts/sandbox/netns.ts";
import {
  adalDemoArgv,
  type SdkClient,
  sdkClientArgv,
  sdkClientPaths,
  trustEnv,
} from "../../scripts/sandbox/sdk_clients.ts";
import { NMI_ENTRY, NMI_PERMISSIONS } from "../../nmi/permissions.ts";
import {
  type Harness,
  msiSpec,
  type NmiProcess,
  spawnNmi,
  startHarness,
  waitUntil,
} from "../integration/nmi/harness.ts";
import { apiserverPort, curlToken, labNmiFlags, randomPort, waitNmiReady } from "../support/lab_nmi.ts";

const skip = await netnsUnavailable();
if (skip) console.log(`e2e pod identity tests skipped: ${skip}`);

const VAULT = "https://vault.azure.net/.default";

interface Node {
  h: Harness;
  lab: Lab;
  nmi?: NmiProcess;
  probePort: number;
  startNmi(): Promise<NmiProcess>;
  /** A pod namespace and its Pod object. Selectors should be unique per test: bindings match cluster-wide. */
  pod(name: string, labels: Record<string, string>): Promise<LabPod>;
  close(): Promise<void>;
}

/** A lab node wired to the harness: apiserver and IMDS mirrored in, NMI started in the node namespace. */
async function startNode(attached: string[]): Promise<Node> {
  const h = await startHarness({ attached, startNmi: false });
  const lab = await Lab.create();
  try {
    await lab.mirror(await apiserverPort(h));
    await lab.mirror(h.imds.port, { as: { ip: "169.254.169.254", port: 80 } });
  } catch (e) {
    await lab.close();
    await h.close();
    throw e;
  }
  const probePort = randomPort();
  const node: Node = {
    h,
    lab,
    probePort,
    async startNmi() {
      node.nmi = await spawnNmi(
        h.nmiArgs(labNmiFlags(probePort)),
        { NODE_EXTRA_CA_CERTS: h.emu.caCertPath },
        ["ip", "netns", "exec", lab.nodeNs],
      );
      await waitNmiReady(lab, probePort, node.nmi);
      return node.nmi;
    },
    async pod(name, labels) {
      const p = await lab.addPod(name);
      await h.createPod(name, labels, { ip: p.ip });
      return p;
    },
    async close() {
      await node.nmi?.stop();
      await lab.close();
      await h.close();
    },
  };
  return node;
}

/** Runs a client in a pod namespace; returns its token's client id, or the failure. */
async function tokenFrom(
  node: Node,
  pod: LabPod,
  client: SdkClient,
  env: Record<string, string> = {},
): Promise<{ appid?: string; error?: string }> {
  const paths = await sdkClientPaths();
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", pod.ns, ...sdkClientArgv(paths, client, VAULT)],
    env: { ...trustEnv(node.h.emu.caCertPath), ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) return { error: new TextDecoder().decode(out.stderr).trim().split("\n").at(-1) };
  const { token } = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  return { appid: (await node.h.emu.verifyToken(token)).appid };
}

/** The original demo's adal client in a pod: its token and the VMs it listed in ARM with it. */
async function adalDemoIn(
  node: Node,
  pod: LabPod,
  clientId?: string,
): Promise<{ token: string; vms: string[] }> {
  const { h } = node;
  const argv = adalDemoArgv(await sdkClientPaths(), {
    endpoint: h.emu.armEndpoint,
    subscriptionId: h.emu.subscriptionId,
    resourceGroup: "rg",
  }, clientId);
  return JSON.parse(await node.lab.exec(pod.ns, argv, { env: trustEnv(h.emu.caCertPath) }));
}

/** curl from a pod: status code and body, or the curl exit code when nothing answered. */
function curlFrom(pod: LabPod, headers: string[] = [], clientId?: string) {
  return curlToken(pod, { headers, clientId, timeoutSeconds: 5 });
}

/** Identity, binding and pod "web-1" for `h.ids.web`, the assignment MIC would have made, then NMI. */
async function webPodWithNmi(node: Node): Promise<LabPod> {
  const { h } = node;
  const web = await h.createIdentity("web", msiSpec(h.ids.web));
  const b = await h.createBinding("web", "web", `${h.ns}-web`);
  const pod = await node.pod("web-1", { aadpodidbinding: `${h.ns}-web` });
  await h.assign({ name: "web-1" }, web, b, "Assigned");
  await node.startNmi();
  return pod;
}

Deno.test({
  name: "e2e: unmodified JS, Python and Go SDKs in pods get exactly their pod's identity through NMI",
  ignore: !!skip,
  async fn() {
    const node = await startNode(["web", "worker"]);
    try {
      const { h } = node;
      const web = await h.createIdentity("web", msiSpec(h.ids.web));
      const worker = await h.createIdentity("worker", msiSpec(h.ids.worker));
      const bWeb = await h.createBinding("web", "web", `${h.ns}-web`);
      const bWorker = await h.createBinding("worker", "worker", `${h.ns}-worker`);
      const podWeb = await node.pod("web-1", { aadpodidbinding: `${h.ns}-web` });
      const podWorker = await node.pod("worker-1", { aadpodidbinding: `${h.ns}-worker` });
      const podLoose = await node.pod("loose-1", {});
      await h.assign({ name: "web-1" }, web, bWeb, "Assigned");
      await h.assign({ name: "worker-1" }, worker, bWorker, "Assigned");
      await node.startNmi();

      for (
        const client of [
          "node-managed",
          "node-default",
          "python-managed",
          "go-managed",
          "go-default",
        ] as const
      ) {
        assert.deepEqual(await tokenFrom(node, podWeb, client), { appid: h.ids.web.clientId }, client);
      }
      assert.deepEqual(await tokenFrom(node, podWorker, "python-managed"), { appid: h.ids.worker.clientId });
      // Asking by another pod's identity is refused, although that identity is on this node's scale set.
      const stolen = await tokenFrom(node, podWeb, "go-managed", { AZURE_CLIENT_ID: h.ids.worker.clientId });
      assert.equal(stolen.appid, undefined, "web-1 must not get worker's identity");
      // A pod no binding selects gets nothing, fast (400), from every client.
      for (const client of ["node-managed", "python-managed", "go-managed"] as const) {
        assert.equal((await tokenFrom(node, podLoose, client)).appid, undefined, client);
      }

      // The original demo's client: adal from IMDS, then an ARM call with the token.
      const armPort = Number(new URL(h.emu.armEndpoint).port);
      await node.lab.mirror(armPort, { ns: podWeb.ns });
      const demo = await adalDemoIn(node, podWeb, h.ids.web.clientId);
      assert.equal((await h.emu.verifyToken(demo.token)).appid, h.ids.web.clientId);
      assert.deepEqual(demo.vms, []);
      // NewServicePrincipalTokenFromMSI without a client id: NMI answers with the pod's own identity.
      const anyId = await adalDemoIn(node, podWeb);
      assert.equal((await h.emu.verifyToken(anyId.token)).appid, h.ids.web.clientId);

      // curl with and without the Metadata header.
      const bare = await curlFrom(podWeb);
      assert.equal(bare.status, 400);
      assert.equal(JSON.parse(bare.body).error, "invalid_request");
      const withHeader = await curlFrom(podWeb, ["Metadata: true"]);
      assert.equal(withHeader.status, 200);
      assert.equal(JSON.parse(withHeader.body).client_id, h.ids.web.clientId);

      // A hostNetwork caller (the node itself) is not intercepted, as upstream: it reaches IMDS directly.
      const fromNode = await node.lab.exec(node.lab.nodeNs, [
        "curl",
        "-s",
        "-H",
        "Metadata: true",
        `http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net&client_id=${h.ids.worker.clientId}`,
      ]);
      assert.equal(JSON.parse(fromNode).client_id, h.ids.worker.clientId);
    } finally {
      await node.close();
    }
  },
});

Deno.test({
  name: "e2e: NMI stopped -> pods are refused, never reach IMDS (fail closed); restarted -> tokens again",
  ignore: !!skip,
  async fn() {
    const node = await startNode(["web"]);
    try {
      const { h } = node;
      const pod = await webPodWithNmi(node);
      const first = await curlFrom(pod, ["Metadata: true"]);
      assert.equal(first.status, 200, `curl exit ${first.exit}; NMI logs:\n${node.nmi!.logs.join("\n")}`);

      await node.nmi!.stop(); // SIGTERM: the original removed its rules here
      const during = await curlFrom(pod, ["Metadata: true"]);
      assert.equal(during.status, undefined, `answered while NMI was down: ${during.body}`);
      assert.equal(during.exit, 7, "connection refused");
      const rules = await node.lab.nodeExec(["iptables-save", "-t", "nat"]);
      assert.match(rules, /-A PREROUTING -j aad-metadata/);

      await node.startNmi();
      assert.deepEqual(await tokenFrom(node, pod, "node-managed"), { appid: h.ids.web.clientId });
    } finally {
      await node.close();
    }
  },
});

Deno.test({
  name:
    "e2e: rules edited by hand are repaired within one sync interval; NMI without NET_ADMIN refuses to start",
  ignore: !!skip,
  async fn() {
    const node = await startNode(["web", "other"]);
    try {
      const { h } = node;
      const pod = await webPodWithNmi(node);
      // "other" is on the node's scale set but not the pod's: NMI refuses it (403) where IMDS itself would
      // serve it (200), so the answer shows who is on the path.
      const who = async () => (await curlFrom(pod, ["Metadata: true"], h.ids.other.clientId)).status;
      assert.equal(await who(), 403);
      await node.lab.nodeExec(["iptables", "-t", "nat", "-F", "aad-metadata"]);
      await node.lab.nodeExec([
        "iptables",
        "-t",
        "nat",
        "-I",
        "PREROUTING",
        "1",
        "-d",
        "169.254.169.254",
        "-j",
        "ACCEPT",
      ]);
      assert.equal(await who(), 200, "with the rules broken the pod reaches IMDS directly");
      const t0 = performance.now();
      await waitUntil("rules repaired", async () => await who() === 403, 3_000, 50);
      const repairedMs = performance.now() - t0;
      assert.ok(repairedMs < 1_500, `repaired after ${Math.round(repairedMs)} ms with a 1 s sync interval`);
      // The warning reaches us through NMI's stderr pipe, which can lag the repaired path a little.
      await waitUntil(
        "the repair logged",
        () => node.nmi!.logs.some((l) => /iptables: repaired/.test(l)),
        2_000,
        20,
      );
      await node.nmi!.stop();

      // The same NMI without CAP_NET_ADMIN / CAP_NET_RAW: a clear error naming what is missing, and exit 1.
      const unprivileged = await new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          node.lab.nodeNs,
          "setpriv",
          "--inh-caps=-net_admin,-net_raw",
          "--bounding-set=-net_admin,-net_raw",
          Deno.execPath(),
          "run",
          ...NMI_PERMISSIONS,
          NMI_ENTRY,
          ...h.nmiArgs(["--manage-iptables=true", "--metadata-ip=169.254.169.254", "--metadata-port=80"]),
        ],
        cwd: new URL("../../", import.meta.url).pathname,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(unprivileged.stderr) +
        new TextDecoder().decode(unprivileged.stdout);
      assert.equal(unprivileged.code, 1, text);
      assert.match(text, /NMI failed to start.*needs CAP_NET_ADMIN/, text);
    } finally {
      await node.close();
    }
  },
});
