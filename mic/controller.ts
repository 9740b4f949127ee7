// Controller: MIC's side effects. One cycle = observe, plan, write AzureAssignedIdentities, and start ARM
// work per VM / scale set. Event-driven and debounced (a burst of watch events is one cycle), no periodic
// resync except drift repair, and nothing planned means no call at all. Each VM / scale set has at most one
// job at a time (Compute serialises identity updates per resource anyway; see
// docs/protocols.md, "## ARM identity assignment"); jobs run concurrently up to a bound. Statuses follow
// docs/upstream.md, "## MIC assignment algorithm": Created -> Assigned once ARM has the id -> Unassigned ->
// deleted. Every write is fenced by leadership: a MIC that is not (or no longer) leader sends nothing.

import type { AzureAssignedIdentity } from "../lib/api/types.ts";
import type { IdentityArm } from "../lib/azure/arm_client.ts";
import type { EventRecorder } from "../lib/kube/events.ts";
import type { KubeClient } from "../lib/kube/rest.ts";
import type { Logger } from "../lib/log.ts";
import { AssignedWriter } from "./assigned_writer.ts";
import { bounded } from "./bounded.ts";
import { type BackoffPolicy, Backoffs } from "./backoffs.ts";
import type { MicMetrics } from "./metrics.ts";
import type { ObservedCache } from "./observed_cache.ts";
import { keyOf, type Plan, type PlannerOptions } from "./plan_types.ts";
import { plan } from "./planner.ts";
import { NotLeader, TargetJobs } from "./target_jobs.ts";

interface ControllerOptions {
  client: KubeClient;
  cache: ObservedCache;
  arm: IdentityArm;
  recorder: EventRecorder;
  log: Logger;
  metrics: MicMetrics;
  planner: PlannerOptions;
  /** Quiet time after an event before a cycle starts, so a burst becomes one cycle. */
  debounceMs: number;
  /** Longest a cycle waits for quiet (default 10 x debounceMs, at least 1 s). */
  maxDelayMs?: number;
  /** Concurrent Kubernetes writes (the original's --createDeleteBatch). */
  writeConcurrency: number;
  /** VMs / scale sets updated at the same time. */
  armConcurrency: number;
  targetBackoff?: BackoffPolicy;
  identityBackoff?: BackoffPolicy;
  /** Drift repair period (0: off): re-checks ARM for ids removed outside MIC. */
  driftRepairIntervalMs?: number;
  /** Shortest time between two re-checks of one VM / scale set asked for by NMI (default 10 s). */
  recheckMinIntervalMs?: number;
}

/** What the leader elector hands the controller while this replica leads. */
interface Leadership {
  /** Aborts when leadership ends for any reason. */
  signal: AbortSignal;
  /** True only while the lease is held and fresh: checked right before every write. */
  isLeader(): boolean;
}

const NOT_LEADING: Leadership = { signal: AbortSignal.abort(), isLeader: () => false };

export class Controller {
  readonly #opts: ControllerOptions;
  readonly #log: Logger;
  readonly #writer: AssignedWriter;
  readonly #jobs: TargetJobs;
  #lease: Leadership = NOT_LEADING;
  #wake: (() => void) | undefined;
  #pending = false;
  #lastTrigger = 0;
  #repairDue = false;
  #recheck = new Set<string>();
  #lastRecheck = new Map<string, number>();
  #wakeTimer: ReturnType<typeof setTimeout> | undefined;
  #wakeAt = Infinity;
  /** Cycles that planned something (for tests and the bench). */
  cyclesWithWork = 0;

