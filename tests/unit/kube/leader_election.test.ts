import assert from "node:assert/strict";
import { LeaderElector, microTime } from "../../../lib/kube/leader_election.ts";
import type { KubeClient } from "../../../lib/kube/rest.ts";

Deno.test("leader election: lease times are MicroTime with six fractional digits", () => {
  assert.equal(microTime(Date.parse("2026-11-29T10:00:01.234Z")), "2026-11-29T10:00:01.234000Z");
});

Deno.test("leader election: timings must leave the renew deadline inside the lease", () => {
  const client = {} as KubeClient;
  const base = { client, namespace: "default", name: "mic", identity: "a" };
  assert.throws(
    () => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }),
    RangeError,
  );
  assert.throws(() => new LeaderElector({ ...base, retryPeriodMs: 10_000 }), RangeError);
  assert.throws(() => new LeaderElector({ ...base, identity: "" }), RangeError);
  const e = new LeaderElector(base);
  assert.equal(e.isLeader(), false);
  assert.equal(e.leader, undefined);
});
