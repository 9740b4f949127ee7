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

/** The node request as a web Request, its body read whole; aborting `signal` aborts the handler. */
async function toWebRequest(req: http.IncomingMessage, base: string, signal: AbortSignal): Promise<Request> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of req) chunks.push(chunk as Uint8Array);
  const body = Buffer.concat(chunks);
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  const method = req.method ?? "GET";
  return new Request(new URL(req.url ?? "/", base), {
    method,
    headers,
    body: method === "GET" || method === "HEAD" || body.length === 0 ? undefined : body,
    signal,
  });
}

function serveInfo(req: http.IncomingMessage, completed: Promise<void>): Deno.ServeHandlerInfo {
  return {
    remoteAddr: {
      transport: "tcp",
      hostname: req.socket.remoteAddress ?? "",
      port: req.socket.remotePort ?? 0,
    },
    completed,
  };
}

/** The handler's answer; undefined when the connection is to be dropped unanswered. */
async function answer(
  handler: Handler,
  request: Request,
  info: Deno.ServeHandlerInfo,
  aborted: AbortSignal,
): Promise<Response | undefined> {
  try {
    return await handler(request, info);
  } catch (e) {
    if (e instanceof DroppedConnection || aborted.aborted) return undefined;
    console.error("azure emulator handler failed:", e);
    return Response.json({ error: "internal emulator error" }, { status: 500 });
  }
}

async function writeResponse(res: http.ServerResponse, response: Response, method: string): Promise<void> {
  const payload = method === "HEAD" ? new Uint8Array() : new Uint8Array(await response.arrayBuffer());
  const out: Record<string, string> = {};
  response.headers.forEach((v, k) => (out[k] = v));
  if (method !== "HEAD") out["content-length"] = String(payload.byteLength);
  res.writeHead(response.status, out);
  res.end(payload);
}

/** An abort signal for one request: the server stops, or the client goes away before the answer is out. */
function requestAborter(
  res: http.ServerResponse,
  stopping: AbortSignal,
): { aborter: AbortController; done(): void } {
  const aborter = new AbortController();
  const onStop = () => aborter.abort();
  stopping.addEventListener("abort", onStop, { once: true });
  // A client that goes away should not keep an injected delay (and its timer) running.
  res.on("close", () => {
    if (!res.writableFinished) aborter.abort();
  });
  return { aborter, done: () => stopping.removeEventListener("abort", onStop) };
}

async function handleOne(
  handler: Handler,
  base: string,
  stopping: AbortSignal,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const { aborter, done } = requestAborter(res, stopping);
  const completed = new Promise<void>((resolve) => res.on("close", () => resolve()));
  try {
    const request = await toWebRequest(req, base, aborter.signal);
    const response = await answer(handler, request, serveInfo(req, completed), aborter.signal);
    if (response === undefined) {
      req.socket.destroy();
      return;
    }
    await writeResponse(res, response, request.method);
  } catch (e) {
    // The connection broke while reading or writing; nothing left to answer.
    if (!(e instanceof Error && /aborted|socket|EPIPE|ECONNRESET/i.test(e.message))) {
      console.error("azure emulator connection error:", e);
    }
    req.socket.destroy();
  } finally {
    done();
  }
}

async function listen(server: http.Server, opts: ServeOptions): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

export async function serveHandler(opts: ServeOptions, handler: Handler): Promise<RunningServer> {
  const scheme = opts.tls ? "https" : "http";
  const inflight = new Set<Promise<void>>();
  const stopping = new AbortController();
  let base = "";

  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const task = handleOne(handler, base, stopping.signal, req, res).finally(() => inflight.delete(task));
    inflight.add(task);
  };
  const server = opts.tls
    ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, listener)
    : http.createServer(listener);
  const port = await listen(server, opts);
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