  constructor(opts: ControllerOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#writer = new AssignedWriter({
      client: opts.client,
      cache: opts.cache,
      recorder: opts.recorder,
      log: opts.log,
      metrics: opts.metrics,
      fence: () => this.#fence(),
      leading: () => this.#lease.isLeader(),
      replan: () => this.trigger(),
      retrySoon: () => this.#scheduleWake(Date.now() + 5_000),
    });
    this.#jobs = new TargetJobs({
      arm: opts.arm,
      writer: this.#writer,
      log: opts.log,
      writeConcurrency: opts.writeConcurrency,
      armConcurrency: opts.armConcurrency,
      targetBackoff: new Backoffs(opts.targetBackoff ?? { baseMs: 5_000, maxMs: 300_000, jitter: 0.2 }),
      identityBackoff: new Backoffs(
        opts.identityBackoff ?? { baseMs: 30_000, maxMs: 1_800_000, jitter: 0.2 },
      ),
      fence: () => this.#fence(),
      signal: () => this.#lease.signal,
      wakeAt: (at) => this.#scheduleWake(at),
    });
    opts.cache.subscribe(() => this.trigger());
  }

  /** Something changed: a cycle starts after the debounce (many triggers, one cycle). */
  trigger(): void {
    this.#pending = true;
    this.#lastTrigger++;
    this.#wake?.();
  }

  /**
   * NMI reported an Assigned identity missing on this VM / scale set: its ids are asked of ARM in the next
   * cycle (at most once per recheckMinIntervalMs, so a pod cannot turn NMI's reports into an ARM storm).
   */
  recheck(targetKey: string): boolean {
    const now = Date.now();
    const min = this.#opts.recheckMinIntervalMs ?? 10_000;
    if (now - (this.#lastRecheck.get(targetKey) ?? -Infinity) < min) return false;
    if (this.#lastRecheck.size > 10_000) this.#lastRecheck.clear();
    this.#lastRecheck.set(targetKey, now);
    this.#recheck.add(targetKey);
    this.trigger();
    return true;
  }

  /** Cycles while this replica leads (until `lease.signal` aborts). */
  async run(lease: Leadership): Promise<void> {
    const { signal } = lease;
    this.#lease = lease;
    signal.addEventListener("abort", () => this.#wake?.(), { once: true });
    this.#pending = true;
    const repairEvery = this.#opts.driftRepairIntervalMs ?? 0;
    const repairTimer = repairEvery > 0
      ? setInterval(() => {
        this.#repairDue = true;
        this.trigger();
      }, repairEvery)
      : undefined;
    signal.addEventListener("abort", () => clearInterval(repairTimer), { once: true });
    while (!signal.aborted) {
      if (!this.#pending) {
        await new Promise<void>((r) => (this.#wake = r));
        this.#wake = undefined;
        continue;
      }
      await this.#quiet(signal);
      if (signal.aborted) break;
      this.#pending = false;
      if (!lease.isLeader()) continue;
      try {
        await this.cycle();
      } catch (e) {
        if (e instanceof NotLeader || signal.aborted) break;
        this.#log.error("cycle failed", { error: e });
        this.#scheduleWake(Date.now() + 5_000);
      }
    }
    clearTimeout(this.#wakeTimer);
    await this.#jobs.idle();
  }

  /**
   * Trailing debounce: waits until no trigger came for debounceMs, but never longer than maxDelayMs in
   * all, so a burst is one cycle and a steady trickle still gets served.
   */
  async #quiet(signal: AbortSignal): Promise<void> {
    const start = Date.now();
    const max = this.#opts.maxDelayMs ?? Math.max(1_000, this.#opts.debounceMs * 10);
    let last = this.#lastTrigger;
    while (!signal.aborted) {
      const wait = Math.min(this.#opts.debounceMs, start + max - Date.now());
      if (wait <= 0) return;
      await new Promise((r) => setTimeout(r, wait));
      if (this.#lastTrigger === last) return;
      last = this.#lastTrigger;
    }
  }

  /** Resolves when no ARM job is running (tests, shutdown). */
  idle(): Promise<void> {
    return this.#jobs.idle();
  }

  #scheduleWake(at: number): void {
    if (at >= this.#wakeAt && this.#wakeTimer !== undefined) return;
    clearTimeout(this.#wakeTimer);
    this.#wakeAt = at;
    this.#wakeTimer = setTimeout(() => {
      this.#wakeTimer = undefined;
      this.#wakeAt = Infinity;
      this.trigger();
    }, Math.max(0, at - Date.now()) + 10);
  }

  #fence(): void {
    if (!this.#lease.isLeader() || this.#lease.signal.aborted) {
      throw new NotLeader("not the leader: write refused");
    }
  }

  async cycle(): Promise<Plan> {
    const t0 = performance.now();
    const { cache, metrics } = this.#opts;
    await cache.expectationsMet(5_000);
    const { state, problems: unreadable } = cache.observe();
    const repairDrift = this.#repairDue;
    const recheckTargets = this.#recheck;
    this.#repairDue = false;
    this.#recheck = new Set();
    const p = plan(state, { ...this.#opts.planner, repairDrift, recheckTargets });
    this.#gaugeAssigned(state.assigned);
    this.#log.debug("cycle", {
      create: p.create.length,
      update: p.update.length,
      targets: p.targets.map((x) => `${x.target.name}+${x.add.length}-${x.remove.length}`).join(","),
      busy: this.#jobs.busy,
    });
    await this.#writer.report([...unreadable, ...p.problems]);
    const hasWork = p.create.length || p.update.length || p.assignWithoutArm.length ||
      p.releaseWithoutArm.length || p.targets.length;
    if (!hasWork) return p;
    this.cyclesWithWork++;
    metrics.cycles.inc();
    const objects = await this.#writeObjects(p, state.assigned);
    for (const tp of p.targets) {
      // Re-plan only after real work; a job that found its target backing off waits for the wake timer.
      this.#jobs.start(tp, objects, (acted) => {
        metrics.queueDepth.set(this.#jobs.busy);
        if (acted) this.trigger();
      });
    }
    metrics.queueDepth.set(this.#jobs.busy);
    metrics.cycleDuration.observe((performance.now() - t0) / 1000);
    return p;
  }

  /** The plan's Kubernetes-only part; returns the objects as they are after these writes, by key. */
  async #writeObjects(
    p: Plan,
    assigned: readonly AzureAssignedIdentity[],
  ): Promise<Map<string, AzureAssignedIdentity>> {
    const objects = new Map(assigned.map((a) => [keyOf(a), a]));
    const n = this.#opts.writeConcurrency;
    const w = this.#writer;
    await bounded(p.create, n, async (a) => {
      const created = await w.create(a);
      if (created) objects.set(keyOf(a), created);
    });
    await bounded(p.update, n, async ({ next }) => {
      const updated = await w.update(next);
      if (updated) objects.set(keyOf(next), updated);
      else objects.delete(keyOf(next));
    });
    // Vouched-for ids on a VM / scale set with a job in flight wait for it: it may be detaching that id
    // (planned before this pod appeared); the cycle after the job decides again.
    const idle = (x: { targetKey?: string }) => !x.targetKey || !this.#jobs.isBusy(x.targetKey);
    await bounded(p.assignWithoutArm.filter(idle), n, (a) => w.markAssigned(objects.get(a.key)));
    await bounded(p.releaseWithoutArm.filter(idle), n, (r) => w.release(objects.get(r.key)));
    return objects;
  }

  #gaugeAssigned(all: readonly AzureAssignedIdentity[]): void {
    const counts: Record<string, number> = { Created: 0, Assigned: 0, Unassigned: 0 };
    for (const a of all) counts[a.status.status || "Assigned"]++;
    for (const [status, v] of Object.entries(counts)) this.#opts.metrics.assigned.set({ status }, v);
  }
}
