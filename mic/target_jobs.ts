// ARM work on one VM / scale set at a time ("a job"): release what detaches nothing, skip what backs off,
// GET the identity block, PATCH the delta (an identity ARM blames waits alone, the rest goes through),
// check that every identity being assigned has the client id its AzureIdentity names, then mark Assigned
// and release. A leadership check comes right before every ARM write.

import { ArmError, type IdentityArm, ThrottledLocally } from "../lib/azure/arm_client.ts";
import { type CurrentIdentity, identityChange } from "../lib/azure/identity_delta.ts";
import type { ComputeTarget } from "../lib/azure/provider_id.ts";
import type { AzureAssignedIdentity } from "../lib/api/types.ts";
import { type AssignedWriter, errText, type FencedWork, identityRef, Reasons } from "./assigned_writer.ts";
import type { Backoffs } from "./backoffs.ts";
import { bounded } from "./bounded.ts";
import { vouchKey } from "./desired.ts";
import type { TargetPlan } from "./plan_types.ts";

export class NotLeader extends Error {
  override name = "NotLeader";
}

/** Warning reason: an AzureIdentity's clientID is not the client id ARM reports for its resourceID. */
const CLIENT_ID_MISMATCH = "ClientIDMismatch";

const BAD_ID =
  /\/subscriptions\/[^/'",\s]+\/resourcegroups\/[^/'",\s]+\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\/[A-Za-z0-9_-]+/gi;

/** The identity ids an ARM error blames (LinkedAuthorizationFailed / FailedIdentityOperation messages). */
export function blamedIds(message: string): string[] {
  return [...new Set([...message.matchAll(BAD_ID)].map((m) => m[0].toLowerCase()))];
}

const PER_ID_ERRORS = new Set(["LinkedAuthorizationFailed", "FailedIdentityOperation"]);

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

/** What a job writes to Kubernetes. */
export type JobWriter = Pick<AssignedWriter, "release" | "markAssigned" | "warnBindings" | "event">;

interface TargetJobsOptions extends FencedWork {
  arm: IdentityArm;
  writer: JobWriter;
  writeConcurrency: number;
  armConcurrency: number;
  targetBackoff: Backoffs;
  identityBackoff: Backoffs;
  /** The current leadership's signal (aborts calls in flight when it ends). */
  signal: () => AbortSignal;
  /** Asks for a cycle at `at` (a backoff ends). */
  wakeAt: (at: number) => void;
}

/** One admitted job: what is left of a target's plan after backoffs, and the objects it acts on. */
interface Job {
  target: ComputeTarget;
  add: string[];
  remove: string[];
  assign: TargetPlan["assign"];
  detaching: TargetPlan["release"];
  objects: Map<string, AzureAssignedIdentity>;
}

export class TargetJobs {
  readonly #opts: TargetJobsOptions;
  readonly #busy = new Map<string, Promise<void>>();
  readonly #slots: Slots;
  /** `vouchKey`s ARM contradicted: the client id belongs to another identity. Not tried again. */
  readonly #mismatched = new Set<string>();

  constructor(opts: TargetJobsOptions) {
    this.#opts = opts;
    this.#slots = new Slots(Math.max(1, opts.armConcurrency));
  }

  get busy(): number {
    return this.#busy.size;
  }

  isBusy(targetKey: string): boolean {
    return this.#busy.has(targetKey);
  }

  /** Resolves when no job is running. */
  async idle(): Promise<void> {
    while (this.#busy.size) await Promise.allSettled([...this.#busy.values()]);
  }

  /** Starts the job unless one runs on that target (then the next cycle plans it again). */
  start(tp: TargetPlan, objects: Map<string, AzureAssignedIdentity>, done: (acted: boolean) => void): void {
    const key = tp.target.key;
    if (this.#busy.has(key)) return;
    const job = this.#run(tp, objects).then((acted) => {
      this.#busy.delete(key);
      done(acted);
    });
    this.#busy.set(key, job);
  }

  /** True when the job did something (a call or a write), so the world may have changed. */
  async #run(tp: TargetPlan, objects: Map<string, AzureAssignedIdentity>): Promise<boolean> {
    const release = await this.#slots.take();
    try {
      return await this.#target(tp, objects);
    } catch (e) {
      if (!(e instanceof NotLeader)) {
        this.#opts.log.error(`${tp.target.resourceId}: job failed`, { error: e });
      }
      return true;
    } finally {
      release();
    }
  }

  async #target(tp: TargetPlan, objects: Map<string, AzureAssignedIdentity>): Promise<boolean> {
    const { writer, writeConcurrency: n } = this.#opts;
    // Releases that detach nothing need no ARM answer.
    const kept = tp.release.filter((r) => !r.detach);
    await bounded(kept, n, (r) => writer.release(objects.get(r.key)));
    const job = this.#admit(tp, objects);
    if (!job) return kept.length > 0;
    try {
      this.#opts.fence();
      const current = await this.#opts.arm.getIdentity(job.target, this.#opts.signal());
      this.#opts.log.debug(`got ${job.target.name}`, {
        type: current?.type,
        ids: current?.userAssigned.length,
      });
      if (!current) return await this.#targetGone(job);
      const after = await this.#patch(job, current);
      if (after) await this.#settle(job, after);
      return true;
    } catch (e) {
      if (e instanceof NotLeader) throw e;
      if (e instanceof ThrottledLocally) {
        this.#opts.wakeAt(e.until);
        return kept.length > 0;
      }
      await this.#targetFailed(job, e);
      return true;
    }
  }

  /** The part of a plan that may go now (nothing backing off), or undefined when nothing needs ARM. */
  #admit(tp: TargetPlan, objects: Map<string, AzureAssignedIdentity>): Job | undefined {
    const { identityBackoff: ids, targetBackoff, log, wakeAt } = this.#opts;
    const t = tp.target;
    const idKey = (id: string) => `${t.key}|${id.toLowerCase()}`;
    for (const id of tp.add.filter((id) => ids.blocked(idKey(id)))) wakeAt(ids.until(idKey(id)));
    const assign = tp.assign.filter((a) =>
      !ids.blocked(idKey(a.resourceId)) && objects.has(a.key) &&
      !this.#mismatched.has(vouchKey(a.resourceId, a.clientId))
    );
    // An id planned only for assignments ARM already contradicted is not asked for again.
    const refused = (id: string) => {
      const users = tp.assign.filter((a) => a.resourceId.toLowerCase() === id.toLowerCase());
      return users.length > 0 && users.every((a) => this.#mismatched.has(vouchKey(a.resourceId, a.clientId)));
    };
    const add = tp.add.filter((id) => !ids.blocked(idKey(id)) && !refused(id));
    if (!add.length && !tp.remove.length) return undefined;
    log.debug(`job ${t.name}`, { add: add.length, remove: tp.remove.length });
    if (targetBackoff.blocked(t.key)) {
      wakeAt(targetBackoff.until(t.key));
      return undefined;
    }
    const detaching = tp.release.filter((r) => r.detach);
    return { target: t, add, remove: tp.remove, assign, detaching, objects };
  }

  /** The VM / scale set is gone: nothing left to detach, nothing can be attached. */
  async #targetGone(job: Job): Promise<boolean> {
    const { writer, writeConcurrency: n, targetBackoff } = this.#opts;
    await bounded(job.detaching, n, (r) => writer.release(job.objects.get(r.key)));
    this.#opts.wakeAt(targetBackoff.fail(job.target.key));
    await writer.warnBindings(
      job.assign.map((a) => job.objects.get(a.key)),
      Reasons.applyError,
      `${job.target.resourceId} does not exist in ARM`,
    );
    return true;
  }

  /**
   * PATCHes until ARM holds every id of the job that ARM does not blame; returns the identity block ARM
   * reports afterwards, or undefined when every id to add was blamed and nothing is left to do.
   */
  async #patch(job: Job, current: CurrentIdentity): Promise<CurrentIdentity | undefined> {
    for (let attempt = 0;; attempt++) {
      const change = identityChange(current, job.add, job.remove);
      this.#warnPutBack(job, change.adding);
      try {
        let after = current;
        for (const body of change.bodies) {
          this.#opts.fence();
          after = await this.#opts.arm.patchIdentity(job.target, body, this.#opts.signal()) ?? after;
          this.#opts.log.debug(`patched ${job.target.name}`);
        }
        return after;
      } catch (e) {
        if (!(e instanceof ArmError) || !PER_ID_ERRORS.has(e.code) || attempt >= 3) throw e;
        if (!(await this.#blame(job, e))) throw e;
        if (!job.add.length && !job.remove.length) return undefined;
        this.#opts.fence();
        const again = await this.#opts.arm.getIdentity(job.target, this.#opts.signal());
        if (!again) throw e;
        current = again;
      }
    }
  }

  /** Ids in use that ARM lacks although no pod asked for them now: someone removed them (drift). */
  #warnPutBack(job: Job, adding: string[]): void {
    const assigning = new Set(job.assign.map((a) => a.resourceId.toLowerCase()));
    const putBack = adding.filter((id) => !assigning.has(id.toLowerCase()));
    if (!putBack.length) return;
    this.#opts.log.warn(
      `${job.target.resourceId}: ${putBack.length} identities in use were removed outside MIC; putting them back`,
      { ids: putBack.join(",") },
    );
  }

  /**
   * Only the identities ARM blamed wait (each with its own backoff); they leave the job so the others go
   * through in the next PATCH. False when ARM blamed none of the ids being added.
   */
  async #blame(job: Job, e: ArmError): Promise<boolean> {
    const { identityBackoff, writer, log, wakeAt } = this.#opts;
    const t = job.target;
    const blamed = new Set(blamedIds(e.message));
    const bad = job.add.filter((id) => blamed.has(id.toLowerCase()));
    if (!bad.length) return false;
    for (const id of bad) {
      const until = identityBackoff.fail(`${t.key}|${id.toLowerCase()}`);
      wakeAt(until);
      log.warn(`identity ${id} cannot be assigned to ${t.resourceId}: ${e.code}`, {
        retryInSeconds: Math.round((until - Date.now()) / 1000),
      });
      const users = job.assign.filter((a) => a.resourceId.toLowerCase() === id.toLowerCase());
      await writer.warnBindings(
        users.map((a) => job.objects.get(a.key)),
        Reasons.applyError,
        `${e.code}: ${id} on ${t.resourceId}: ${e.message}`,
      );
    }
    const badSet = new Set(bad.map((b) => b.toLowerCase()));
    job.add = job.add.filter((id) => !badSet.has(id.toLowerCase()));
    job.assign = job.assign.filter((a) => !badSet.has(a.resourceId.toLowerCase()));
    return true;
  }

  /** ARM holds the ids: backoffs cleared, objects whose client id ARM confirms Assigned, releases done. */
  async #settle(job: Job, after: CurrentIdentity): Promise<void> {
    const { writer, writeConcurrency: n, targetBackoff, identityBackoff } = this.#opts;
    const t = job.target;
    targetBackoff.succeed(t.key);
    for (const id of job.add) identityBackoff.succeed(`${t.key}|${id.toLowerCase()}`);
    const confirmed = await this.#checkClientIds(job, after);
    await bounded(confirmed, n, (a) => writer.markAssigned(job.objects.get(a.key)));
    await bounded(job.detaching, n, (r) => writer.release(job.objects.get(r.key)));
  }

  /**
   * The assignments whose AzureIdentity names the client id ARM reports for its resource id. ARM checks
   * only the resource id; an AzureIdentity with its own resource id and another identity's client id would
   * otherwise get that other identity's tokens from NMI. Refused ones stay Created, with a Warning on the
   * AzureIdentity naming both ids.
   */
  async #checkClientIds(job: Job, after: CurrentIdentity): Promise<Job["assign"]> {
    const reported = new Map(after.userAssigned.map((u) => [u.id.toLowerCase(), u.clientId?.toLowerCase()]));
    const confirmed: Job["assign"] = [];
    for (const a of job.assign) {
      const armClientId = reported.get(a.resourceId.toLowerCase());
      if (armClientId === undefined || armClientId === a.clientId.trim().toLowerCase()) {
        confirmed.push(a);
        continue;
      }
      if (this.#mismatched.size > 10_000) this.#mismatched.clear();
      this.#mismatched.add(vouchKey(a.resourceId, a.clientId));
      const obj = job.objects.get(a.key);
      const message = `spec.clientID ${a.clientId} does not belong to spec.resourceID ${a.resourceId} ` +
        `(ARM reports client id ${armClientId} for it); not assigned`;
      this.#opts.log.warn(`AzureIdentity ${obj ? identityRef(obj).name : a.key}: ${message}`);
      if (obj) await this.#opts.writer.event(identityRef(obj), "Warning", CLIENT_ID_MISMATCH, message);
    }
    return confirmed;
  }

  /** A failed call: the target backs off (at least as long as ARM's Retry-After), bindings are told. */
  async #targetFailed(job: Job, e: unknown): Promise<void> {
    const { targetBackoff, writer, log } = this.#opts;
    const t = job.target;
    const retryAt = e instanceof ArmError && e.retryAfterMs !== undefined ? Date.now() + e.retryAfterMs : 0;
    const until = targetBackoff.fail(t.key, retryAt);
    this.#opts.wakeAt(until);
    const what = e instanceof ArmError ? `${e.operation} ${e.code}` : "error";
    const message = `${t.resourceId}: ${what}: ${errText(e)}`;
    log.warn(message, { retryInSeconds: Math.round((until - Date.now()) / 1000) });
    const objectsOf = (list: { key: string }[]) => list.map((x) => job.objects.get(x.key));
    await writer.warnBindings(objectsOf(job.assign), Reasons.applyError, message);
    await writer.warnBindings(objectsOf(job.detaching), Reasons.removeError, message);
  }
}
