// Federated mode end to end on a namespaced node: MIC (a real process) marks the federated identity
// Assigned without touching ARM; NMI (a real process in the node namespace, behind its iptables rules)
// exchanges the pod's service-account token at the emulated Azure AD, which verifies it against the real
// apiserver's issuer discovery. Unmodified IMDS clients (the original demo's Go adal, Python azure-identity,
// @azure/identity) get the identity's token through 169.254.169.254 while the scale set has no identity at
// all; the node itself (a hostNetwork caller) gets nothing; a wrong credential gives a clear error and a
// Warning event, and fixing it heals without restarting anything.

import assert from "node:assert/strict";
import { Resources } from "../../lib/kube/rest.ts";
import type { KubeObject } from "../../lib/kube/types.ts";
import { Lab, type LabPod, netnsUnavailable } from "../../scripts/sandbox/netns.ts";
import { sharedCluster } from "../support/cluster.ts";
import { clusterCaPem } from "../support/federation.ts";
import { micEnv, waitUntil } from "../integration/mic/harness.ts";
import { type NmiProcess, spawnNmi } from "../integration/nmi/harness.ts";
import { adalDemoArgv, sdkClientArgv, sdkClientPaths, trustEnv } from "../../scripts/sandbox/sdk_clients.ts";

const skip = await netnsUnavailable();
if (skip) console.log(`e2e federated tests skipped: ${skip}`);

const EXCHANGE = "api://AzureADTokenExchange";
const VAULT = "https://vault.azure.net";

/** curl from a namespace to the metadata address: status and body (never throws on HTTP errors). */
async function curlIn(ns: string, query: string): Promise<{ status: number; body: string }> {
  const out = await new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      ns,
      "curl",
      "-s",
      "-m",
      "20",
      "-H",
      "Metadata: true",
      "-w",
      "\n%{http_code}",
      `http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&${query}`,
    ],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const i = text.lastIndexOf("\n");
  return { status: Number(text.slice(i + 1)), body: text.slice(0, i) };
}

