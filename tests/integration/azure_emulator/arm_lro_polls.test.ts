// How often MIC's ARM client polls Compute's long-running operations on the emulator (docs/protocols.md,
// "## Long-running operations"): at most twice for an operation of unknown length, once when operations of
// that kind recently took as long, and never sooner than the operation's Retry-After.

import assert from "node:assert/strict";
import { createArmClient } from "../../../lib/azure/arm_client.ts";
import { parseProviderId } from "../../../lib/azure/provider_id.ts";
import { sdkClients, startHarness } from "./helpers.ts";

const ARM = "https://management.azure.com/";

async function setup(o: { lroDurationMs: number; lroRetryAfterSeconds?: number }) {
  const h = await startHarness(o);
  const sp = h.emu.registerServicePrincipal({ secret: "mic-secret" });
  const ids = [1, 2, 3].map((i) => h.emu.addUserAssignedIdentity({ resourceGroup: "ids", name: `id${i}` }));
  const ss = h.emu.addVmss({ resourceGroup: "mc", name: "a" });
  const t = parseProviderId(`azure://${ss.id}/virtualMachines/0`)!;
  const arm = createArmClient({
    credential: sdkClients(h, sp).credential,
    endpoint: h.emu.armEndpoint,
    audience: ARM,
    pollIntervalMs: 100,
  });
  /** Adds identity i; the number of operation polls it took and how long. */
  const add = async (i: number) => {
    const before = h.emu.requests.count({ route: "operation.get" });
    const t0 = performance.now();
    await arm.patchIdentity(t, { type: "UserAssigned", userAssignedIdentities: { [ids[i].id]: {} } });
    return { polls: h.emu.requests.count({ route: "operation.get" }) - before, ms: performance.now() - t0 };
  };
  return { h, add };
}

Deno.test("ARM LRO polls: 1 s operations -> at most 2 polls at first, then 1 (their duration is learnt)", async () => {
  const { h, add } = await setup({ lroDurationMs: 1_000 });
  try {
    const first = await add(0);
    assert.ok(first.polls <= 2, `first operation: ${first.polls} polls`);
    for (const i of [1, 2]) {
      const next = await add(i);
      assert.equal(next.polls, 1, `operation ${i + 1}: ${next.polls} polls`);
      assert.ok(next.ms < 1_900, `operation ${i + 1} seen done after ${next.ms.toFixed(0)} ms`);
    }
  } finally {
    await h.close();
  }
});

Deno.test("ARM LRO polls: the operation's Retry-After is waited before the first poll", async () => {
  const { h, add } = await setup({ lroDurationMs: 0, lroRetryAfterSeconds: 2 });
  try {
    const r = await add(0);
    assert.equal(r.polls, 1);
    assert.ok(r.ms >= 2_000, `polled after ${r.ms.toFixed(0)} ms, Retry-After was 2 s`);
  } finally {
    await h.close();
  }
});
