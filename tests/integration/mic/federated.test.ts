// Federated mode with MIC as a real process: a federated identity (by annotation, or by the cluster-wide
// --federated-by-default) is never attached, so MIC makes no ARM call for it and writes its
// AzureAssignedIdentity Created -> Assigned at once; a standard identity next to it is attached as before.

import assert from "node:assert/strict";
import { Resources } from "../../../lib/kube/rest.ts";
import { micEnv, waitForLog, waitUntil } from "./harness.ts";

const FEDERATED = "aadpodidentity.k8s.io/federated";
const settle = () => new Promise((r) => setTimeout(r, 1_000));

Deno.test("MIC: a federated identity is Assigned with zero ARM calls; the scale set stays without it", async (t) => {
  const env = await micEnv("mic-fed");
  try {
    const ss = env.vmss("pool");
    await env.node(`${env.ns}-n0`, ss, 0);
    const fed = env.uami("fed");
    const std = env.uami("std");
    await env.identity("fed", { type: 0, resourceID: fed.id, clientID: fed.clientId }, {
      annotations: { [FEDERATED]: "true" },
    });
    await env.identity("std", { type: 0, resourceID: std.id, clientID: std.clientId });
    await env.binding("b-fed", "fed", `fed-${env.ns}`);
    await env.binding("b-std", "std", `std-${env.ns}`);
    const mic = await env.startMic("mic-a");
    await waitForLog(mic, /leading:/);

    await t.step("annotation true: Created -> Assigned, no ARM request", async () => {
      await env.pod("p-fed", `${env.ns}-n0`, `fed-${env.ns}`);
      const key = `default/p-fed-${env.ns}-fed`;
      await waitUntil("p-fed Assigned", () => env.aai(key)?.status?.status === "Assigned");
      await settle();
      assert.equal(env.emu.requests.count({ service: "arm" }), 0);
      assert.deepEqual(env.armIds(ss), []);
      assert.deepEqual(env.statuses.get(key)?.filter((s, i, a) => s !== a[i - 1]), ["Created", "Assigned"]);
    });

    await t.step("a standard identity on the same node is still attached through ARM", async () => {
      await env.pod("p-std", `${env.ns}-n0`, `std-${env.ns}`);
      await waitUntil(
        "p-std Assigned",
        () => env.aai(`default/p-std-${env.ns}-std`)?.status?.status === "Assigned",
      );
      assert.deepEqual(env.armIds(ss), [std.id.toLowerCase()]);
    });

    await t.step(
      "annotating the standard identity federated detaches it; its object is Assigned again",
      async () => {
        await env.client.patch(
          Resources.azureIdentities,
          "std",
          "merge",
          { metadata: { annotations: { [FEDERATED]: "true" } } },
          { namespace: env.ns },
        );
        await waitUntil("std detached", () => env.armIds(ss).length === 0, 15_000);
        await waitUntil(
          "p-std Assigned (federated)",
          () =>
            env.aai(`default/p-std-${env.ns}-std`)?.status?.status === "Assigned" &&
            (env.aai(`default/p-std-${env.ns}-std`)?.spec?.azureIdentityRef as {
                metadata?: { annotations?: Record<string, string> };
              })?.metadata?.annotations?.[FEDERATED] === "true",
        );
      },
    );

    await t.step("releasing the federated pod makes no ARM call", async () => {
      await settle(); // the detach's long-running operation ends first
      const before = env.emu.requests.count({ service: "arm" });
      await env.deletePod("p-fed");
      await waitUntil("p-fed released", () => !env.aai(`default/p-fed-${env.ns}-fed`));
      await settle();
      assert.equal(env.emu.requests.count({ service: "arm" }), before);
    });
    assert.equal((await mic.kill("SIGTERM")).code, 0);
  } finally {
    await env.close();
  }
});

Deno.test('MIC --federated-by-default: identities without the annotation are federated; "false" opts out', async () => {
  const env = await micEnv("mic-fed-def");
  try {
    const ss = env.vmss("pool");
    await env.node(`${env.ns}-n0`, ss, 0);
    const fed = env.uami("fed");
    const std = env.uami("std");
    await env.identity("fed", { type: 0, resourceID: fed.id, clientID: fed.clientId });
    await env.identity("std", { type: 0, resourceID: std.id, clientID: std.clientId }, {
      annotations: { [FEDERATED]: "false" },
    });
    await env.binding("b-fed", "fed", `fed-${env.ns}`);
    await env.binding("b-std", "std", `std-${env.ns}`);
    const mic = await env.startMic("mic-b", ["--federated-by-default"]);
    await waitForLog(mic, /leading:/);
    await env.pod("p-fed", `${env.ns}-n0`, `fed-${env.ns}`);
    await waitUntil(
      "p-fed Assigned",
      () => env.aai(`default/p-fed-${env.ns}-fed`)?.status?.status === "Assigned",
    );
    await settle();
    assert.equal(env.emu.requests.count({ service: "arm" }), 0);
    await env.pod("p-std", `${env.ns}-n0`, `std-${env.ns}`);
    await waitUntil(
      "p-std Assigned",
      () => env.aai(`default/p-std-${env.ns}-std`)?.status?.status === "Assigned",
    );
    assert.deepEqual(env.armIds(ss), [std.id.toLowerCase()]);
    assert.equal((await mic.kill("SIGTERM")).code, 0);
  } finally {
    await env.close();
  }
});
