// The part every emulated service shares: name the route, apply injected faults, call the handler and
// record the request in the log.

import { delay, DroppedConnection, type FaultInjector, type FaultSpec } from "./faults.ts";
import type { Handler } from "./http_server.ts";
import { redactQuery, type RequestLog, type RequestLogEntry, type Service } from "./request_log.ts";

/** Lets a handler record who called (a client id, never a credential). */
export interface RequestMeta {
  caller?: string;
}

type RoutedHandler = (
  req: Request,
  url: URL,
  route: string,
  meta: RequestMeta,
  info: Deno.ServeHandlerInfo,
) => Response | Promise<Response>;

interface InstrumentOptions {
  service: Service;
  log: RequestLog;
  faults: FaultInjector;
  /** IMDS: which VM / instance this endpoint belongs to. */
  instance?: string;
  route(req: Request, url: URL): string;
  /** Answers before faults apply (IMDS rate limits and header checks sit in front of the service). */
  gate?(req: Request, url: URL, route: string): Response | undefined;
  /** The body an injected error status carries, in the service's own error shape. */
  faultResponse(status: number, fault: FaultSpec): Response;
  handle: RoutedHandler;
}

export function instrument(opts: InstrumentOptions): Handler {
  return async (req, info) => {
    const started = performance.now();
    const url = new URL(req.url);
    const route = opts.route(req, url);
    const meta: RequestMeta = {};
    const entry: RequestLogEntry = {
      time: new Date().toISOString(),
      service: opts.service,
      method: req.method,
      path: url.pathname,
      query: redactQuery(url.searchParams),
      status: 0,
      route,
      durationMs: 0,
    };
    if (opts.instance) entry.instance = opts.instance;
    try {
      const gated = opts.gate?.(req, url, route);
      if (gated) {
        entry.status = gated.status;
        return gated;
      }
      const fault = opts.faults.take(route);
      let gone = false;
      if (fault?.latencyMs) {
        // req.signal is touched only here: Deno.serve warns about reading it on ordinary requests.
        await delay(fault.latencyMs, req.signal);
        // A client that left (or a server stopping) during the delay gets nothing, like a drop.
        gone = req.signal.aborted;
      }
      if (fault?.drop || gone) {
        entry.dropped = true;
        throw new DroppedConnection();
      }
      const res = fault?.status !== undefined
        ? opts.faultResponse(fault.status, fault)
        : await opts.handle(req, url, route, meta, info);
      entry.status = res.status;
      return res;
    } catch (e) {
      if (!(e instanceof DroppedConnection)) entry.status = 500;
      throw e;
    } finally {
      entry.durationMs = Math.round((performance.now() - started) * 100) / 100;
      if (meta.caller) entry.caller = meta.caller;
      opts.log.record(entry);
    }
  };
}

export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}
