// The CVE-2020-8558 guard with the real NMI process in a lab node: NMI sets route_localnet itself, so without
// its guard a pod could reach NMI's loopback-only probe and metrics port. Here the pod still gets its token
// through the DNAT, and its packets to the node's 127.0.0.1 are dropped. NMI runs its iptables commands
// through the image's wrapper on a node whose kubelet uses the legacy backend (the image's own default is
// nft), so its rules must land in legacy.

import assert from "node:assert/strict";
import { Lab, type LabPod, netnsUnavailable } from "../../scripts/sandbox/netns.ts";
import { msiSpec, spawnNmi, startHarness, waitUntil } from "../integration/nmi/harness.ts";
import { fetchIn, routeLoopbackToNode, wrapperPath } from "./lab_support.ts";

const skip = await netnsUnavailable();
if (skip) console.log(`security lab tests (real NMI) skipped: ${skip}`);

/** A token request from a pod with `Metadata: true`: the body, a line break, then the HTTP status. */
const tokenRequest = (pod: LabPod) =>
  fetchIn(
    pod.ns,
    "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net",
    5,
    ["-H", "Metadata: true", "-w", "\n%{http_code}"],
  );

Deno.test({
  name:
    "security lab: the real NMI (via the image's wrapper, legacy node): token via the DNAT, loopback ports closed",
  ignore: !!skip,
  async fn() {
    const h = await startHarness({ attached: ["web"], startNmi: false });
    const lab = await Lab.create();
    const probePort = 20000 + Math.floor(Math.random() * 20000);
    let nmi: Awaited<ReturnType<typeof spawnNmi>> | undefined;
    const wrapper = await wrapperPath();
    try {
      await lab.nodeExec(["iptables-legacy", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"]); // kubelet's mark
      await lab.mirror(
        Number(/server:\s*\S+:(\d+)/.exec(await Deno.readTextFile(h.cluster.kubeconfigPath))![1]),
      );
      await lab.mirror(h.imds.port, { as: { ip: "169.254.169.254", port: 80 } });
      const web = await h.createIdentity("web", msiSpec(h.ids.web));
      const binding = await h.createBinding("web", "web", `${h.ns}-web`);
      const pod = await lab.addPod("web-1");
      await h.createPod("web-1", { aadpodidbinding: `${h.ns}-web` }, { ip: pod.ip });
      await h.assign({ name: "web-1" }, web, binding, "Assigned");
      const redirect = ["--metadata-ip=169.254.169.254", "--metadata-port=80", "--nmi-port=2579"];
      nmi = await spawnNmi(
        h.nmiArgs([...redirect, `--http-probe-port=${probePort}`, "--manage-iptables=true"]),
        { NODE_EXTRA_CA_CERTS: h.emu.caCertPath, PATH: wrapper.path },
        ["ip", "netns", "exec", lab.nodeNs],
      );
      const healthz = `http://127.0.0.1:${probePort}/healthz`;
      const readyz = `http://127.0.0.1:${probePort}/readyz`;
      const ready = async () =>
        await fetchIn(lab.nodeNs, readyz, 2, ["-o", "/dev/null", "-w", "%{http_code}"]) === "200";
      await waitUntil("NMI ready in the node namespace", ready, 30_000, 100);
      assert.equal((await lab.nodeExec(["sysctl", "-n", "net.ipv4.conf.all.route_localnet"])).trim(), "1");
      assert.match(await lab.nodeExec(["iptables-legacy-save"]), /-A INPUT -j aad-metadata-localnet/);
      assert.doesNotMatch(await lab.nodeExec(["iptables-nft-save"]), /aad-metadata/);

      await routeLoopbackToNode(lab, pod);
      const answer = await tokenRequest(pod);
      assert.match(answer, /\n200$/, answer);
      const token = JSON.parse(answer.slice(0, answer.lastIndexOf("\n"))).access_token;
      assert.equal((await h.emu.verifyToken(token)).appid, h.ids.web.clientId);
      assert.notEqual(await fetchIn(lab.nodeNs, healthz), "curl exit 7", "the node reaches NMI's probe port");
      assert.equal(
        await fetchIn(pod.ns, healthz),
        "curl exit 28",
        "the pod's packets to 127.0.0.1 are dropped",
      );
      assert.equal(
        await fetchIn(pod.ns, "http://127.0.0.1:2579/"),
        "curl exit 28",
        "NMI only through the DNAT",
      );

      // Without the guard (removed by hand) the same pod reads NMI's probe port; NMI's next sync restores it.
      await lab.nodeExec(["iptables-legacy", "-D", "INPUT", "-j", "aad-metadata-localnet"]);
      assert.notEqual(await fetchIn(pod.ns, healthz), "curl exit 28", "unguarded, the probe port leaks");
    } finally {
      await wrapper.remove();
      await nmi?.stop();
      await lab.close();
      await h.close();
    }
  },
});
