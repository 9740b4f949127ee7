// An AzureIdentity whose clientID is not its resourceID's (issue: write access to AzureIdentity in one
// namespace gave any identity on the node pool). ARM checks only the resource id; MIC compares the client
// id ARM reports for it and refuses a mismatch: no Assigned, one Warning naming both, no retry storm; the
// fixed object is assigned.

import assert from "node:assert/strict";
import { Resources } from "../../../lib/kube/rest.ts";
import type { CoreEvent } from "../../../lib/kube/events.ts";
import { clientIdAttack, micEnv, waitForLog, waitUntil } from "./harness.ts";

Deno.test("MIC refuses an AzureIdentity whose clientID belongs to another identity", async () => {
  const env = await micEnv("mic-clientid");
  try {
    const ss = env.vmss("pool");
    await env.node(`${env.ns}-n0`, ss, 0);
    // The team's own resource id, the victim's client id.
    const { victim, mine } = await clientIdAttack(env);
    const mic = await env.startMic("mic-a");
    await waitForLog(mic, /leading:/);
    await env.pod("v0", `${env.ns}-n0`, `victim-${env.ns}`);
    await env.pod("t0", `${env.ns}-n0`, `thief-${env.ns}`);
    const victimKey = `default/v0-${env.ns}-victim`;
    const thiefKey = `default/t0-${env.ns}-thief`;
    await waitUntil("victim Assigned", () => env.aai(victimKey)?.status?.status === "Assigned");
    await waitForLog(mic, /spec\.clientID .* does not belong to spec\.resourceID/);

    const warnings = async () =>
      (await env.client.list<CoreEvent>(Resources.events, { namespace: env.ns })).items.filter((e) =>
        e.reason === "ClientIDMismatch" && e.involvedObject.kind === "AzureIdentity" &&
        e.involvedObject.name === "thief"
      );
    await waitUntil("the Warning on the AzureIdentity", async () => (await warnings()).length === 1);
    const [warning] = await warnings();
    assert.equal(warning.type, "Warning");
    assert.ok(
      warning.message.includes(victim.clientId) && warning.message.includes(mine.id),
      warning.message,
    );

    // Refused, and left alone: no PATCH, no more events while nothing changes.
    const writes = env.armWrites();
    await new Promise((r) => setTimeout(r, 3_000));
    assert.equal(env.aai(thiefKey)?.status?.status, "Created");
    assert.deepEqual(env.statuses.get(thiefKey), ["Created"]);
    assert.equal(env.armWrites(), writes);
    assert.equal((await warnings())[0].count ?? 1, 1);

    // The team fixes its object: assigned (its id is already on the scale set: no PATCH).
    await env.client.patch(
      Resources.azureIdentities,
      "thief",
      "merge",
      { spec: { clientID: mine.clientId } },
      {
        namespace: env.ns,
      },
    );
    await waitUntil("fixed identity Assigned", () => env.aai(thiefKey)?.status?.status === "Assigned");
    assert.equal(env.armWrites(), writes);
    assert.equal(env.aai(victimKey)?.status?.status, "Assigned");
  } finally {
    await env.close();
  }
});
