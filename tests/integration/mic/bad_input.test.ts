// Bad input with MIC as a real process: an identity without a valid resourceID, a binding naming a missing
// identity, a 10,000-character selector, and an unknown identity type. Each gives one Warning event on the
// object and one log line naming it, however many cycles run; everything else is assigned as usual.

import assert from "node:assert/strict";
import { Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { micEnv, waitForLog, waitUntil } from "./harness.ts";

type CoreEvent = KubeObject & {
  reason: string;
  type: string;
  message: string;
  involvedObject: { name: string };
};

Deno.test("MIC bad input: Warning event + one log line per object; the rest unaffected", async () => {
  const env = await micEnv("mic-bad");
  try {
    const ss = env.vmss("pool");
    await env.node(`${env.ns}-n0`, ss, 0);
    const good = env.uami("good");
    const sel = `app-${env.ns}`;
    await env.identity("good", { type: 0, resourceID: good.id, clientID: good.clientId });
    await env.binding("b-good", "good", sel);
    // The CRD schema lets an empty resourceID through; MIC cannot attach it.
    await env.identity("no-id", { type: 0, clientID: crypto.randomUUID() });
    await env.binding("b-no-id", "no-id", sel);
    await env.binding("b-missing", "does-not-exist", sel);
    await env.binding("b-long", "good", "x".repeat(10_000));
    // An unknown type is stored, as the original's types-only schema did (objects it stored must stay
    // valid); MIC never assigns it.
    await env.identity("bad-type", { type: 7, clientID: crypto.randomUUID() });

    const mic = await env.startMic("mic-a");
    await waitForLog(mic, /leading:/);
    for (let i = 0; i < 4; i++) await env.pod(`p${i}`, `${env.ns}-n0`, sel); // several cycles
    await waitUntil(
      "good Assigned for all",
      () => [0, 1, 2, 3].every((i) => env.aai(`default/p${i}-${env.ns}-good`)?.status?.status === "Assigned"),
    );
    assert.equal(env.aaisOfPods().length, 4, "only the good identity is assigned");
    assert.deepEqual(env.armIds(ss), [good.id.toLowerCase()]);

    const expected: [string, string, RegExp][] = [
      ["no-id", "InvalidIdentity", /spec\.resourceID "" is not a user-assigned identity id/],
      ["b-missing", "IdentityNotFound", /"does-not-exist" does not exist/],
      ["b-long", "InvalidBinding", /10000 characters/],
    ];
    await waitUntil("warnings", async () => {
      const events = (await env.client.list<CoreEvent>(Resources.events, { namespace: env.ns })).items;
      return expected.every(([name]) =>
        events.some((e) => e.involvedObject.name === name && e.type === "Warning")
      );
    });
    const events = (await env.client.list<CoreEvent>(Resources.events, { namespace: env.ns })).items;
    for (const [name, reason, message] of expected) {
      const mine = events.filter((e) => e.involvedObject.name === name);
      assert.equal(mine.length, 1, `${name}: ${mine.length} events`);
      assert.equal(mine[0].reason, reason);
      assert.match(mine[0].message, message);
      const lines = mic.lines.filter((l) => l.includes(`${env.ns}/${name}`) && / WARN /.test(l));
      assert.equal(lines.length, 1, `${name}: log lines:\n${lines.join("\n")}`);
      assert.ok(lines[0].length < 1_000, "the log line stays short even for a 10,000-character selector");
    }
  } finally {
    await env.close();
  }
});
