// azure.json is re-read when it changes: a MIC started with a wrong client secret cannot reach ARM (one
// Warning, backoff), and assigns as soon as the file holds the rotated, right secret. No restart.

import assert from "node:assert/strict";
import { Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { micEnv, waitForLog, waitUntil } from "./harness.ts";

Deno.test("MIC reloads azure.json when it changes (rotated secret)", async () => {
  const env = await micEnv("mic-reload");
  try {
    const ss = env.vmss("pool");
    await env.node(`${env.ns}-n0`, ss, 0);
    const id1 = env.uami("id1");
    await env.identity("id1", { type: 0, resourceID: id1.id, clientID: id1.clientId });
    await env.binding("b1", "id1", `app-${env.ns}`);
    const wrong = { ...env.sp, secret: "not-the-secret" };
    const mic = await env.startMic("mic-a", [], {}, wrong);
    await waitForLog(mic, /leading:/);
    await env.pod("p0", `${env.ns}-n0`, `app-${env.ns}`);
    await waitUntil("a Warning on the binding", async () => {
      const events = await env.client.list<KubeObject & { type: string; involvedObject: { name: string } }>(
        Resources.events,
        { namespace: env.ns },
      );
      return events.items.some((e) => e.type === "Warning" && e.involvedObject.name === "b1");
    });
    assert.equal(env.aai(`default/p0-${env.ns}-id1`)?.status?.status, "Created");
    assert.ok(!mic.lines.some((l) => l.includes("not-the-secret")), "a secret reached the log");

    await env.writeAzureJson(env.sp);
    await waitForLog(mic, /Azure credentials reloaded/);
    await waitUntil(
      "Assigned with the new secret",
      () => env.aai(`default/p0-${env.ns}-id1`)?.status?.status === "Assigned",
      30_000,
    );
    assert.deepEqual(env.armIds(ss), [id1.id.toLowerCase()]);
  } finally {
    await env.close();
  }
});
