// Two electors on one Lease against the real apiserver: exactly one leads; a graceful stop hands over at
// once, a killed leader is replaced within the lease duration, a partitioned leader fences itself (stops
// calling itself leader) before the other can take over, a slow answer shortens leadership instead of
// stretching it past the lease, another holder ends leadership at once, and an outage warns once per cause.

import assert from "node:assert/strict";
import { sharedCluster } from "../../support/cluster.ts";
import { LeaderElector } from "../../../lib/kube/leader_election.ts";
import type { KubeClient } from "../../../lib/kube/rest.ts";
import { memoryLogger } from "../../../lib/log.ts";
import { Resources } from "../../../lib/kube/rest.ts";
import type { Lease } from "../../../lib/kube/leader_election.ts";
import { clientFor, TcpRelay, waitUntil } from "./helpers.ts";

type Timing = { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
const timing: Timing = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 400 };

interface Candidate {
  elector: LeaderElector;
  ctrl: AbortController;
  run: Promise<void>;
  log: ReturnType<typeof memoryLogger>;
  /** The leading signal handed to onStartedLeading. */
  signal?: AbortSignal;
  /** performance.now() times. */
  startedAt?: number;
  abortedAt?: number;
  stoppedAt?: number;
  leaders: string[];
}

function candidate(
  client: KubeClient,
  namespace: string,
  identity: string,
  releaseOnCancel = true,
  t: Timing = timing,
): Candidate {
  const ctrl = new AbortController();
  const c = { ctrl, leaders: [], log: memoryLogger() } as unknown as Candidate;
  c.elector = new LeaderElector({
    client,
    namespace,
    name: "mic-lease",
    identity,
    ...t,
    releaseOnCancel,
    log: c.log,
    onStartedLeading: (signal) => {
      c.startedAt = performance.now();
      c.signal = signal;
      signal.addEventListener("abort", () => c.abortedAt = performance.now(), { once: true });
    },
    onStoppedLeading: () => {
      c.stoppedAt = performance.now();
    },
    onNewLeader: (id) => c.leaders.push(id),
  });
  c.run = c.elector.run(ctrl.signal);
  return c;
}

/** Whether a replica would act as leader now: isLeader() says so, or its leading signal is still live. */
function claims(c: Candidate): boolean {
  return c.elector.isLeader() || (c.signal !== undefined && !c.signal.aborted);
}

/** Samples both electors every 10 ms; fails the test if they ever both claim leadership. */
function watchOverlap(a: Candidate, b: Candidate): { stop: () => number } {
  let both = 0;
  const timer = setInterval(() => {
    if (claims(a) && claims(b)) both++;
  }, 10);
  return { stop: () => (clearInterval(timer), both) };
}

/** A and B on one lease, watched for overlap from the start; `stop()` ends both and fails on any overlap. */
function pairOf(a: Candidate, b: Candidate): { a: Candidate; b: Candidate; stop(): Promise<void> } {
  const overlap = watchOverlap(a, b);
  return {
    a,
    b,
    async stop() {
      a.ctrl.abort();
      b.ctrl.abort();
      await Promise.all([a.run, b.run]);
      assert.equal(overlap.stop(), 0, "both claimed leadership at once");
    },
  };
}

/** A ("mic-a", through `aClient`) leads alone first; then B ("mic-b", through `bClient`) joins as standby. */
async function leaderThenStandby(
  aClient: KubeClient,
  bClient: KubeClient,
  namespace: string,
  releaseOnCancel = true,
): Promise<ReturnType<typeof pairOf>> {
  const a = candidate(aClient, namespace, "mic-a", releaseOnCancel);
  await waitUntil("a to lead", () => a.elector.isLeader());
  return pairOf(a, candidate(bClient, namespace, "mic-b"));
}

/** A client whose link to the apiserver runs through a relay the test can cut; close() closes both. */
async function relayedClient(cluster: { server: string; kubeconfigPath: string }) {
  const relay = new TcpRelay(cluster.server);
  const client = await clientFor(cluster.kubeconfigPath, relay.url);
  return {
    relay,
    client,
    async close() {
      await relay.close();
      client.conn.close();
    },
  };
}

async function leaseHolder(client: KubeClient, namespace: string): Promise<string | undefined> {
  try {
    const lease = await client.get<Lease>(Resources.leases, "mic-lease", namespace);
    return lease.spec?.holderIdentity;
  } catch {
    return undefined;
  }
}

