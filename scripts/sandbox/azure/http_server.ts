// Serves a web-standard handler `(Request, info) => Response` over HTTP or HTTPS.
//
// Built on node:http(s) rather than Deno.serve because fault injection must be able to drop a connection
// without answering (the client sees a reset, as with a load balancer failure); Deno.serve can only answer
// or send a 500, while a node socket can be destroyed. The handlers themselves stay web-standard so they
// can also be mounted on Deno.serve (where a dropped connection degrades to a 500).

import { Buffer } from "node:buffer";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { DroppedConnection } from "./faults.ts";

export type Handler = (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;

interface ServeOptions {
  hostname: string;
  /** 0 picks a free port. */
  port: number;
  /** PEM certificate chain and key; plain HTTP when absent. */
  tls?: { cert: string; key: string };
}

export interface RunningServer {
  hostname: string;
  port: number;
  /** `http(s)://host:port`, no trailing slash. */
  url: string;
  /** Stops accepting, closes every connection, aborts handlers still running and waits for them. */
  stop(): Promise<void>;
}

function hostForUrl(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

export async function serveHandler(opts: ServeOptions, handler: Handler): Promise<RunningServer> {
  const scheme = opts.tls ? "https" : "http";
  const inflight = new Set<Promise<void>>();
  const stopping = new AbortController();
  let base = "";

  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const task = handle(req, res).finally(() => inflight.delete(task));
    inflight.add(task);
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const aborter = new AbortController();
    const onStop = () => aborter.abort();
    stopping.signal.addEventListener("abort", onStop, { once: true });
    // A client that goes away should not keep an injected delay (and its timer) running.
    res.on("close", () => {
      if (!res.writableFinished) aborter.abort();
    });
    let settleCompleted = () => {};
    const completed = new Promise<void>((resolve) => (settleCompleted = resolve));
    res.on("close", () => settleCompleted());
    try {
      const chunks: Uint8Array[] = [];
      for await (const chunk of req) chunks.push(chunk as Uint8Array);
      const body = Buffer.concat(chunks);
      const headers = new Headers();
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
        headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
      }
      const method = req.method ?? "GET";
      const request = new Request(new URL(req.url ?? "/", base), {
        method,
        headers,
        body: method === "GET" || method === "HEAD" || body.length === 0 ? undefined : body,
        signal: aborter.signal,
      });
      const info: Deno.ServeHandlerInfo = {
        remoteAddr: {
          transport: "tcp",
          hostname: req.socket.remoteAddress ?? "",
          port: req.socket.remotePort ?? 0,
        },
        completed,
      };
      let response: Response;
      try {
        response = await handler(request, info);
      } catch (e) {
        if (e instanceof DroppedConnection || aborter.signal.aborted) {
          req.socket.destroy();
          return;
        }
        response = Response.json({ error: "internal emulator error" }, { status: 500 });
        console.error("azure emulator handler failed:", e);
      }
      const payload = method === "HEAD" ? new Uint8Array() : new Uint8Array(await response.arrayBuffer());
      const out: Record<string, string> = {};
      response.headers.forEach((v, k) => (out[k] = v));
      if (method !== "HEAD") out["content-length"] = String(payload.byteLength);
      res.writeHead(response.status, out);
      res.end(payload);
    } catch (e) {
      // The connection broke while reading or writing; nothing left to answer.
      if (!(e instanceof Error && /aborted|socket|EPIPE|ECONNRESET/i.test(e.message))) {
        console.error("azure emulator connection error:", e);
      }
      req.socket.destroy();
    } finally {
      stopping.signal.removeEventListener("abort", onStop);
    }
  }

  const server = opts.tls
    ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, listener)
    : http.createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  base = `${scheme}://${hostForUrl(opts.hostname)}:${port}`;

  let stopped: Promise<void> | undefined;
  return {
    hostname: opts.hostname,
    port,
    url: base,
    stop() {
      stopped ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        stopping.abort();
        server.closeAllConnections();
        await Promise.allSettled([...inflight]);
        await closed;
      })();
      return stopped;
    },
  };
}
