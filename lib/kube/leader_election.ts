// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection: take the lease when
// it is free or its holder stopped renewing for a lease duration (judged by our own clock from when we saw
// the record change, so clock skew between replicas does not matter), renew every retry period, and stop
// calling ourselves leader as soon as renewDeadline passes without a successful renew. renewDeadline is
// shorter than leaseDuration, so a partitioned leader always steps down before anyone else can take over.

import type { Logger } from "../log.ts";
import { log as defaultLog } from "../log.ts";
import { sleep } from "./backoff.ts";
import { KubeApiError, type KubeClient, objectPath, Resources } from "./rest.ts";
import type { KubeObject } from "./types.ts";

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export type Lease = KubeObject & { spec?: LeaseSpec };

export interface LeaderElectionOptions {
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
  log?: Logger;
}

/** Lease times are metav1.MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export class LeaderElector {
  readonly identity: string;
  #o:
    & Required<
      Pick<LeaderElectionOptions, "leaseDurationMs" | "renewDeadlineMs" | "retryPeriodMs" | "releaseOnCancel">
    >
    & LeaderElectionOptions;
  #log: Logger;
  #leading = false;
  #lastRenew = 0;
  #observed: { rv?: string; spec: LeaseSpec } | undefined;
  #observedAt = 0;
  #leader: string | undefined;
  #lease: Lease | undefined;

  constructor(opts: LeaderElectionOptions) {
    this.#o = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      releaseOnCancel: true,
      ...opts,
    };
    const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = this.#o;
    if (!(leaseDurationMs > renewDeadlineMs && renewDeadlineMs > retryPeriodMs && retryPeriodMs > 0)) {
      throw new RangeError("leader election needs leaseDuration > renewDeadline > retryPeriod > 0");
    }
    if (!opts.identity) throw new RangeError("leader election needs a non-empty identity");
    this.identity = opts.identity;
    this.#log = opts.log ?? defaultLog;
  }

  /** True only while the last successful renew is younger than renewDeadline: safe to act on. */
  isLeader(): boolean {
    return this.#leading && Date.now() - this.#lastRenew < this.#o.renewDeadlineMs;
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
    const { retryPeriodMs, renewDeadlineMs } = this.#o;
    const lease = `${this.#o.namespace}/${this.#o.name}`;
    while (!signal.aborted) {
      if (await this.#tryAcquireOrRenew(signal)) break;
      // Jitter spreads standbys so they do not all hit the lease at the same instant.
      await sleep(retryPeriodMs * (1 + 0.2 * Math.random()), signal);
    }
    if (signal.aborted) return;

    this.#log.info(`leader election: ${this.identity} became leader of lease ${lease}`);
    const leading = new AbortController();
    // Fencing by clock: even if a renew request hangs, leadership ends exactly at the deadline.
    let fence = setTimeout(() => leading.abort(), renewDeadlineMs);
    const started = (async () => {
      try {
        await this.#o.onStartedLeading?.(leading.signal);
      } catch (e) {
        this.#log.error("leader election: onStartedLeading failed", { error: e });
      }
    })();
    try {
      while (!signal.aborted && !leading.signal.aborted) {
        const stop = AbortSignal.any([signal, leading.signal]);
        if (!(await sleep(retryPeriodMs, stop))) break;
        const renewed = await this.#tryAcquireOrRenew(stop);
        if (renewed && !leading.signal.aborted) {
          clearTimeout(fence);
          fence = setTimeout(() => leading.abort(), renewDeadlineMs);
        }
      }
    } finally {
      clearTimeout(fence);
      this.#leading = false;
      leading.abort();
    }
    if (signal.aborted && this.#o.releaseOnCancel) await this.#release();
    if (!signal.aborted) this.#log.warn(`leader election: ${this.identity} lost lease ${lease}`);
    await started;
    try {
      this.#o.onStoppedLeading?.();
    } catch (e) {
      this.#log.error("leader election: onStoppedLeading failed", { error: e });
    }
  }

  async #tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { client, namespace, name, leaseDurationMs, renewDeadlineMs } = this.#o;
    const path = objectPath(Resources.leases, name, namespace);
    const now = Date.now();
    // A request may not outlive the time we can still call ourselves leader.
    const budget = this.#leading ? Math.max(1, this.#lastRenew + renewDeadlineMs - now) : renewDeadlineMs;
    const reqSignal = AbortSignal.any([signal, AbortSignal.timeout(budget)]);
    const mine: LeaseSpec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    try {
      let current: Lease;
      try {
        current = await client.request<Lease>("GET", path, { signal: reqSignal });
      } catch (e) {
        if (!(e instanceof KubeApiError && e.isNotFound)) throw e;
        const created = await client.request<Lease>("POST", path.slice(0, path.lastIndexOf("/")), {
          signal: reqSignal,
          body: {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name, namespace },
            spec: mine,
          },
        });
        this.#observe(created, now);
        this.#renewed(now);
        return true;
      }
      this.#observe(current, now);
      const old = current.spec ?? {};
      const holder = old.holderIdentity ?? "";
      const durationMs = (old.leaseDurationSeconds ?? 0) * 1000;
      if (holder !== "" && holder !== this.identity && this.#observedAt + durationMs > now) return false;
      const spec: LeaseSpec = holder === this.identity && this.#leading
        ? {
          ...mine,
          acquireTime: old.acquireTime ?? mine.acquireTime,
          leaseTransitions: old.leaseTransitions ?? 0,
        }
        : { ...mine, leaseTransitions: (old.leaseTransitions ?? 0) + (holder === this.identity ? 0 : 1) };
      // The resourceVersion makes this a compare-and-swap: two standbys cannot both take the same lease.
      const updated = await client.request<Lease>("PUT", path, {
        signal: reqSignal,
        body: { ...current, spec },
      });
      this.#observe(updated, now);
      this.#renewed(now);
      return true;
    } catch (e) {
      if (signal.aborted) return false;
      if (e instanceof KubeApiError && e.isConflict) return false;
      const msg = e instanceof Error ? e.message : String(e);
      this.#log.warn(`leader election: lease ${namespace}/${name}: ${msg}`, { identity: this.identity });
      return false;
    }
  }

  #renewed(at: number): void {
    this.#leading = true;
    this.#lastRenew = at;
  }

  #observe(lease: Lease, now: number): void {
    this.#lease = lease;
    const spec = lease.spec ?? {};
    if (!this.#observed || this.#observed.rv !== lease.metadata.resourceVersion) {
      this.#observed = { rv: lease.metadata.resourceVersion, spec };
      this.#observedAt = now;
    }
    const holder = spec.holderIdentity || undefined;
    if (holder !== this.#leader) {
      this.#leader = holder;
      if (holder) {
        try {
          this.#o.onNewLeader?.(holder);
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
      const released = await this.#o.client.request<Lease>(
        "PUT",
        objectPath(Resources.leases, this.#o.name, this.#o.namespace),
        {
          signal: AbortSignal.timeout(this.#o.renewDeadlineMs),
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
      this.#observe(released, now);
      this.#log.info(`leader election: ${this.identity} released lease ${this.#o.namespace}/${this.#o.name}`);
    } catch (e) {
      this.#log.warn(`leader election: release failed, others wait out the lease`, { error: e });
    }
  }
}
