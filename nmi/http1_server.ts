// NMI's HTTP/1.1 server: its own accept loop over Deno.listen, because every pod on the node can open
// connections to it and Deno.serve offers no defence (issue 19 item 1): an accept error such as EMFILE
// killed the process, and idle or slow connections were held forever. Here:
// - an accept error is logged once, backed off (5 ms doubling to 1 s) and accepting goes on;
// - at most `maxConnectionsPerIp` connections per source address and `maxConnections` in all: more are
//   closed at once, so one pod cannot exhaust file descriptors or memory;
// - a request head must arrive within `headTimeoutMs` (whole head: slow heads are cut), a kept-alive
//   connection may idle `idleTimeoutMs` before its next request, a body must be read within `bodyTimeoutMs`;
// - heads over `maxHeadBytes` get 431; bodies are streamed to the handler, never buffered here;
// - the request's signal aborts when the client closes its connection while the answer is being made.
// This file accepts and admits connections; each connection is served by nmi/http1_connection.ts (heads
// parsed strictly in nmi/http1_head.ts, bodies streamed by nmi/http1_body.ts, answers with Content-Length).

import type { Logger } from "../lib/log.ts";
import { Connection, SWEEP_MS } from "./http1_connection.ts";
import {
  closeQuietly,
  DEFAULT_LIMITS,
  type Http1Handler,
  type Http1Limits,
  type Http1Stats,
} from "./http1_types.ts";

interface Http1ServerOptions {
  hostname: string;
  port: number;
  handler: Http1Handler;
  log: Logger;
  limits?: Partial<Http1Limits>;
  signal?: AbortSignal;
}

export class Http1Server {
  readonly addr: Deno.NetAddr;
  readonly finished: Promise<void>;
  readonly limits: Http1Limits;
  readonly stats: Http1Stats = {
    accepted: 0,
    requests: 0,
    refusedPerIp: 0,
    refusedTotal: 0,
    acceptErrors: 0,
    timedOut: 0,
  };
  #opts: Http1ServerOptions;
  #listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>;
  #perIp = new Map<string, number>();
  #open = new Set<Connection>();
  #closing = false;
  #wake?: () => void;
  #lastRefusalLog = 0;
  #sweeper: ReturnType<typeof setInterval>;

  constructor(opts: Http1ServerOptions) {
    this.#opts = opts;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.#listener = Deno.listen({ hostname: opts.hostname, port: opts.port, transport: "tcp" });
    this.addr = this.#listener.addr;
    opts.signal?.addEventListener("abort", () => this.shutdown(), { once: true });
    // One sweep for every connection's deadline, instead of timers set and cleared on every request.
    this.#sweeper = setInterval(() => {
      const now = performance.now();
      for (const c of this.#open) c.sweep(now);
    }, SWEEP_MS);
    Deno.unrefTimer(this.#sweeper);
    this.finished = this.#acceptLoop().then(async () => {
      while (this.#open.size) await Promise.allSettled([...this.#open].map((c) => c.done));
      clearInterval(this.#sweeper);
    });
  }

  /** Connections open now. */
  get connections(): number {
    return this.#open.size;
  }

  /** Stops accepting; idle connections close now, busy ones after their answer. */
  shutdown(): void {
    if (this.#closing) return;
    this.#closing = true;
    closeQuietly(this.#listener);
    this.#wake?.();
    for (const c of this.#open) c.closeIfIdle();
  }

  get closing(): boolean {
    return this.#closing;
  }

  async #acceptLoop(): Promise<void> {
    let backoff = 0;
    // Logged once per distinct error and at most once a minute: a flood of connections must not flood logs.
    let logged = { error: "", at: -Infinity, pending: false };
    while (!this.#closing) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#closing) break;
        this.stats.acceptErrors++;
        const error = e instanceof Error ? e.message : String(e);
        const now = performance.now();
        if (error !== logged.error || now - logged.at > 60_000) {
          this.#opts.log.error("accepting a connection failed; backing off", { error });
          logged = { error, at: now, pending: true };
        }
        backoff = Math.min(1000, backoff ? backoff * 2 : 5);
        await new Promise<void>((r) => {
          const t = setTimeout(r, backoff);
          this.#wake = () => (clearTimeout(t), r());
        });
        continue;
      }
      if (logged.pending) {
        this.#opts.log.info("accepting connections again", { errors: this.stats.acceptErrors });
        logged.pending = false;
      }
      backoff = 0;
      this.#admit(conn);
    }
  }

  #admit(conn: Deno.TcpConn): void {
    const ip = conn.remoteAddr.hostname;
    const n = this.#perIp.get(ip) ?? 0;
    if (n >= this.limits.maxConnectionsPerIp || this.#open.size >= this.limits.maxConnections) {
      if (n >= this.limits.maxConnectionsPerIp) this.stats.refusedPerIp++;
      else this.stats.refusedTotal++;
      closeQuietly(conn);
      const now = performance.now();
      if (now - this.#lastRefusalLog > 10_000) {
        this.#lastRefusalLog = now;
        this.#opts.log.warn("connections refused: over the connection limits", {
          ip,
          perIp: this.limits.maxConnectionsPerIp,
          total: this.limits.maxConnections,
          refused: this.stats.refusedPerIp + this.stats.refusedTotal,
        });
      }
      return;
    }
    this.stats.accepted++;
    this.#perIp.set(ip, n + 1);
    try {
      conn.setNoDelay(true);
    } catch { /* not fatal */ }
    const c = new Connection(conn, this, this.#opts.handler);
    this.#open.add(c);
    c.done = c.run().finally(() => {
      this.#open.delete(c);
      const left = (this.#perIp.get(ip) ?? 1) - 1;
      if (left > 0) this.#perIp.set(ip, left);
      else this.#perIp.delete(ip);
    });
  }
}
