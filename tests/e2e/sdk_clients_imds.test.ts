// The unmodified SDK applications the end-to-end suite runs, each inside a pod namespace, asking the
// hard-coded 169.254.169.254 for a token: here with no NMI in between, they reach the node's emulated IMDS
// directly (what a pod sees on a node without pod identity). This pins down the clients, the lab and the
// emulator's IMDS fidelity for Go, Python and Node, before NMI stands in the path.

import assert from "node:assert/strict";
import { startAzureEmulator } from "../../scripts/sandbox/azure/emulator.ts";
import { Lab, netnsUnavailable } from "../../scripts/sandbox/netns.ts";
import {
  adalDemoArgv,
  type SdkClient,
  sdkClientArgv,
  sdkClientPaths,
  trustEnv,
} from "../../scripts/sandbox/sdk_clients.ts";

const skip = await netnsUnavailable();
if (skip) console.log(`e2e SDK client tests skipped: ${skip}`);

Deno.test({
  name: "e2e clients: unmodified JS, Python and Go SDKs get the node identity they name from 169.254.169.254",
  ignore: !!skip,
  async fn() {
    const emu = await startAzureEmulator({ lroDurationMs: 0 });
    const lab = await Lab.create();
    try {
      const web = emu.addUserAssignedIdentity({ resourceGroup: "identities", name: "web" });
      const other = emu.addUserAssignedIdentity({ resourceGroup: "identities", name: "other" });
      const vmss = emu.addVmss({
        resourceGroup: "mc-rg",
        name: "pool",
        userAssignedIdentities: [web.id, other.id],
      });
      emu.addVm({ resourceGroup: "mc-rg", name: "standalone-vm" });
      const imds = await emu.startImds({ vmssResourceId: vmss.id, instance: 0 });
      await lab.mirror(imds.port, { as: { ip: "169.254.169.254", port: 80 } });
      const pod = await lab.addPod("app");
      const armPort = Number(new URL(emu.armEndpoint).port);
      await lab.mirror(armPort, { ns: pod.ns });
      const paths = await sdkClientPaths();
      const env = { ...trustEnv(emu.caCertPath), AZURE_CLIENT_ID: web.clientId };

      const clients: SdkClient[] = ["node-managed", "node-default", "python-managed", "go-managed"];
      for (const client of clients) {
        const out = await lab.exec(pod.ns, sdkClientArgv(paths, client, "https://vault.azure.net/.default"), {
          env,
        });
        const { token } = JSON.parse(out.trim().split("\n").at(-1)!);
        const claims = await emu.verifyToken(token);
        assert.equal(claims.appid, web.clientId, client);
        assert.equal(claims.aud, "https://vault.azure.net", client);
      }

      const demo = JSON.parse(
        await lab.exec(
          pod.ns,
          adalDemoArgv(paths, {
            endpoint: emu.armEndpoint,
            subscriptionId: emu.subscriptionId,
            resourceGroup: "mc-rg",
          }, other.clientId),
          { env: trustEnv(emu.caCertPath) },
        ),
      );
      assert.deepEqual(demo.vms, ["standalone-vm"]);
      assert.equal((await emu.verifyToken(demo.token)).appid, other.clientId);
    } finally {
      await lab.close();
      await emu.stop();
    }
  },
});
