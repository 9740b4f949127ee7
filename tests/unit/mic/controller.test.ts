import assert from "node:assert/strict";
import type { IdentityArm } from "../../../lib/azure/arm_client.ts";
import { EventRecorder } from "../../../lib/kube/events.ts";
import { memoryLogger } from "../../../lib/log.ts";
import { Controller } from "../../../mic/controller.ts";
import { micMetrics } from "../../../mic/metrics.ts";
import { ObservedCache } from "../../../mic/observed_cache.ts";
import { offlineClient } from "./fixtures.ts";

Deno.test("controller: NMI's re-check of one scale set goes through at most once per interval", () => {
  const client = offlineClient();
  const log = memoryLogger();
  const unused = () => Promise.reject(new Error("no ARM in this test"));
  const arm: IdentityArm = {
    getIdentity: unused,
    patchIdentity: unused,
    deadlines: () => ({ readUntil: 0, writeUntil: 0 }),
  };
  const controller = new Controller({
    client,
    cache: new ObservedCache({ client, log }),
    arm,
    recorder: new EventRecorder({ client, log }),
    log,
    metrics: micMetrics(),
    planner: { forceNamespaced: false, immutableClientIds: [] },
    debounceMs: 10,
    writeConcurrency: 1,
    armConcurrency: 1,
    recheckMinIntervalMs: 60_000,
  });
  // A pod that makes NMI report "Identity not found" in a loop costs one ARM read per scale set per minute.
  assert.equal(controller.recheck("ss1"), true);
  assert.equal(controller.recheck("ss1"), false);
  assert.equal(controller.recheck("ss2"), true);
});