Deno.test("leader election on a Lease", async (t) => {
  const cluster = await sharedCluster();
  const client = await clientFor(cluster.kubeconfigPath);
  try {
    await t.step("exactly one leads; a graceful stop hands over at once", async () => {
      const namespace = await cluster.namespace("lease-graceful");
      const pair = pairOf(candidate(client, namespace, "mic-a"), candidate(client, namespace, "mic-b"));
      const { a, b } = pair;
      try {
        await waitUntil("a leader", () => a.elector.isLeader() || b.elector.isLeader());
        const [leader, standby] = a.elector.isLeader() ? [a, b] : [b, a];
        await new Promise((r) => setTimeout(r, 1_500)); // several renew periods
        assert.ok(leader.elector.isLeader() && !standby.elector.isLeader());
        assert.equal(standby.startedAt, undefined);
        assert.equal(standby.elector.leader, leader.elector.identity);
        const stoppedAt = performance.now();
        leader.ctrl.abort();
        await leader.run;
        assert.ok(leader.stoppedAt !== undefined && !leader.elector.isLeader());
        await waitUntil("the standby to lead", () => standby.elector.isLeader(), 5_000, 10);
        const handover = performance.now() - stoppedAt;
        assert.ok(handover < timing.leaseDurationMs - 500, `released lease taken in ${handover} ms`);
        assert.deepEqual(standby.leaders, [leader.elector.identity, standby.elector.identity]);
      } finally {
        await pair.stop();
      }
    });

    await t.step("a killed leader (no release) is replaced within the lease duration", async () => {
      const namespace = await cluster.namespace("lease-kill");
      const pair = await leaderThenStandby(client, client, namespace, false);
      const { a, b } = pair;
      try {
        await new Promise((r) => setTimeout(r, 1_000));
        assert.ok(!b.elector.isLeader());
        const killedAt = performance.now();
        a.ctrl.abort(); // stops renewing and never releases: what a crash looks like to the other replica
        await waitUntil("b to take over", () => b.elector.isLeader(), 10_000, 10);
        const takeover = performance.now() - killedAt;
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
        await pair.stop();
      }
    });

    await t.step("a partitioned leader fences itself before the standby takes over", async () => {
      const namespace = await cluster.namespace("lease-fence");
      const { relay, client: viaRelay, close } = await relayedClient(cluster);
      const pair = await leaderThenStandby(viaRelay, client, namespace);
      const { a, b } = pair;
      try {
        await new Promise((r) => setTimeout(r, 800));
        const cutAt = performance.now();
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
        await pair.stop().finally(close);
      }
    });

    await t.step(
      "a slow answer shortens leadership: the signal aborts before the lease can be taken",
      async () => {
        // Every answer to A is held 1.5 s; its requests reach the apiserver at once. Once A's lease is on the
        // server, nothing more from A gets through. A's leadership must count from when its write was sent, so
        // its signal ends within renewDeadline of the write; B, which saw the write when it happened, waits a
        // full lease duration from then. Counting from the late answer instead keeps A's signal alive ~1.5 s
        // into B's term.
        const slowTiming = { leaseDurationMs: 4_000, renewDeadlineMs: 3_500, retryPeriodMs: 300 };
        const namespace = await cluster.namespace("lease-slow");
        const proxy = new TcpRelay(cluster.server, { delayMs: 1_500 });
        const viaProxy = await clientFor(cluster.kubeconfigPath, proxy.url);
        // One warm connection first: a TLS handshake through the delay would take several delays on its own.
        await viaProxy.request("GET", "/version");
        const a = candidate(viaProxy, namespace, "mic-a", true, slowTiming);
        let b: Candidate | undefined;
        let both = 0;
        const sampler = setInterval(() => {
          if (claims(a) && b && claims(b)) both++;
        }, 10);
        try {
          await waitUntil(
            "A's lease on the server",
            async () => await leaseHolder(client, namespace) === "mic-a",
            10_000,
            10,
          );
          const writtenBy = performance.now(); // A sent its write before this
          proxy.dropRequests();
          b = candidate(client, namespace, "mic-b", true, slowTiming);
          await waitUntil("A to lead", () => a.startedAt !== undefined, 10_000, 10);
          await waitUntil("B to take over", () => b!.elector.isLeader(), 15_000, 10);
          assert.ok(a.abortedAt !== undefined, "A's signal never aborted");
          const lived = Math.round(a.abortedAt - writtenBy);
          assert.ok(
            lived <= slowTiming.leaseDurationMs,
            `A's signal lived ${lived} ms past its write; the lease is ${slowTiming.leaseDurationMs} ms`,
          );
          assert.ok(a.abortedAt < b.startedAt!, "B started leading before A's signal aborted");
          assert.ok(!a.elector.isLeader());
        } finally {
          clearInterval(sampler);
          a.ctrl.abort();
          b?.ctrl.abort();
          await Promise.all([a.run, b?.run]);
          viaProxy.conn.close();
          await proxy.close();
          assert.equal(both, 0, "both claimed leadership at once");
        }
      },
    );

    await t.step("another holder on the lease ends leadership at once, not at the deadline", async () => {
      const namespace = await cluster.namespace("lease-intruder");
      const a = candidate(client, namespace, "mic-a");
      try {
        await waitUntil("a to lead", () => a.elector.isLeader());
        const lease = await client.get<Lease>(Resources.leases, "mic-lease", namespace);
        const now = new Date().toISOString().replace(/Z$/, "000Z");
        await client.update<Lease>(Resources.leases, {
          ...lease,
          spec: { ...lease.spec, holderIdentity: "intruder", renewTime: now, leaseDurationSeconds: 30 },
        });
        const tookAt = performance.now();
        await waitUntil("a to see the new holder", () => !a.elector.isLeader(), 1_000, 10);
        await waitUntil("a's signal to abort", () => a.signal?.aborted === true, 1_000, 10);
        assert.equal(a.elector.leader, "intruder");
        assert.ok(
          performance.now() - tookAt < timing.renewDeadlineMs - timing.retryPeriodMs,
          "noticed only at the renew deadline",
        );
        await a.run;
      } finally {
        a.ctrl.abort();
        await a.run;
      }
    });

    await t.step("a standby cut off from the apiserver warns once per cause", async () => {
      const namespace = await cluster.namespace("lease-outage");
      const { relay, client: viaRelay, close } = await relayedClient(cluster);
      const pair = await leaderThenStandby(client, viaRelay, namespace);
      const { a, b } = pair;
      try {
        await waitUntil("b to see a", () => b.elector.leader === "mic-a");
        relay.cut();
        await new Promise((r) => setTimeout(r, 3_000)); // ~7 failed attempts at 400 ms
        const warnings = b.log.records.filter((r) => r.level === "warn").map((r) => r.msg);
        assert.ok(warnings.length >= 1 && warnings.length <= 2, JSON.stringify(warnings));
        relay.restore();
        await waitUntil(
          "b to reach the lease again",
          () => b.log.records.some((r) => /reachable again after \d+ failures/.test(r.msg)),
          5_000,
        );
        const back = b.log.records.find((r) => /reachable again/.test(r.msg))!;
        const failures = Number(/after (\d+) failures/.exec(back.msg)![1]);
        assert.ok(failures >= 5, `only ${failures} failed attempts were made`);
        assert.ok(!b.elector.isLeader() && a.elector.isLeader());
      } finally {
        await pair.stop().finally(close);
      }
    });
  } finally {
    client.conn.close();
  }
});

