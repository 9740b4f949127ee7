// MIC's side effects: one cycle = observe, plan, write AzureAssignedIdentities, and start ARM work per VM /
// scale set. Event-driven and debounced (a burst of watch events is one cycle), no periodic resync, and
// nothing planned means no call at all. Each VM / scale set has at most one job at a time (Compute
// serialises identity updates per resource anyway, protocols C.2); jobs run concurrently up to a bound.
// Statuses follow upstream 5.3: Created -> Assigned once ARM has the id -> Unassigned -> deleted. Every
// write is fenced by leadership: a MIC that is not (or no longer) leader sends nothing.

import { toWire } from "../lib/api/wire.ts";
import {
  API_VERSION,
  ASSIGNED_IDENTITY_FINALIZER,
  AssignedIdentityState,
  type AzureAssignedIdentity,
} from "../lib/api/types.ts";
import { ArmError, type IdentityArm, ThrottledLocally } from "../lib/azure/arm_client.ts";
import { identityChange } from "../lib/azure/identity_delta.ts";
import type { EventRecorder, EventType } from "../lib/kube/events.ts";
import { KubeApiError, type KubeClient, Resources } from "../lib/kube/rest.ts";
import type { KubeObject } from "../lib/kube/types.ts";
import type { Logger } from "../lib/log.ts";
import { type BackoffPolicy, Backoffs } from "./backoffs.ts";
import { type MicMetrics, recordAssignedIdentityWrite } from "./metrics.ts";
import {
  keyOf,
  type ObjectRef,
  type Plan,
  plan,
  type PlannerOptions,
  type Problem,
  type TargetPlan,
} from "./planner.ts";
import type { ObservedCache } from "./snapshot.ts";

/** The original's event reasons (upstream 5.5). */
export const Reasons = {
  applied: "binding applied",
  applyError: "binding apply error",
  removed: "binding removed",
  removeError: "binding remove error",
  statusError: "status update error",
} as const;

