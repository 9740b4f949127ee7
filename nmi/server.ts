// The HTTP surface (Deno.serve): routes and status codes only (upstream.md 3 with protocols-and-peers.md
// A.4/A.5's corrections). Order on the token route: header size, Metadata header (first and instant, so
// every SDK probe is answered in milliseconds and nothing is served without it), method, query, caller,
// then the token flow. Errors are JSON {"error","error_description"}; tokens are IMDS JSON.

import type { Logger } from "../lib/log.ts";
import type { CallerResolver } from "./caller.ts";
import { callerPod } from "./caller.ts";
import type { NmiCaches } from "./caches.ts";
import { transportMessage } from "./imds_client.ts";
import type { UpstreamLimiter } from "./limiter.ts";
import type { NmiMetrics } from "./metrics.ts";
import {
  allowedMethods,
  classifyPath,
  type ErrorAnswer,
  errorAnswer,
  hasMetadataHeader,
  headerBytes,
  isHostCaller,
  MAX_HEADER_BYTES,
  parseTokenQuery,
  rawPathOf,
  rawQueryOf,
  type RouteKind,
} from "./request.ts";
import type { TokenFlow } from "./token_flow.ts";
import { imdsJson, type Token } from "./token.ts";

export interface ServerDeps {
  flow: TokenFlow;
  callers: CallerResolver;
  caches: NmiCaches;
  /** `http://<metadata-ip>:<metadata-port>` */
  imdsBase: string;
  limiter: UpstreamLimiter;
  blockInstanceMetadata: boolean;
  metadataHeaderRequired: boolean;
  upstreamTimeoutMs: number;
  waitDeadlineMs: number;
  metrics: NmiMetrics;
  log: Logger;
}

const JSON_TYPE = "application/json; charset=utf-8";

export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": JSON_TYPE, ...headers } });
}

export function errorResponse(a: ErrorAnswer): Response {
  return jsonResponse({ error: a.error, error_description: a.description }, a.status, a.headers);
}

const METADATA_MISSING = errorAnswer(400, "invalid_request", "Required metadata header not specified");
const MAX_PROXY_BODY = 64 * 1024;
// Hop-by-hop and forwarding headers never cross the proxy: IMDS rejects X-Forwarded-For (A.1).
const DROP_REQUEST_HEADERS = new Set([
  "host",
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-real-ip",
  "content-length",
]);
const DROP_RESPONSE_HEADERS = new Set(["connection", "keep-alive", "transfer-encoding", "content-length"]);

// The IMDS JSON of a cached token changes only with `expires_in`, once a second: render it once per second.
const rendered = new WeakMap<Token, { second: number; clientId: string; body: string }>();
function serialized(token: Token, clientId: string): string {
  const second = Math.floor(Date.now() / 1000);
  const hit = rendered.get(token);
  if (hit && hit.second === second && hit.clientId === clientId) return hit.body;
  const body = JSON.stringify(imdsJson({ ...token, clientId: clientId || token.clientId }, second));
  rendered.set(token, { second, clientId, body });
  return body;
}