/**
 * The real client, except that every answer arrives `delayMs` late and no request can be cancelled: the
 * request deadline is out of play, so only the elector's own check of the answer's lateness is left.
 */
function lateClient(client: KubeClient, delayMs: number): KubeClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop !== "request") return Reflect.get(target, prop, receiver);
      return async (method: string, path: string, opts: { signal?: AbortSignal; body?: unknown } = {}) => {
        const { signal: _uncancellable, ...rest } = opts;
        const answer = await target.request(method, path, rest);
        await new Promise((r) => setTimeout(r, delayMs));
        return answer;
      };
    },
  });
}

Deno.test("leader election: a write answered after the renew deadline gives no leadership at all", async () => {
  const cluster = await sharedCluster();
  const client = await clientFor(cluster.kubeconfigPath);
  try {
    const namespace = await cluster.namespace("le-late");
    const c = candidate(lateClient(client, timing.renewDeadlineMs + 300), namespace, "mic-late");
    let claimed = false;
    const sampler = setInterval(() => claimed ||= c.elector.isLeader(), 5);
    try {
      // Create, then take-over attempts: each write is answered 2.3 s after it was sent (deadline 2 s).
      await waitUntil(
        "two written leases",
        async () => (await leaseHolder(client, namespace)) === "mic-late",
      );
      await new Promise((r) => setTimeout(r, 3 * (timing.renewDeadlineMs + 300)));
      assert.equal(c.startedAt, undefined, "onStartedLeading ran for a late answer");
      assert.equal(claimed, false);
    } finally {
      clearInterval(sampler);
      c.ctrl.abort();
      await c.run;
    }
  } finally {
    client.conn.close();
  }
});