Deno.test({
  name:
    "e2e federated: adal, azure-identity and @azure/identity get the identity's token with nothing on the VM",
  ignore: !!skip,
  async fn(t) {
    const env = await micEnv("e2e-fed", { federationCaCerts: [await clusterCaPem(await sharedCluster())] });
    const lab = await Lab.create();
    let nmi: NmiProcess | undefined;
    try {
      const { emu, client, ns, cluster } = env;
      const pool = env.vmss("pool");
      const fed = env.uami("fed");
      const nodeName = `e2e-fed-${lab.id}`;
      await env.node(nodeName, pool, 0);
      const imds = await emu.startImds({ vmssResourceId: pool.id, instance: 0 });
      await lab.mirror(Number(new URL(cluster.server).port));
      await lab.mirror(Number(new URL(emu.authorityHost).port));
      await lab.mirror(imds.port, { as: { ip: "169.254.169.254", port: 80 } });

      nmi = await spawnNmi(
        [
          `--node=${nodeName}`,
          `--kubeconfig=${cluster.kubeconfigPath}`,
          "--metadata-ip=169.254.169.254",
          "--metadata-port=80",
          `--http-probe-port=${20000 + Math.floor(Math.random() * 20000)}`,
          "--prometheus-port=-1",
          `--ad-endpoint=${emu.authorityHost}`,
          `--tenant-id=${emu.tenantId}`,
        ],
        { NODE_EXTRA_CA_CERTS: emu.caCertPath },
        ["ip", "netns", "exec", lab.nodeNs],
      );
      await env.startMic("mic-0");

      await client.create(
        Resources.serviceAccounts,
        { metadata: { name: "workload", namespace: ns } } as KubeObject,
      );
      const subject = `system:serviceaccount:${ns}:workload`;
      const credential = (p: { issuer?: string; subject?: string; audiences?: string[] }) =>
        emu.putFederatedCredential(fed.id, {
          name: "workload",
          issuer: p.issuer ?? cluster.server,
          subject: p.subject ?? subject,
          audiences: p.audiences ?? [EXCHANGE],
        });
      credential({});
      await env.identity("fed", { type: 0, resourceID: fed.id, clientID: fed.clientId }, {
        annotations: { "aadpodidentity.k8s.io/federated": "true" },
      });
      await env.binding("fed", "fed", `${ns}-fed`);
      const pod: LabPod = await lab.addPod("app");
      await env.pod("app", nodeName, `${ns}-fed`, ns, { serviceAccountName: "workload" });
      await client.patch(Resources.pods, "app", "merge", {
        status: { phase: "Running", podIP: pod.ip, podIPs: [{ ip: pod.ip }] },
      }, { namespace: ns, subresource: "status" });
      await waitUntil(
        "app Assigned",
        () => env.aaisOfPods().find((a) => a.spec?.pod === "app")?.status?.status === "Assigned",
        20_000,
      );
      const paths = await sdkClientPaths();
      const trust = trustEnv(emu.caCertPath);

      await t.step("Python azure-identity and @azure/identity (ManagedIdentityCredential)", async () => {
        for (const c of ["python-managed", "node-managed"] as const) {
          const out = await lab.exec(pod.ns, sdkClientArgv(paths, c, `${VAULT}/.default`), {
            env: { ...trust, AZURE_CLIENT_ID: fed.clientId },
          });
          const { token } = JSON.parse(out.trim().split("\n").at(-1)!);
          const claims = await emu.verifyToken(token, { audience: VAULT });
          assert.equal(claims.appid, fed.clientId, c);
          assert.equal(claims.oid, fed.principalId, c);
          assert.equal(claims.xms_mirid, fed.id, c);
        }
      });

      await t.step("the original demo's Go adal client: token from IMDS, then ARM with it", async () => {
        await lab.mirror(Number(new URL(emu.armEndpoint).port), { ns: pod.ns });
        const argv = adalDemoArgv(paths, {
          endpoint: emu.armEndpoint,
          subscriptionId: emu.subscriptionId,
          resourceGroup: env.rg,
        }, fed.clientId);
        const demo = JSON.parse(await lab.exec(pod.ns, argv, { env: trust }));
        const claims = await emu.verifyToken(demo.token);
        assert.equal(claims.appid, fed.clientId);
        assert.equal(claims.xms_mirid, fed.id);
        assert.ok(Array.isArray(demo.vms));
      });

      await t.step("nothing on the VM: the scale set has no identity, MIC made no ARM call", () => {
        assert.deepEqual(env.armIds(pool), []);
        assert.equal(emu.getIdentities(pool.id).type, "None");
        assert.equal(emu.requests.count({ service: "arm", caller: env.sp.clientId }), 0);
        assert.equal(emu.requests.count({ route: "imds.token" }), 0, "NMI never asked the node's IMDS");
      });

      await t.step("a hostNetwork caller asking the node's IMDS for the identity gets nothing", async () => {
        const direct = await curlIn(lab.nodeNs, `resource=${VAULT}&client_id=${fed.clientId}`);
        assert.notEqual(direct.status, 200, direct.body);
        assert.ok(!direct.body.includes("access_token"), direct.body);
        assert.match(direct.body, /Identity not found/);
      });

      const wrongs: [string, Parameters<typeof credential>[0], number, RegExp][] = [
        [
          "subject",
          { subject: `system:serviceaccount:${ns}:Workload` },
          700213,
          new RegExp(`subject must be '${subject}'`),
        ],
        ["issuer", { issuer: `${cluster.server}/other` }, 700211, new RegExp(`issuer '${cluster.server}'`)],
        [
          "audience",
          { audiences: ["api://other"] },
          700212,
          /audience must be 'api:\/\/AzureADTokenExchange'/,
        ],
      ];
      for (const [what, wrong, code, hint] of wrongs) {
        await t.step(
          `wrong ${what}: clear error, Warning event with AADSTS${code}; fixing heals`,
          async () => {
            credential(wrong);
            const resource = `${VAULT}/wrong-${what}`;
            emu.registerResource(resource);
            const bad = await curlIn(pod.ns, `resource=${resource}&client_id=${fed.clientId}`);
            assert.equal(bad.status, 403, bad.body);
            assert.match(bad.body, new RegExp(`AADSTS${code}`));
            assert.match(bad.body, hint);
            await waitUntil("Warning event on the binding", async () => {
              const events = await client.list<KubeObject & { reason: string; message: string }>(
                Resources.events,
                {
                  namespace: ns,
                  fieldSelector: "involvedObject.name=fed,involvedObject.kind=AzureIdentityBinding",
                },
              );
              return events.items.some((e) =>
                e.reason === "FederatedTokenExchangeFailed" && e.message.includes(`AADSTS${code}`)
              );
            });
            credential({});
            const healed = await curlIn(pod.ns, `resource=${resource}&client_id=${fed.clientId}`);
            assert.equal(healed.status, 200, healed.body);
          },
        );
      }
    } finally {
      await nmi?.stop();
      await lab.close();
      await env.close();
    }
  },
});
