// A kubeconfig user's requests over lib/kube's own HTTP/2 connections (connection.ts says why), per
// server URL: one connection for everything, a second only when the first takes no more streams (the
// server's MAX_CONCURRENT_STREAMS, or a GOAWAY), as Go's transport does. Where it cannot work as fetch
// would, it declines and the caller uses fetch: a plain-http server, a proxy from the environment (fetch
// honours HTTPS_PROXY; this transport does not speak CONNECT), or a server whose ALPN does not offer h2.

import { Http2Connection, Http2Error, type Http2Target } from "./connection.ts";
import type { Http2Options } from "./options.ts";
import { statusText } from "./status_text.ts";

interface Http2TransportTls {
  caCerts?: string[];
  cert?: string;
  key?: string;
}

/** Retries of a request the server never processed (GOAWAY past it, REFUSED_STREAM). */
const RETRIES = 2;

/** The connections to one server URL. */
class Origin {
  readonly target: Http2Target;
  readonly prefix: string;
  connections: Http2Connection[] = [];
  opening: Promise<Http2Connection | "not-h2"> | undefined;
  declined = false;

  constructor(url: URL, tls: Http2TransportTls) {
    const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
    this.target = { hostname, port: Number(url.port || 443), authority: url.host, ...tls };
    this.prefix = url.pathname.replace(/\/+$/, "");
  }
}

export class Http2Transport {
  readonly #tls: Http2TransportTls;
  readonly #env: (name: string) => string | undefined;
  readonly #options: Http2Options;
  readonly #origins = new Map<string, Origin | "fetch">();
  #closed = false;

  /** `tls`: the cluster's CA and the user's client certificate (PEM), as fetch's HttpClient has them. */
  constructor(tls: Http2TransportTls, env: (name: string) => string | undefined, options: Http2Options = {}) {
    this.#tls = tls;
    this.#env = env;
    this.#options = options;
  }

  /** Connections open now, over all servers (for tests). */
  get connections(): number {
    let n = 0;
    for (const o of this.#origins.values()) if (o !== "fetch") n += o.connections.length;
    return n;
  }

  /**
   * `method server + path` (path and query). Undefined when fetch must carry it: a plain-http server, a
   * proxy from the environment, or a server that turned out not to speak HTTP/2. Network failures reject
   * with Http2Error; an abort of `signal` rejects (or fails the body) with its reason, as fetch does.
   */
  async request(
    server: string,
    method: string,
    path: string,
    headers: Headers,
    body?: Uint8Array,
    signal?: AbortSignal,
  ): Promise<Response | undefined> {
    const origin = this.#origin(server);
    if (origin === "fetch") return undefined;
    for (let attempt = 0;; attempt++) {
      const conn = await this.#connection(origin, signal);
      if (!conn) return undefined;
      try {
        const answer = await conn.request(method, origin.prefix + path, headers, body, signal);
        let stream: ReadableStream<Uint8Array> | null = answer.body;
        if ([204, 205, 304].includes(answer.status)) {
          await stream.cancel();
          stream = null;
        } else if (answer.headers.get("content-encoding") === "gzip") {
          stream = stream.pipeThrough<Uint8Array>(
            new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
          );
          answer.headers.delete("content-encoding");
        }
        return new Response(stream, {
          status: answer.status,
          statusText: statusText(answer.status),
          headers: answer.headers,
        });
      } catch (e) {
        if (e instanceof Http2Error && e.retryable && attempt < RETRIES && !signal?.aborted) continue;
        throw e;
      }
    }
  }

  /** Closes every connection; streams still open fail. */
  close(): void {
    this.#closed = true;
    for (const o of this.#origins.values()) {
      if (o === "fetch") continue;
      for (const c of o.connections) c.close();
      o.connections = [];
    }
  }

  #origin(server: string): Origin | "fetch" {
    let origin = this.#origins.get(server);
    if (!origin) {
      const url = new URL(server);
      origin = url.protocol !== "https:" || proxied(url.hostname, this.#env)
        ? "fetch"
        : new Origin(url, this.#tls);
      this.#origins.set(server, origin);
    }
    return origin;
  }

  async #connection(origin: Origin, signal?: AbortSignal): Promise<Http2Connection | undefined> {
    while (true) {
      if (origin.declined) return undefined;
      if (this.#closed) throw new Http2Error("the client is closed");
      const ready = origin.connections.find((c) => c.usable);
      if (ready) return ready;
      origin.opening ??= this.#open(origin).finally(() => origin.opening = undefined);
      const opened = await (signal ? abortable(origin.opening, signal) : origin.opening);
      if (opened === "not-h2") return undefined;
      // Several waiters may have filled it already: look again.
    }
  }

  async #open(origin: Origin): Promise<Http2Connection | "not-h2"> {
    let opened: Http2Connection | "not-h2";
    try {
      opened = await Http2Connection.open(origin.target, this.#options);
    } catch (e) {
      throw new Http2Error(`cannot connect: ${e instanceof Error ? e.message : String(e)}`, false, {
        cause: e,
      });
    }
    if (opened === "not-h2") {
      origin.declined = true;
      return opened;
    }
    const conn = opened;
    if (this.#closed) {
      conn.close();
      throw new Http2Error("the client is closed");
    }
    conn.onGone = () => origin.connections = origin.connections.filter((c) => c !== conn);
    origin.connections.push(conn);
    return conn;
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * True when fetch would send requests to `host` through a proxy: HTTPS_PROXY or ALL_PROXY is set (either
 * case) and NO_PROXY does not name the host, a domain it is in, or `*`.
 */
export function proxied(host: string, env: (name: string) => string | undefined): boolean {
  const proxy = env("HTTPS_PROXY") ?? env("https_proxy") ?? env("ALL_PROXY") ?? env("all_proxy");
  if (!proxy) return false;
  const bare = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  const exempt = (env("NO_PROXY") ?? env("no_proxy") ?? "").split(",").map((x) => x.trim().toLowerCase())
    .filter(Boolean);
  return !exempt.some((e) => e === "*" || e === bare || bare.endsWith(e.startsWith(".") ? e : `.${e}`));
}
