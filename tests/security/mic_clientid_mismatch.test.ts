// Attack (issue 19, item 4): a team that may write AzureIdentity objects only in its own namespace names
// its own identity's resource id with ANOTHER identity's client id. ARM checks only the resource id, so the
// original assigned it, and NMI then asked the node's IMDS for the other client id and handed the pod the
// other identity's token. Here: MIC, NMI and the emulator as real processes on the real apiserver; the
// attacker's pod gets nothing, the victim's pod keeps its token.

import assert from "node:assert/strict";
import { Resources } from "../../lib/kube/rest.ts";
import { clientIdAttack, micEnv, waitForLog, waitUntil } from "../integration/mic/harness.ts";
import { MD, nextPodIp, request, spawnNmi, tokenPath } from "../integration/nmi/harness.ts";

Deno.test("security: an AzureIdentity with another identity's clientID gets no token through MIC and NMI", async () => {
  const env = await micEnv("sec-clientid");
  const nodeName = `${env.ns}-n0`;
  const pool = env.vmss("pool");
  const imds = await env.emu.startImds({ vmssResourceId: pool.id, instance: 0 });
  const nmi = await spawnNmi([
    `--node=${nodeName}`,
    `--kubeconfig=${env.cluster.kubeconfigPath}`,
    "--nmi-port=0",
    "--http-probe-port=0",
    "--prometheus-port=-1",
    "--probe-listen-address=127.0.0.1",
    "--metadata-ip=127.0.0.1",
    `--metadata-port=${imds.port}`,
    "--manage-iptables=false",
    "--identity-wait-deadline=3s",
  ], { NODE_EXTRA_CA_CERTS: env.emu.caCertPath });
  try {
    await env.node(nodeName, pool, 0);
    const { victim, mine } = await clientIdAttack(env);
    const mic = await env.startMic("mic-a");
    await waitForLog(mic, /leading:/);

    const runningPod = async (name: string, selector: string) => {
      const ip = nextPodIp();
      await env.pod(name, nodeName, selector);
      await env.client.patch(Resources.pods, name, "merge", {
        status: { phase: "Running", podIP: ip, podIPs: [{ ip }] },
      }, { namespace: env.ns, subresource: "status" });
      return ip;
    };
    const victimIp = await runningPod("v0", `victim-${env.ns}`);
    const thiefIp = await runningPod("t0", `thief-${env.ns}`);
    await waitUntil(
      "victim Assigned",
      () => env.aai(`default/v0-${env.ns}-victim`)?.status?.status === "Assigned",
    );
    // MIC decided about the attacker's object: Assigned (the original) or refused.
    await waitUntil(
      "MIC's decision on the attacker's identity",
      () =>
        env.aai(`default/t0-${env.ns}-thief`)?.status?.status === "Assigned" ||
        mic.lines.some((l) => /does not belong to spec\.resourceID/.test(l)),
    );
    // Both ids are on the scale set now (ARM accepted the team's own resource id)...
    assert.deepEqual(env.armIds(pool), [mine.id, victim.id].map((i) => i.toLowerCase()).sort());

    // ...yet the attacker's pod gets no token: neither by default nor naming the victim's client id.
    const asks: Record<string, string>[] = [{}, { client_id: victim.clientId }];
    for (const extra of asks) {
      const stolen = await request(nmi.port, thiefIp, tokenPath("https://vault.azure.net", extra), {
        headers: MD,
      });
      assert.notEqual(stolen.status, 200, "the attacker got a token");
      assert.equal(stolen.json?.access_token, undefined);
    }
    assert.equal(env.aai(`default/t0-${env.ns}-thief`)?.status?.status, "Created");
    const own = await request(nmi.port, victimIp, tokenPath(), { headers: MD });
    assert.equal(own.status, 200, own.text);
    assert.equal((await env.emu.verifyToken(own.json.access_token)).appid, victim.clientId);
  } finally {
    await nmi.stop();
    await env.close();
  }
});
