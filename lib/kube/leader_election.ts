// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection: take the lease when
// it is free or its holder stopped renewing for a lease duration, renew every retry period, and stop calling
// ourselves leader when renewDeadline passes without a successful renew.
//
// Fencing is by our own monotonic clock, with the two ends measured in the safe direction:
// - a standby starts a holder's lease duration when its GET *returns* with a changed record (the holder's
//   write happened before that), so clock skew between replicas does not matter;
// - the leader's deadline runs from when its successful write was *sent* (the write cannot have happened
//   earlier), so a slow answer shortens its leadership instead of stretching it past the lease.
// renewDeadline < leaseDuration, so the leader's signal aborts before any standby can take the lease.
// Lease timestamps written to the API stay wall-clock MicroTime, as every other client expects.

import { isoTime } from "../time_text.ts";
import type { Logger } from "../log.ts";
import { log as defaultLog } from "../log.ts";
import { sleep } from "../sleep.ts";
import { CauseLog } from "./cause_log.ts";
import { KubeApiError } from "./api_error.ts";
import type { KubeClient } from "./rest.ts";
import { collectionPath, objectPath, Resources } from "./resource.ts";
import type { LeaseSpec } from "./builtin_proto.ts";
import type { KubeObject } from "./types.ts";

export type Lease = KubeObject & { spec?: LeaseSpec };

interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  /** This replica's identity (upstream MIC: the hostname). */
  identity: string;
  /** How long a non-renewed lease blocks others (default 15 s, as upstream MIC). */
  leaseDurationMs?: number;
  /** Leadership ends when renewals fail for this long (default 10 s, client-go's ratio to 15 s). */
  renewDeadlineMs?: number;
  /** Pause between acquire attempts and between renewals (default 2 s). */
  retryPeriodMs?: number;
  /** On shutdown, hand the lease back so a standby takes over at once (default true). */
  releaseOnCancel?: boolean;
  /** Called when this replica becomes leader; `signal` aborts when leadership ends for any reason. */
  onStartedLeading?: (signal: AbortSignal) => void | Promise<void>;
  onStoppedLeading?: () => void;
  /** Called when the observed holder changes (this replica included). */
  onNewLeader?: (identity: string) => void;
  /** A still-failing cause is logged again after this long (default 5 minutes). */
  repeatLogMs?: number;
  log?: Logger;
}

/** Lease times are metav1.MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return isoTime(ms).replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** The monotonic clock every deadline here uses: wall-clock jumps must not extend or cut leadership. */
const monotonic = () => performance.now();

/** What a failed lease request is, for logging once per cause. */
function causeOf(e: unknown): { cause: string; message: string } {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof KubeApiError) return { cause: `${e.status}:${e.reason}`, message };
  return { cause: `other:${message}`, message };
}

export class LeaderElector {
  readonly identity: string;
  #config:
    & Required<
      Pick<LeaderElectionOptions, "leaseDurationMs" | "renewDeadlineMs" | "retryPeriodMs" | "releaseOnCancel">
    >
    & LeaderElectionOptions;
  #log: Logger;
  #causes: CauseLog;
  #leading = false;
  /** Monotonic: the send time of the last successful acquire/renew plus renewDeadline. */
  #validUntil = 0;
  #observed: { rv?: string; spec: LeaseSpec } | undefined;
  /** Monotonic: when a GET returned the current record (or our own write of it was answered). */
  #observedAt = 0;
  #leader: string | undefined;
  #lease: Lease | undefined;