const BAD_ID =
  /\/subscriptions\/[^/'",\s]+\/resourcegroups\/[^/'",\s]+\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\/[A-Za-z0-9_-]+/gi;

/** The identity ids an ARM error blames (LinkedAuthorizationFailed / FailedIdentityOperation messages). */
export function blamedIds(message: string): string[] {
  return [...new Set([...message.matchAll(BAD_ID)].map((m) => m[0].toLowerCase()))];
}

const PER_ID_ERRORS = new Set(["LinkedAuthorizationFailed", "FailedIdentityOperation"]);

export interface ControllerOptions {
  client: KubeClient;
  cache: ObservedCache;
  arm: IdentityArm;
  recorder: EventRecorder;
  log: Logger;
  metrics: MicMetrics;
  isLeader: () => boolean;
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
}

class NotLeader extends Error {
  override name = "NotLeader";
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function bounded<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** A semaphore for ARM jobs. */
class Slots {
  #free: number;
  #waiting: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async take(): Promise<() => void> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#waiting.push(r));
    return () => {
      const w = this.#waiting.shift();
      if (w) w();
      else this.#free++;
    };
  }
}

export class Controller {
  #o: ControllerOptions;
  #log: Logger;
  #targetBackoff: Backoffs;
  #idBackoff: Backoffs;
  #busy = new Map<string, Promise<void>>();
  #slots: Slots;
  #wake: (() => void) | undefined;
  #pending = false;
  #lastTrigger = 0;
  #repairDue = false;
  #wakeTimer: ReturnType<typeof setTimeout> | undefined;
  #wakeAt = Infinity;
  #reported = new Set<string>();
  #signal: AbortSignal = new AbortController().signal;
  /** Cycles that planned something (for tests and the bench). */
  cyclesWithWork = 0;

  constructor(opts: ControllerOptions) {
    this.#o = opts;
    this.#log = opts.log;
    this.#targetBackoff = new Backoffs(opts.targetBackoff ?? { baseMs: 5_000, maxMs: 300_000, jitter: 0.2 });
    this.#idBackoff = new Backoffs(opts.identityBackoff ?? { baseMs: 30_000, maxMs: 1_800_000, jitter: 0.2 });
    this.#slots = new Slots(Math.max(1, opts.armConcurrency));
  }

  /** Something changed: a cycle starts after the debounce (many triggers, one cycle). */
  trigger(): void {
    this.#pending = true;
    this.#lastTrigger++;
    this.#wake?.();
  }

  /** Cycles while `signal` is not aborted (i.e. while this replica leads). */
  async run(signal: AbortSignal): Promise<void> {
    this.#signal = signal;
    signal.addEventListener("abort", () => this.#wake?.(), { once: true });
    this.#pending = true;
    const repairEvery = this.#o.driftRepairIntervalMs ?? 0;
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
      if (!this.#o.isLeader()) continue;
      try {
        await this.cycle();
      } catch (e) {
        if (e instanceof NotLeader || signal.aborted) break;
        this.#log.error("cycle failed", { error: e });
        this.#scheduleWake(Date.now() + 5_000);
      }
    }
    clearTimeout(this.#wakeTimer);
    await Promise.allSettled([...this.#busy.values()]);
  }

  /**
   * Trailing debounce: waits until no trigger came for debounceMs, but never longer than maxDelayMs in
   * all, so a burst is one cycle and a steady trickle still gets served.
   */
  async #quiet(signal: AbortSignal): Promise<void> {
    const start = Date.now();
    const max = this.#o.maxDelayMs ?? Math.max(1_000, this.#o.debounceMs * 10);
    let last = this.#lastTrigger;
    while (!signal.aborted) {
      const wait = Math.min(this.#o.debounceMs, start + max - Date.now());
      if (wait <= 0) return;
      await new Promise((r) => setTimeout(r, wait));
      if (this.#lastTrigger === last) return;
      last = this.#lastTrigger;
    }
  }

  /** Resolves when no ARM job is running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#busy.size) await Promise.allSettled([...this.#busy.values()]);
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
    if (!this.#o.isLeader() || this.#signal.aborted) throw new NotLeader("not the leader: write refused");
  }

  async cycle(): Promise<Plan> {
    const t0 = performance.now();
    const { cache, metrics } = this.#o;
    await cache.expectationsMet(5_000);
    const { state, problems: unreadable } = cache.observe();
    const repair = this.#repairDue;
    this.#repairDue = false;
    const p = plan(state, { ...this.#o.planner, repairDrift: repair });
    this.#gaugeAssigned(state.assigned);
    this.#log.debug("cycle", {
      create: p.create.length,
      update: p.update.length,
      targets: p.targets.map((x) => `${x.target.name}+${x.add.length}-${x.remove.length}`).join(","),
      busy: this.#busy.size,
    });
    const hasWork = p.create.length || p.update.length || p.assignWithoutArm.length ||
      p.releaseWithoutArm.length || p.targets.length;
    await this.#report([...unreadable, ...p.problems]);
    if (!hasWork) return p;
    this.cyclesWithWork++;
    metrics.cycles.inc();

    const objects = new Map(state.assigned.map((a) => [keyOf(a), a]));
    const n = this.#o.writeConcurrency;
    await bounded(p.create, n, async (a) => {
      const created = await this.#kube(
        "assigned_identity_addition",
        a,
        () => this.#o.client.create(Resources.azureAssignedIdentities, toWire(a) as unknown as KubeObject),
      );
      if (created) {
        objects.set(keyOf(a), { ...a, metadata: { ...a.metadata, ...pickMeta(created) } });
        cache.expect(keyOf(a), created.metadata.resourceVersion ?? "");
      }
    });
    await bounded(p.update, n, async ({ next }) => {
      const updated = await this.#kube(
        "assigned_identity_update",
        next,
        () => this.#o.client.update(Resources.azureAssignedIdentities, toWire(next) as unknown as KubeObject),
      );
      if (updated) {
        objects.set(keyOf(next), { ...next, metadata: { ...next.metadata, ...pickMeta(updated) } });
        cache.expect(keyOf(next), updated.metadata.resourceVersion ?? "");
      } else {
        objects.delete(keyOf(next));
      }
    });
    // Vouched-for ids on a VM / scale set with a job in flight wait for it: it may be detaching that id
    // (planned before this pod appeared); the cycle after the job decides again.
    await bounded(
      p.assignWithoutArm.filter((a) => !a.targetKey || !this.#busy.has(a.targetKey)),
      n,
      (a) => this.#markAssigned(objects.get(a.key)),
    );
    await bounded(
      p.releaseWithoutArm.filter((r) => !r.targetKey || !this.#busy.has(r.targetKey)),
      n,
      (r) => this.#release(objects.get(r.key)),
    );
    for (const tp of p.targets) {
      if (this.#busy.has(tp.target.key)) continue; // re-planned when that job ends
      const job = this.#runTarget(tp, objects).then((acted) => {
        this.#busy.delete(tp.target.key);
        metrics.queueDepth.set(this.#busy.size);
        // Re-plan only after real work; a job that found its target backing off waits for the wake timer.
        if (acted) this.trigger();
      });
      this.#busy.set(tp.target.key, job);
    }
    metrics.queueDepth.set(this.#busy.size);
    metrics.cycleDuration.observe((performance.now() - t0) / 1000);
    return p;
  }

  #gaugeAssigned(all: readonly AzureAssignedIdentity[]): void {
    const counts: Record<string, number> = { Created: 0, Assigned: 0, Unassigned: 0 };
    for (const a of all) counts[a.status.status || "Assigned"]++;
    for (const [status, v] of Object.entries(counts)) this.#o.metrics.assigned.set({ status }, v);
  }

  /** One Warning event and one log line per problem and object version. */
  async #report(problems: Problem[]): Promise<void> {
    for (const pr of problems) {
      const o = pr.object;
      const key = [o.kind, o.namespace, o.name, o.uid, o.resourceVersion, pr.reason, pr.message].join(
        "\u0000",
      );
      if (this.#reported.has(key)) continue;
      if (this.#reported.size > 50_000) this.#reported.clear();
      this.#reported.add(key);
      this.#log.warn(pr.message, { object: `${o.kind} ${o.namespace}/${o.name}`, reason: pr.reason });
      await this.#event(o, "Warning", pr.reason, pr.message);
    }
  }

  async #event(o: ObjectRef, type: EventType, reason: string, message: string): Promise<void> {
    if (!this.#o.isLeader()) return;
    this.#log.debug(`event ${reason} on ${o.kind} ${o.name}`);
    await this.#o.recorder.record(
      {
        apiVersion: API_VERSION,
        kind: o.kind,
        metadata: {
          name: o.name,
          namespace: o.namespace,
          ...(o.uid ? { uid: o.uid } : {}),
          ...(o.resourceVersion ? { resourceVersion: o.resourceVersion } : {}),
        },
      },
      type,
      reason,
      message.length > 1000 ? `${message.slice(0, 997)}...` : message,
    );
  }

  #bindingRef(a: AzureAssignedIdentity): ObjectRef {
    const b = a.spec.azureBindingRef.metadata;
    return {
      kind: "AzureIdentityBinding",
      namespace: b.namespace,
      name: b.name,
      ...(b.uid ? { uid: b.uid } : {}),
    };
  }

  /** A Kubernetes write; failures are counted, logged once and answered with undefined. */
  async #kube<T>(op: string, a: AzureAssignedIdentity, fn: () => Promise<T>): Promise<T | undefined> {
    this.#fence();
    try {
      const t0 = performance.now();
      const done = await fn();
      recordAssignedIdentityWrite(this.#o.metrics, op, (performance.now() - t0) / 1000);
      return done;
    } catch (e) {
      if (e instanceof KubeApiError && (e.isConflict || e.isNotFound)) {
        // Our view was stale; the watch brings the current object and the next cycle decides again.
        this.trigger();
        return undefined;
      }
      this.#o.metrics.kubeErrors.inc({ operation_type: op });
      this.#log.warn(`${op} ${keyOf(a)} failed`, { error: e });
      if (op !== "update_azure_assigned_identity_status") {
        await this.#event(
          this.#bindingRef(a),
          "Warning",
          Reasons.applyError,
          `${op} ${keyOf(a)}: ${errText(e)}`,
        );
      } else {
        await this.#event(refOf(a), "Warning", Reasons.statusError, `${keyOf(a)}: ${errText(e)}`);
      }
      this.#scheduleWake(Date.now() + 5_000);
      return undefined;
    }
  }

  async #markAssigned(a: AzureAssignedIdentity | undefined): Promise<void> {
    if (!a) return;
    const done = await this.#kube(
      "update_azure_assigned_identity_status",
      a,
      () =>
        this.#o.client.patch<KubeObject>(Resources.azureAssignedIdentities, a.metadata.name, "merge", {
          metadata: { resourceVersion: a.metadata.resourceVersion },
          status: { status: AssignedIdentityState.Assigned, availableReplicas: 1 },
        }, { namespace: a.metadata.namespace }),
    );
    this.#log.debug(`marked ${keyOf(a)}`, { ok: !!done });
    if (!done) return;
    this.#o.cache.expect(keyOf(a), done.metadata.resourceVersion ?? "");
    await this.#event(
      this.#bindingRef(a),
      "Normal",
      Reasons.applied,
      `Binding ${a.spec.azureBindingRef.metadata.name} applied on node ${a.spec.nodeName} for pod ` +
        `${a.spec.podNamespace}/${a.spec.pod}`,
    );
  }

  /** Unassigned, finalizer dropped, deleted. */
  async #release(a: AzureAssignedIdentity | undefined): Promise<void> {
    if (!a) return;
    const rest = a.metadata.finalizers.filter((f) => f !== ASSIGNED_IDENTITY_FINALIZER);
    const patched = await this.#kube(
      "update_azure_assigned_identity_status",
      a,
      () =>
        this.#o.client.patch<KubeObject>(Resources.azureAssignedIdentities, a.metadata.name, "merge", {
          metadata: { resourceVersion: a.metadata.resourceVersion, finalizers: rest.length ? rest : null },
          status: { status: AssignedIdentityState.Unassigned },
        }, { namespace: a.metadata.namespace }),
    );
    if (!patched) return;
    if (a.metadata.deletionTimestamp) {
      this.#o.cache.expect(keyOf(a), null);
    } else {
      const deleted = await this.#kube(
        "assigned_identity_deletion",
        a,
        () =>
          this.#o.client.delete(Resources.azureAssignedIdentities, a.metadata.name, {
            namespace: a.metadata.namespace,
            preconditions: patched.metadata.uid ? { uid: patched.metadata.uid } : undefined,
          }),
      );
      this.#o.cache.expect(keyOf(a), deleted ? null : patched.metadata.resourceVersion ?? "");
    }
    await this.#event(
      this.#bindingRef(a),
      "Normal",
      Reasons.removed,
      `Binding ${a.spec.azureBindingRef.metadata.name} removed from node ${a.spec.nodeName} for pod ` +
        `${a.spec.podNamespace}/${a.spec.pod}`,
    );
  }

  /** True when the job did something (a call or a write), so the world may have changed. */
  async #runTarget(tp: TargetPlan, objects: Map<string, AzureAssignedIdentity>): Promise<boolean> {
    const release = await this.#slots.take();
    try {
      return await this.#target(tp, objects);
    } catch (e) {
      if (!(e instanceof NotLeader)) this.#log.error(`${tp.target.resourceId}: job failed`, { error: e });
      return true;
    } finally {
      release();
    }
  }

  async #target(tp: TargetPlan, objects: Map<string, AzureAssignedIdentity>): Promise<boolean> {
    const { arm } = this.#o;
    const t = tp.target;
    const idKey = (id: string) => `${t.key}|${id.toLowerCase()}`;
    const now = Date.now();
    const n = this.#o.writeConcurrency;
    // Releases that detach nothing need no ARM answer.
    await bounded(tp.release.filter((r) => !r.detach), n, (r) => this.#release(objects.get(r.key)));

    const waitingIds = tp.add.filter((id) => this.#idBackoff.blocked(idKey(id)));
    for (const id of waitingIds) this.#scheduleWake(this.#idBackoff.until(idKey(id)));
    let add = tp.add.filter((id) => !this.#idBackoff.blocked(idKey(id)));
    let assign = tp.assign.filter((a) => !this.#idBackoff.blocked(idKey(a.resourceId)) && objects.has(a.key));
    const detaching = tp.release.filter((r) => r.detach);
    const releasedOnly = tp.release.some((r) => !r.detach);
    if (!add.length && !tp.remove.length) return releasedOnly;
    this.#log.debug(`job ${t.name}`, { add: add.length, remove: tp.remove.length });
    if (this.#targetBackoff.blocked(t.key)) {
      this.#scheduleWake(this.#targetBackoff.until(t.key));
      return releasedOnly;
    }

    const affected = () =>
      [
        ...assign.map((a) => objects.get(a.key)),
        ...detaching.map((r) => objects.get(r.key)),
      ].filter((a): a is AzureAssignedIdentity => !!a);
    try {
      this.#fence();
      let current = await arm.getIdentity(t, this.#signal);
      this.#log.debug(`got ${t.name}`, { type: current?.type, ids: current?.userAssigned.length });
      if (!current) {
        // The VM / scale set is gone: nothing left to detach, nothing can be attached.
        await bounded(detaching, n, (r) => this.#release(objects.get(r.key)));
        const until = this.#targetBackoff.fail(t.key);
        this.#scheduleWake(until);
        await this.#warnAll(assign.map((a) => objects.get(a.key)), `${t.resourceId} does not exist in ARM`);
        return true;
      }
      for (let attempt = 0;; attempt++) {
        const change = identityChange(current, add, tp.remove);
        const assigning = new Set(assign.map((a) => a.resourceId.toLowerCase()));
        const putBack = change.adding.filter((id) => !assigning.has(id.toLowerCase()));
        if (putBack.length) {
          this.#log.warn(
            `${t.resourceId}: ${putBack.length} identities in use were removed outside MIC; putting them back`,
            {
              ids: putBack.join(","),
            },
          );
        }
        try {
          for (const body of change.bodies) {
            this.#fence();
            await arm.patchIdentity(t, body, this.#signal);
            this.#log.debug(`patched ${t.name}`);
          }
          break;
        } catch (e) {
          if (!(e instanceof ArmError) || !PER_ID_ERRORS.has(e.code) || attempt >= 3) throw e;
          const blamed = new Set(blamedIds(e.message));
          const bad = add.filter((id) => blamed.has(id.toLowerCase()));
          if (!bad.length) throw e;
          // Only the identities ARM blamed wait; the others go through in the next PATCH.
          for (const id of bad) {
            const until = this.#idBackoff.fail(idKey(id));
            this.#scheduleWake(until);
            const users = assign.filter((a) => a.resourceId.toLowerCase() === id.toLowerCase());
            this.#log.warn(`identity ${id} cannot be assigned to ${t.resourceId}: ${e.code}`, {
              retryInSeconds: Math.round((until - Date.now()) / 1000),
            });
            await this.#warnAll(
              users.map((a) => objects.get(a.key)),
              `${e.code}: ${id} on ${t.resourceId}: ${e.message}`,
            );
          }
          const badSet = new Set(bad.map((b) => b.toLowerCase()));
          add = add.filter((id) => !badSet.has(id.toLowerCase()));
          assign = assign.filter((a) => !badSet.has(a.resourceId.toLowerCase()));
          if (!add.length && !tp.remove.length) return true;
          this.#fence();
          current = await arm.getIdentity(t, this.#signal);
          if (!current) throw e;
        }
      }
      this.#targetBackoff.succeed(t.key);
      for (const id of add) this.#idBackoff.succeed(idKey(id));
      await bounded(assign, n, (a) => this.#markAssigned(objects.get(a.key)));
      await bounded(detaching, n, (r) => this.#release(objects.get(r.key)));
      return true;
    } catch (e) {
      if (e instanceof NotLeader) throw e;
      if (e instanceof ThrottledLocally) {
        this.#scheduleWake(e.until);
        return releasedOnly;
      }
      const retryAt = e instanceof ArmError && e.retryAfterMs !== undefined ? Date.now() + e.retryAfterMs : 0;
      const until = this.#targetBackoff.fail(t.key, retryAt);
      this.#scheduleWake(until);
      const what = e instanceof ArmError ? `${e.operation} ${e.code}` : "error";
      this.#log.warn(`${t.resourceId}: ${what}: ${errText(e)}`, {
        retryInSeconds: Math.round((until - now) / 1000),
      });
      await this.#warnAll(affected(), `${t.resourceId}: ${what}: ${errText(e)}`);
      return true;
    }
  }

  /** One Warning per binding (not per pod), so a scale set's failure is not hundreds of events. */
  async #warnAll(list: (AzureAssignedIdentity | undefined)[], message: string): Promise<void> {
    const seen = new Set<string>();
    for (const a of list) {
      if (!a) continue;
      const b = this.#bindingRef(a);
      const k = `${b.namespace}/${b.name}`;
      if (seen.has(k)) continue;
      seen.add(k);
      await this.#event(b, "Warning", Reasons.applyError, message);
    }
  }
}

function errText(e: unknown): string {
  const s = e instanceof Error ? e.message : String(e);
  return s.length > 500 ? `${s.slice(0, 497)}...` : s;
}

function pickMeta(o: KubeObject): { resourceVersion?: string; uid?: string } {
  return { resourceVersion: o.metadata.resourceVersion, uid: o.metadata.uid };
}

function refOf(a: AzureAssignedIdentity): ObjectRef {
  return {
    kind: a.kind,
    namespace: a.metadata.namespace,
    name: a.metadata.name,
    ...(a.metadata.uid ? { uid: a.metadata.uid } : {}),
  };
}
