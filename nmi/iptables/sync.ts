// Keeps the redirection in place for NMI's whole life: the first sync before NMI reports ready (the rules
// and the localnet guard, then route_localnet, then a conntrack flush so connections opened before the
// rules cannot bypass them), then a re-check every interval that repairs any drift of either chain. Fail
// closed: stopping leaves the rules, so while NMI restarts pods get "connection refused" (and retry) instead
// of reaching IMDS and every identity on the node.

import type { Logger } from "../../lib/log.ts";
import { HostNetwork } from "./apply.ts";
import { describeDrift, needsLocalnetGuard, type RedirectSpec } from "./rules.ts";

export interface RedirectSyncOptions {
  spec: RedirectSpec;
  intervalMs: number;
  log: Logger;
  host?: HostNetwork;
  /** Flush conntrack entries to the metadata endpoint after the first sync (default true). */
  flushConntrack?: boolean;
  /** Remove the rules on stop, as the original did (default false: fail closed). */
  removeOnStop?: boolean;
}

export class RedirectSync {
  readonly host: HostNetwork;
  #o: RedirectSyncOptions;
  #inPlace = false;
  #installed = false;
  #lastError = "";
  #repairs = 0;

  constructor(opts: RedirectSyncOptions) {
    this.#o = opts;
    this.host = opts.host ?? new HostNetwork();
  }

  /** True once the rules were verified in place and the last sync succeeded. */
  get inPlace(): boolean {
    return this.#inPlace;
  }

  get repairs(): number {
    return this.#repairs;
  }

  get lastError(): string {
    return this.#lastError;
  }

  /** The first sync; throws (a clear HostNetworkError) when the host cannot be set up at all. */
  async setUp(): Promise<void> {
    const { spec, log } = this.#o;
    // The guard against CVE-2020-8558 goes in with the same sync, before any pod can use the new route.
    await this.#sync();
    if (needsLocalnetGuard(spec) && await this.host.ensureRouteLocalnet()) {
      log.info("enabled net.ipv4.conf.all.route_localnet for DNAT to loopback (guarded)");
    }
    if (this.#o.flushConntrack ?? true) {
      const n = await this.host.flushConntrack(spec.metadataIp, spec.metadataPort);
      log.info(
        `conntrack: deleted ${n} connection(s) to ${spec.metadataIp}:${spec.metadataPort} opened before the rules`,
      );
    }
  }

  async #sync(): Promise<void> {
    const drift = await this.host.ensureRedirect(this.#o.spec);
    if (drift.length) {
      const what = drift.map(describeDrift).join("; ");
      // At start-up a missing chain is expected; later, any drift means someone changed our rules.
      if (this.#installed) {
        this.#repairs++;
        this.#o.log.warn(`iptables: repaired ${what}`);
      } else this.#o.log.info(`iptables: installed redirection (${what})`);
    }
    this.#inPlace = this.#installed = true;
    this.#lastError = "";
  }

  /** Re-checks every interval until `signal` aborts; errors are logged once per distinct cause. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.#o.intervalMs);
        signal.addEventListener("abort", () => {
          clearTimeout(t);
          resolve();
        }, { once: true });
      });
      if (signal.aborted) break;
      try {
        await this.#sync();
      } catch (e) {
        const msg = (e as Error).message;
        this.#inPlace = false;
        if (msg !== this.#lastError) this.#o.log.error(`iptables sync failed: ${msg}`);
        this.#lastError = msg;
      }
    }
  }

  /** On shutdown: keep the rules (fail closed) unless told to remove them. */
  async stop(): Promise<void> {
    if (!this.#o.removeOnStop) {
      this.#o.log.info("iptables: leaving the redirection in place (fail closed)");
      return;
    }
    if (await this.host.removeRedirect(this.#o.spec)) this.#o.log.info("iptables: redirection removed");
  }
}
