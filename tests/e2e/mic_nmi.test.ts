// The whole system on a namespaced node: MIC (a real process) assigns the identity to the node's scale set in
// the Azure emulator when a bound pod appears; NMI (a real process in the node namespace) installs the
// iptables redirection and serves the pod; an unmodified SDK in the pod network namespace asks the
// hard-coded 169.254.169.254 and gets the pod's identity. Also measured: pod creation -> first token.

import assert from "node:assert/strict";
import { Resources } from "../../lib/kube/rest.ts";
import { Lab, netnsUnavailable } from "../../scripts/sandbox/netns.ts";
import { micEnv, waitUntil } from "../integration/mic/harness.ts";
import { type NmiProcess, spawnNmi } from "../integration/nmi/harness.ts";
import { sdkClientArgv, sdkClientPaths, trustEnv } from "../../scripts/sandbox/sdk_clients.ts";

const skip = await netnsUnavailable();
if (skip) console.log(`e2e MIC + NMI tests skipped: ${skip}`);

Deno.test({
  name:
    "e2e: MIC assigns, NMI serves through iptables; an unmodified SDK gets its pod's identity, a stranger nothing",
  ignore: !!skip,
  async fn() {
    const env = await micEnv("e2e");
    const lab = await Lab.create();
    let nmi: NmiProcess | undefined;
    try {
      const { emu, client, ns, cluster } = env;
      const pool = env.vmss("pool");
      const web = env.uami("web");
      const nodeName = `e2e-node-${lab.id}`;
      await env.node(nodeName, pool, 0);
      const imds = await emu.startImds({ vmssResourceId: pool.id, instance: 0 });
      await lab.mirror(Number(new URL(cluster.server).port));
      await lab.mirror(imds.port, { as: { ip: "169.254.169.254", port: 80 } });

      const probePort = 20000 + Math.floor(Math.random() * 20000);
      nmi = await spawnNmi(
        [
          `--node=${nodeName}`,
          `--kubeconfig=${cluster.kubeconfigPath}`,
          "--metadata-ip=169.254.169.254",
          "--metadata-port=80",
          `--http-probe-port=${probePort}`,
          "--prometheus-port=-1",
        ],
        { NODE_EXTRA_CA_CERTS: emu.caCertPath },
        ["ip", "netns", "exec", lab.nodeNs],
      );
      const mic = await env.startMic("mic-0");

      await env.identity("web", { type: 0, resourceID: web.id, clientID: web.clientId });
      await env.binding("web", "web", `${ns}-web`);
      const podNs = await lab.addPod("web-1");
      const stranger = await lab.addPod("stranger");

      // The pod "starts": its object appears with the IP of its network namespace, and the app asks at once.
      const t0 = performance.now();
      await env.pod("web-1", nodeName, `${ns}-web`);
      await client.patch(Resources.pods, "web-1", "merge", {
        status: { phase: "Running", podIP: podNs.ip, podIPs: [{ ip: podNs.ip }] },
      }, { namespace: ns, subresource: "status" });
      const paths = await sdkClientPaths();
      const out = await lab.exec(
        podNs.ns,
        sdkClientArgv(paths, "node-managed", "https://vault.azure.net/.default"),
        {
          env: trustEnv(emu.caCertPath),
        },
      );
      const firstTokenMs = performance.now() - t0;
      const { token } = JSON.parse(out.trim().split("\n").at(-1)!);
      assert.equal((await emu.verifyToken(token)).appid, web.clientId);
      const aai = env.aaisOfPods().find((a) => a.spec?.pod === "web-1");
      assert.equal(aai?.status?.status, "Assigned");
      assert.deepEqual(env.armIds(pool), [web.id.toLowerCase()]);
      assert.equal(env.armWrites(), 1, "one identity PATCH on the scale set");
      console.log(
        `  pod created -> first token through MIC, NMI and iptables: ${Math.round(firstTokenMs)} ms`,
      );

      // A pod that no binding selects, on the same node, whose scale set now holds "web": nothing for it.
      await client.create(Resources.pods, {
        metadata: { name: "stranger", namespace: ns },
        spec: { nodeName, containers: [{ name: "app", image: "registry.invalid/app:1" }] },
      });
      await client.patch(Resources.pods, "stranger", "merge", {
        status: { phase: "Running", podIP: stranger.ip, podIPs: [{ ip: stranger.ip }] },
      }, { namespace: ns, subresource: "status" });
      const stolen = await new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          stranger.ns,
          ...sdkClientArgv(paths, "python-managed", "https://vault.azure.net/.default"),
        ],
        env: { ...trustEnv(emu.caCertPath), AZURE_CLIENT_ID: web.clientId },
        stdout: "piped",
        stderr: "null",
      }).output();
      assert.equal(stolen.success, false, "a pod without a binding must not get the node's identity");

      // The pod goes away: MIC detaches the identity from the scale set (nothing else uses it).
      await env.deletePod("web-1");
      await waitUntil("identity detached", () => env.armIds(pool).length === 0, 15_000);
      assert.ok(mic.lines.length > 0);
    } finally {
      await nmi?.stop();
      await lab.close();
      await env.close();
    }
  },
});
