// Two electors on one Lease against the real apiserver: exactly one leads; a graceful stop hands over at
// once, a killed leader is replaced within the lease duration, and a partitioned leader fences itself
// (stops calling itself leader) before the other can take over.

import assert from "node:assert/strict";
import { sharedCluster } from "../../support/cluster.ts";
import { LeaderElector } from "../../../lib/kube/leader_election.ts";
import type { KubeClient } from "../../../lib/kube/rest.ts";
import { memoryLogger } from "../../../lib/log.ts";
import { clientFor, TcpRelay, waitUntil } from "./helpers.ts";

const timing = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 400 };

interface Candidate {
  elector: LeaderElector;
  ctrl: AbortController;
  run: Promise<void>;
  startedAt?: number;
  stoppedAt?: number;
  leaders: string[];
}

function candidate(
  client: KubeClient,
  namespace: string,
  identity: string,
  releaseOnCancel = true,
): Candidate {
  const ctrl = new AbortController();
  const c = { ctrl, leaders: [] } as unknown as Candidate;
  c.elector = new LeaderElector({
    client,
    namespace,
    name: "mic-lease",
    identity,
    ...timing,
    releaseOnCancel,
    log: memoryLogger(),
    onStartedLeading: () => {
      c.startedAt = Date.now();
    },
    onStoppedLeading: () => {
      c.stoppedAt = Date.now();
    },
    onNewLeader: (id) => c.leaders.push(id),
  });
  c.run = c.elector.run(ctrl.signal);
  return c;
}

/** Samples both electors; fails the test if they ever both claim leadership. */
function watchOverlap(a: Candidate, b: Candidate): { stop: () => number } {
  let both = 0;
  const timer = setInterval(() => {
    if (a.elector.isLeader() && b.elector.isLeader()) both++;
  }, 20);
  return { stop: () => (clearInterval(timer), both) };
}

Deno.test("leader election on a Lease", async (t) => {
  const cluster = await sharedCluster();
  const client = await clientFor(cluster.kubeconfigPath);
  try {
    await t.step("exactly one leads; a graceful stop hands over at once", async () => {
      const namespace = await cluster.namespace("lease-graceful");
      const a = candidate(client, namespace, "mic-a");
      const b = candidate(client, namespace, "mic-b");
      const overlap = watchOverlap(a, b);
      try {
        await waitUntil("a leader", () => a.elector.isLeader() || b.elector.isLeader());
        const [leader, standby] = a.elector.isLeader() ? [a, b] : [b, a];
        await new Promise((r) => setTimeout(r, 1_500)); // several renew periods
        assert.ok(leader.elector.isLeader() && !standby.elector.isLeader());
        assert.equal(standby.startedAt, undefined);
        assert.equal(standby.elector.leader, leader.elector.identity);
        const stoppedAt = Date.now();
        leader.ctrl.abort();
        await leader.run;
        assert.ok(leader.stoppedAt !== undefined && !leader.elector.isLeader());
        await waitUntil("the standby to lead", () => standby.elector.isLeader(), 5_000, 10);
        const handover = Date.now() - stoppedAt;
        assert.ok(handover < timing.leaseDurationMs - 500, `released lease taken in ${handover} ms`);
        assert.deepEqual(standby.leaders, [leader.elector.identity, standby.elector.identity]);
      } finally {
        a.ctrl.abort();
        b.ctrl.abort();
        await Promise.all([a.run, b.run]);
        assert.equal(overlap.stop(), 0, "both claimed leadership at once");
      }
    });

    await t.step("a killed leader (no release) is replaced within the lease duration", async () => {
      const namespace = await cluster.namespace("lease-kill");
      const a = candidate(client, namespace, "mic-a", false);
      await waitUntil("a to lead", () => a.elector.isLeader());
      const b = candidate(client, namespace, "mic-b");
      const overlap = watchOverlap(a, b);
      try {
        await new Promise((r) => setTimeout(r, 1_000));
        assert.ok(!b.elector.isLeader());
        const killedAt = Date.now();
        a.ctrl.abort(); // stops renewing and never releases: what a crash looks like to the other replica
        await waitUntil("b to take over", () => b.elector.isLeader(), 10_000, 10);
        const takeover = Date.now() - killedAt;
        // It must wait out the lease (minus at most one renew period of age), and not much longer.
        assert.ok(
          takeover >= timing.leaseDurationMs - 2 * timing.retryPeriodMs,
          `took over early: ${takeover} ms`,
        );
        assert.ok(
          takeover <= timing.leaseDurationMs + 2_000,
          `too slow: ${takeover} ms`,
        );
      } finally {
        a.ctrl.abort();
        b.ctrl.abort();
        await Promise.all([a.run, b.run]);
        assert.equal(overlap.stop(), 0, "both claimed leadership at once");
      }
    });

    await t.step("a partitioned leader fences itself before the standby takes over", async () => {
      const namespace = await cluster.namespace("lease-fence");
      const relay = new TcpRelay(cluster.server);
      const viaRelay = await clientFor(cluster.kubeconfigPath, relay.url);
      const a = candidate(viaRelay, namespace, "mic-a");
      await waitUntil("a to lead", () => a.elector.isLeader());
      const b = candidate(client, namespace, "mic-b");
      const overlap = watchOverlap(a, b);
      try {
        await new Promise((r) => setTimeout(r, 800));
        const cutAt = Date.now();
        relay.cut();
        await a.run; // leadership lost: run returns
        await waitUntil("b to take over", () => b.elector.isLeader(), 10_000, 10);
        assert.ok(
          a.stoppedAt! < b.startedAt!,
          `a stopped ${a.stoppedAt! - cutAt} ms, b started ${b.startedAt! - cutAt} ms`,
        );
        assert.ok(
          a.stoppedAt! - cutAt <= timing.renewDeadlineMs + 500,
          `a fenced after ${a.stoppedAt! - cutAt} ms`,
        );
      } finally {
        a.ctrl.abort();
        b.ctrl.abort();
        await Promise.all([a.run, b.run]);
        await relay.close();
        viaRelay.conn.close();
        assert.equal(overlap.stop(), 0, "both claimed leadership at once");
      }
    });
  } finally {
    client.conn.close();
  }
});