export function createHandler(
  deps: ServerDeps,
): (req: Request, info: Deno.ServeHandlerInfo) => Promise<Response> {
  const { log, metrics } = deps;

  async function waitForCaches(): Promise<boolean> {
    if (deps.caches.isSynced()) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ok = await Promise.race([
      deps.caches.synced.then(() => true),
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), deps.waitDeadlineMs)),
    ]);
    clearTimeout(timer);
    return ok;
  }

  async function token(req: Request, remote: string, route: "token" | "host_token"): Promise<Response> {
    const query = parseTokenQuery(rawQueryOf(req.url));
    if (!query.ok) return errorResponse(query.error);
    let caller;
    if (route === "host_token") {
      if (!isHostCaller(remote)) {
        return errorResponse(
          errorAnswer(403, "forbidden", "/host/token is only served to host processes (127.0.0.1)"),
        );
      }
      const ns = req.headers.get("podns");
      const name = req.headers.get("podname");
      if (!ns || !name) {
        return errorResponse(
          errorAnswer(400, "invalid_request", "missing 'podname' and 'podns' from request header"),
        );
      }
      if (!await waitForCaches()) return notReady();
      caller = await deps.callers.byName(ns, name);
    } else {
      if (!await waitForCaches()) return notReady();
      caller = await deps.callers.byIp(remote);
    }
    if (!caller.ok) return errorResponse(caller.answer);
    const pod = callerPod(caller.pod);
    metrics.waiting.inc();
    let result;
    try {
      result = await deps.flow.run(pod, query.value, {
        // Read only by a request that waits: once read, Deno aborts req.signal with a new DOMException (a
        // captured stack) when the response ends, which halved req/s on the cached path.
        get signal() {
          return req.signal;
        },
        // The original never sent Retry-After on /host/token.
        allowRetryAfter: route === "token",
      });
    } finally {
      metrics.waiting.dec();
    }
    if (!result.ok) {
      log.info("token refused", {
        pod: `${pod.namespace}/${pod.name}`,
        status: result.answer.status,
        reason: result.answer.description,
      });
      return errorResponse(result.answer);
    }
    if (route === "token") {
      return new Response(serialized(result.token, result.clientId), {
        headers: { "content-type": JSON_TYPE },
      });
    }
    const body = imdsJson(
      { ...result.token, clientId: result.clientId || result.token.clientId },
      Math.floor(Date.now() / 1000),
    );
    return jsonResponse({ token: body, clientid: result.clientId });
  }

  function notReady(): Response {
    return errorResponse(
      errorAnswer(503, "service_unavailable", "NMI is starting: its caches are not synced yet", {
        "retry-after": "1",
      }),
    );
  }

  async function proxy(req: Request, path: string): Promise<Response> {
    const headers = new Headers();
    for (const [k, v] of req.headers) if (!DROP_REQUEST_HEADERS.has(k.toLowerCase())) headers.set(k, v);
    let body: ArrayBuffer | undefined;
    if (req.method === "POST") {
      body = await req.arrayBuffer();
      if (body.byteLength > MAX_PROXY_BODY) {
        return errorResponse(
          errorAnswer(413, "invalid_request", `request body larger than ${MAX_PROXY_BODY} bytes`),
        );
      }
    }
    const q = rawQueryOf(req.url);
    const target = `${deps.imdsBase}${path}${q ? `?${q}` : ""}`;
    const send = async () => {
      try {
        const res = await fetch(target, {
          method: req.method,
          headers,
          body,
          redirect: "manual",
          signal: AbortSignal.timeout(deps.upstreamTimeoutMs),
        });
        const out = new Headers();
        for (const [k, v] of res.headers) if (!DROP_RESPONSE_HEADERS.has(k.toLowerCase())) out.set(k, v);
        return new Response(await res.arrayBuffer(), { status: res.status, headers: out });
      } catch (e) {
        return errorResponse(
          errorAnswer(502, "bad_gateway", `IMDS at ${deps.imdsBase}: ${transportMessage(e)}`),
        );
      }
    };
    // The identity category (e.g. /metadata/identity/info) shares IMDS's per-VM identity limits.
    return path.toLowerCase().startsWith("/metadata/identity") ? await deps.limiter.run(send) : await send();
  }

  async function route(req: Request, remote: string, kind: RouteKind, path: string): Promise<Response> {
    if (headerBytes(req.headers) > MAX_HEADER_BYTES) {
      return errorResponse(
        errorAnswer(431, "invalid_request", `request headers larger than ${MAX_HEADER_BYTES} bytes`),
      );
    }
    if (kind === "instance" && deps.blockInstanceMetadata) {
      return errorResponse(errorAnswer(403, "forbidden", "Request blocked by AAD Pod Identity NMI"));
    }
    if (kind === "token" && deps.metadataHeaderRequired && !hasMetadataHeader(req.headers.get("metadata"))) {
      return errorResponse(METADATA_MISSING);
    }
    if (kind === "mangled_token") {
      return errorResponse(errorAnswer(400, "invalid_request", "Invalid request"));
    }
    const allowed = allowedMethods(kind);
    if (!allowed.includes(req.method)) {
      return errorResponse(
        errorAnswer(405, "method_not_allowed", `${req.method} is not allowed here`, {
          allow: allowed.join(", "),
        }),
      );
    }
    if (kind === "token" || kind === "host_token") return await token(req, remote, kind);
    return await proxy(req, path);
  }

  return async (req, info) => {
    const t0 = performance.now();
    const path = rawPathOf(req.url);
    const kind = classifyPath(path);
    let res: Response;
    try {
      res = await route(req, (info.remoteAddr as Deno.NetAddr).hostname, kind, path);
    } catch (e) {
      log.error("request failed", { route: kind, error: e instanceof Error ? e.message : String(e) });
      res = errorResponse(errorAnswer(500, "server_error", "internal error"));
    }
    metrics.requests.observe(
      { operation: kind, status_code: String(res.status) },
      (performance.now() - t0) / 1000,
    );
    return res;
  };
}
