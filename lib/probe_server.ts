// The operator-facing HTTP endpoint of a service: `/healthz` (the process is alive; its body says "Active"
// once ready, as the original's did), `/readyz` (it can do
// its job: caches synced, rules in place, ...) and `/metrics` (Prometheus text). Nothing else is served: the
// original exposed pprof on this port on every node IP; here an unknown path is a 404.

import type { Registry } from "./metrics.ts";

export interface Readiness {
  ready: boolean;
  /** Why not ready, shown in the /readyz body so `kubectl describe` events say what is missing. */
  reason?: string;
}

interface ProbeServerOptions {
  hostname: string;
  port: number;
  registry?: Registry;
  readiness: () => Readiness;
  /** Liveness beyond "the event loop answers" (default: always alive). */
  liveness?: () => Readiness;
  /** When /healthz says "Active" (default: when ready); MIC: its sync loop runs, i.e. it leads. */
  active?: () => boolean;
  signal?: AbortSignal;
}

export interface ProbeServer {
  /** The bound port (useful with port 0). */
  port: number;
  finished: Promise<void>;
  shutdown(): Promise<void>;
}

function probeResponse(state: Readiness): Response {
  const body = state.ready ? "ok\n" : `not ready: ${state.reason ?? "starting"}\n`;
  return new Response(body, {
    status: state.ready ? 200 : 503,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/**
 * The original's /healthz (pkg/probes/probes.go v1.8.17): 200 with the body "Active" once the service does its
 * job (here: ready) and "Not Active" before, so its scripts and probes keep reading it. A failed liveness
 * check still answers 503.
 */
function healthzResponse(live: Readiness, active: boolean): Response {
  const body = live.ready && active ? "Active" : "Not Active";
  return new Response(body, {
    status: live.ready ? 200 : 503,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

function handleProbe(
  opts: Pick<ProbeServerOptions, "registry" | "readiness" | "liveness" | "active">,
) {
  return async (req: Request): Promise<Response> => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    const path = new URL(req.url).pathname;
    switch (path) {
      case "/healthz":
        return healthzResponse(
          opts.liveness?.() ?? { ready: true },
          opts.active ? opts.active() : opts.readiness().ready,
        );
      case "/readyz":
        return probeResponse(opts.readiness());
      case "/metrics":
        if (!opts.registry) break;
        return new Response(await opts.registry.metrics(), {
          headers: { "content-type": opts.registry.contentType },
        });
    }
    return new Response("not found\n", { status: 404 });
  };
}

export function startProbeServer(opts: ProbeServerOptions): ProbeServer {
  const server = Deno.serve({
    hostname: opts.hostname,
    port: opts.port,
    signal: opts.signal,
    onListen: () => {},
    onError: () => new Response("internal error\n", { status: 500 }),
  }, handleProbe(opts));
  return { port: server.addr.port, finished: server.finished, shutdown: () => server.shutdown() };
}