  constructor(opts: LeaderElectionOptions) {
    this.#config = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      releaseOnCancel: true,
      ...opts,
    };
    const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = this.#config;
    if (!(leaseDurationMs > renewDeadlineMs && renewDeadlineMs > retryPeriodMs && retryPeriodMs > 0)) {
      throw new RangeError("leader election needs leaseDuration > renewDeadline > retryPeriod > 0");
    }
    if (!opts.identity) throw new RangeError("leader election needs a non-empty identity");
    this.identity = opts.identity;
    this.#log = opts.log ?? defaultLog;
    this.#causes = new CauseLog(opts.repeatLogMs ?? 300_000);
  }

  /**
   * True only while this replica holds the lease as last observed and its last successful acquire/renew
   * was sent less than renewDeadline ago: safe to act on.
   */
  isLeader(): boolean {
    return this.#leading && this.#leader === this.identity && monotonic() < this.#validUntil;
  }

  /** The holder last seen on the lease (possibly this replica), if any. */
  get leader(): string | undefined {
    return this.#leader;
  }

  /**
   * Campaigns until leader, leads until leadership is lost or `signal` aborts, then returns. Like client-go,
   * it does not campaign again: a replica that lost the lease should restart with fresh state.
   */
  async run(signal: AbortSignal): Promise<void> {
    const { retryPeriodMs } = this.#config;
    const lease = `${this.#config.namespace}/${this.#config.name}`;
    while (!signal.aborted) {
      if (await this.#tryAcquireOrRenew(signal)) break;
      // Jitter spreads standbys so they do not all hit the lease at the same instant.
      await sleep(retryPeriodMs * (1 + 0.2 * Math.random()), signal);
    }
    if (signal.aborted) return;

    this.#log.info(`leader election: ${this.identity} became leader of lease ${lease}`);
    const leading = new AbortController();
    // Fencing by clock: even if a renew request hangs, leadership ends at the deadline of the last
    // successful write, counted from when it was sent.
    let fence: ReturnType<typeof setTimeout> | undefined;
    const armFence = () => {
      clearTimeout(fence);
      fence = setTimeout(() => leading.abort(), Math.max(0, this.#validUntil - monotonic()));
    };
    armFence();
    const started = (async () => {
      try {
        await this.#config.onStartedLeading?.(leading.signal);
      } catch (e) {
        this.#log.error("leader election: onStartedLeading failed", { error: e });
      }
    })();
    try {
      while (!signal.aborted && !leading.signal.aborted) {
        const stop = AbortSignal.any([signal, leading.signal]);
        if (!(await sleep(retryPeriodMs, stop))) break;
        const renewed = await this.#tryAcquireOrRenew(stop);
        if (leading.signal.aborted) break;
        if (renewed) armFence();
        // Someone else holds the lease now (taken over, or edited by hand): stop at once, not at the fence.
        else if (this.#leader !== this.identity) leading.abort();
      }
    } finally {
      clearTimeout(fence);
      this.#leading = false;
      leading.abort();
    }
    if (signal.aborted && this.#config.releaseOnCancel) await this.#release();
    if (!signal.aborted) this.#log.warn(`leader election: ${this.identity} lost lease ${lease}`);
    await started;
    try {
      this.#config.onStoppedLeading?.();
    } catch (e) {
      this.#log.error("leader election: onStoppedLeading failed", { error: e });
    }
  }

  async #tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { namespace, name } = this.#config;
    try {
      const ok = await this.#acquireOrRenew(signal);
      const failed = this.#causes.recovered();
      if (failed > 0) {
        this.#log.info(
          `leader election: lease ${namespace}/${name} reachable again after ${failed} failures`,
        );
      }
      return ok;
    } catch (e) {
      if (signal.aborted) return false;
      const { cause, message } = causeOf(e);
      if (this.#causes.failed(cause)) {
        this.#log.warn(`leader election: lease ${namespace}/${name}: ${message}`, {
          identity: this.identity,
          attempt: this.#causes.failures,
        });
      }
      return false;
    }
  }

  /**
   * The signal for one request: a leader's may not outlive its current leadership; a candidate's write is
   * worthless once renewDeadline passed since it was sent, so no request waits longer than that.
   */
  #requestSignal(signal: AbortSignal): AbortSignal {
    const budget = this.#leading ? Math.max(1, this.#validUntil - monotonic()) : this.#config.renewDeadlineMs;
    return AbortSignal.any([signal, AbortSignal.timeout(budget)]);
  }

  /** One acquire or renew attempt; false when another holder's lease is still valid or a write lost a race. */
  async #acquireOrRenew(outer: AbortSignal): Promise<boolean> {
    const { client, namespace, name, leaseDurationMs } = this.#config;
    const path = objectPath(Resources.leases, name, namespace);
    const wall = Date.now();
    const mine: LeaseSpec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
      acquireTime: microTime(wall),
      renewTime: microTime(wall),
      leaseTransitions: 0,
    };
    // Fast path, as client-go: the leader renews the record it wrote last, one round trip instead of two.
    // A conflict means the record changed under us; the slow path below finds out how.
    const held = this.#lease;
    if (this.#leading && held && this.#leader === this.identity) {
      const spec: LeaseSpec = {
        ...mine,
        acquireTime: held.spec?.acquireTime ?? mine.acquireTime,
        leaseTransitions: held.spec?.leaseTransitions ?? 0,
      };
      const renewed = await this.#put(path, { ...held, spec }, outer);
      if (renewed !== "conflict") return renewed;
    }

    let current: Lease;
    try {
      current = await client.request<Lease>("GET", path, { signal: this.#requestSignal(outer) });
    } catch (e) {
      if (!(e instanceof KubeApiError && e.isNotFound)) throw e;
      return await this.#create(mine, outer);
    }
    // The expiry clock of another holder starts when this answer arrived, not when it was asked for.
    const returnedAt = monotonic();
    this.#observe(current, returnedAt);
    const old = current.spec ?? {};
    const holder = old.holderIdentity ?? "";
    const durationMs = (old.leaseDurationSeconds ?? 0) * 1000;
    if (holder !== "" && holder !== this.identity && this.#observedAt + durationMs > returnedAt) return false;
    const spec: LeaseSpec = holder === this.identity && this.#leading
      ? {
        ...mine,
        acquireTime: old.acquireTime ?? mine.acquireTime,
        leaseTransitions: old.leaseTransitions ?? 0,
      }
      : { ...mine, leaseTransitions: (old.leaseTransitions ?? 0) + (holder === this.identity ? 0 : 1) };
    return (await this.#put(path, { ...current, spec }, outer)) === true;
  }

  /**
   * Writes the lease back; its resourceVersion makes this a compare-and-swap, so two standbys cannot both
   * take it. "conflict" when the record changed under us.
   */
  async #put(path: string, lease: Lease, outer: AbortSignal): Promise<boolean | "conflict"> {
    const sentAt = monotonic();
    try {
      const updated = await this.#config.client.request<Lease>("PUT", path, {
        signal: this.#requestSignal(outer),
        body: lease,
      });
      return this.#wrote(updated, sentAt);
    } catch (e) {
      if (e instanceof KubeApiError && e.isConflict) return "conflict";
      throw e;
    }
  }

  /** No lease yet: create it with us as holder; false when another replica created it first. */
  async #create(mine: LeaseSpec, outer: AbortSignal): Promise<boolean> {
    const { client, namespace, name } = this.#config;
    const sentAt = monotonic();
    try {
      const created = await client.request<Lease>("POST", collectionPath(Resources.leases, namespace), {
        signal: this.#requestSignal(outer),
        body: {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: mine,
        },
      });
      return this.#wrote(created, sentAt);
    } catch (e) {
      if (e instanceof KubeApiError && e.isAlreadyExists) return false;
      throw e;
    }
  }

  /** Our write of the lease succeeded; it makes us leader until sentAt + renewDeadline, if that is still ahead. */
  #wrote(lease: Lease, sentAt: number): boolean {
    const answeredAt = monotonic();
    this.#observe(lease, answeredAt);
    const validUntil = sentAt + this.#config.renewDeadlineMs;
    // An answer that took longer than the deadline gives no leadership at all.
    if (answeredAt >= validUntil) return false;
    this.#leading = true;
    this.#validUntil = validUntil;
    return true;
  }

  #observe(lease: Lease, at: number): void {
    this.#lease = lease;
    const spec = lease.spec ?? {};
    if (!this.#observed || this.#observed.rv !== lease.metadata.resourceVersion) {
      this.#observed = { rv: lease.metadata.resourceVersion, spec };
      this.#observedAt = at;
    }
    const holder = spec.holderIdentity || undefined;
    if (holder !== this.#leader) {
      this.#leader = holder;
      if (holder) {
        try {
          this.#config.onNewLeader?.(holder);
        } catch (e) {
          this.#log.error("leader election: onNewLeader failed", { error: e });
        }
      }
    }
  }

  /** Empties the holder so a standby can take the lease without waiting out its duration. */
  async #release(): Promise<void> {
    const lease = this.#lease;
    if (!lease || lease.spec?.holderIdentity !== this.identity) return;
    const now = Date.now();
    try {
      const released = await this.#config.client.request<Lease>(
        "PUT",
        objectPath(Resources.leases, this.#config.name, this.#config.namespace),
        {
          signal: AbortSignal.timeout(this.#config.renewDeadlineMs),
          body: {
            ...lease,
            spec: {
              holderIdentity: "",
              leaseDurationSeconds: 1,
              acquireTime: microTime(now),
              renewTime: microTime(now),
              leaseTransitions: lease.spec?.leaseTransitions ?? 0,
            },
          },
        },
      );
      this.#observe(released, monotonic());
      this.#log.info(
        `leader election: ${this.identity} released lease ${this.#config.namespace}/${this.#config.name}`,
      );
    } catch (e) {
      this.#log.warn(`leader election: release failed, others wait out the lease`, { error: e });
    }
  }
}
