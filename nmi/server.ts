// The HTTP surface: routes and status codes only (docs/upstream.md "NMI routes and status codes", with the
// corrections of docs/protocols.md "IMDS token protocol"). Order on the token route: header size, Metadata
// header (first and instant, so every SDK probe is answered in milliseconds and nothing is served without
// it), method, query, caller, then the token flow. The domain (caller, selection, tokens) answers with
// refusals; this file alone maps them to statuses. Errors are JSON {"error","error_description"}; tokens are
// IMDS JSON.

import type { Logger } from "../lib/log.ts";
import type { CallerResolver, CallerResult } from "./caller.ts";
import type { ConnInfo, IncomingRequest, PlainAnswer } from "./http1_types.ts";
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
import type { Refusal } from "./refusal.ts";
import { RefusalLog } from "./refusal_log.ts";
import type { FlowResult, TokenFlow } from "./token_flow.ts";
import { tokenAnswerJson } from "./multi_tenant.ts";
import { imdsJson, type Token } from "./token.ts";
import { readCapped } from "../lib/read_capped.ts";

interface ServerDeps {
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
  /** An identity still being assigned at the deadline: 503 + this Retry-After when set, else 404. */
  retryAfterSeconds?: number;
  metrics: NmiMetrics;
  log: Logger;
}

/** What the client learns from a refusal: the one place domain outcomes become HTTP statuses. */
export function refusalAnswer(r: Refusal, retryAfterSeconds?: number): ErrorAnswer {
  switch (r.kind) {
    case "invalid":
      return errorAnswer(400, r.code ?? "invalid_request", r.message);
    case "forbidden":
      return errorAnswer(403, r.code ?? "forbidden", r.message);
    case "not_found":
      return errorAnswer(404, r.code ?? "not_found", r.message);
    case "pending":
      return retryAfterSeconds !== undefined
        ? errorAnswer(503, "service_unavailable", r.message, { "retry-after": String(retryAfterSeconds) })
        : errorAnswer(404, "not_found", r.message);
    case "unavailable":
      return errorAnswer(503, "service_unavailable", r.message, { "retry-after": "1" });
    case "internal":
      return errorAnswer(500, "server_error", r.message);
  }
}

const JSON_TYPE = "application/json; charset=utf-8";

function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": JSON_TYPE, ...headers } });
}

function errorResponse(a: ErrorAnswer): Response {
  return jsonResponse({ error: a.error, error_description: a.description }, a.status, a.headers);
}

const METADATA_MISSING = errorAnswer(400, "invalid_request", "Required metadata header not specified");
const NOT_READY = errorAnswer(503, "service_unavailable", "NMI is starting: its caches are not synced yet", {
  "retry-after": "1",
});
/** Largest proxied request body (scheduled-events acknowledgements are a few hundred bytes). */
const MAX_PROXY_BODY = 64 * 1024;
// Hop-by-hop and forwarding headers never cross the proxy: IMDS rejects X-Forwarded-For (docs/protocols.md
// "IMDS token protocol").
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

const encoder = new TextEncoder();
const TOKEN_HEADERS = [["content-type", JSON_TYPE]] as const;

// The IMDS JSON of a cached token changes only with `expires_in`, once a second: its answer is rendered and
// encoded once per second and token, then shared by every request in that second (the bytes are never
// written to, only copied out).
const rendered = new WeakMap<Token, { second: number; clientId: string; answer: PlainAnswer }>();
function tokenAnswer(token: Token, clientId: string): PlainAnswer {
  const second = Math.floor(Date.now() / 1000);
  const hit = rendered.get(token);
  if (hit && hit.second === second && hit.clientId === clientId) return hit.answer;
  const body = encoder.encode(JSON.stringify(tokenAnswerJson(token, clientId, second)));
  const answer = { status: 200, headers: TOKEN_HEADERS, body };
  rendered.set(token, { second, clientId, answer });
  return answer;
}

/**
 * A proxied request's body, read with the cap enforced while reading: a Content-Length over the cap is
 * refused before a byte is read, and a body without one stops being read at the first byte past the cap
 * (the connection is then closed by the HTTP layer rather than drained).
 */
export function readCappedBody(
  req: Pick<IncomingRequest, "headers" | "body">,
  cap: number,
): Promise<Uint8Array | undefined> {
  return readCapped(req.body, req.headers.get("content-length"), cap);
}

/** The `resource` query parameter, for the original's `resource` label ("" when absent or unreadable). */
function resourceParam(url: string): string {
  const raw = rawQueryOf(url);
  const hit = resourceMemo.get(raw);
  if (hit !== undefined) return hit;
  let resource: string;
  try {
    resource = new URLSearchParams(raw).get("resource") ?? "";
  } catch {
    resource = "";
  }
  // Bounded like request.ts's query memo: a client sending ever new queries only refills it.
  if (resourceMemo.size >= RESOURCE_MEMO_ENTRIES) resourceMemo.clear();
  resourceMemo.set(raw, resource);
  return resource;
}
const RESOURCE_MEMO_ENTRIES = 256;
const resourceMemo = new Map<string, string>();

/** One request as routed: the raw URL (as sent), its path, and the caller's address. */
interface Call {
  req: IncomingRequest;
  url: string;
  path: string;
  remote: string;
}

/** Routes one request to its answer; every refusal the domain returns is rendered here. */
export class NmiServer {
  #deps: ServerDeps;
  #refusals: RefusalLog;
  /** The caller's namespace, for the original's `namespace` label on nmi_operations_duration_seconds. */
  #namespaceOf = new WeakMap<IncomingRequest, string>();

  constructor(deps: ServerDeps) {
    this.#deps = deps;
    this.#refusals = new RefusalLog(deps.log);
  }

  /** The request handler: never throws (an unexpected error is a logged 500). */
  readonly handle = async (req: IncomingRequest, info: ConnInfo): Promise<Response | PlainAnswer> => {
    const t0 = performance.now();
    // The request-target exactly as sent: `new Request` would resolve dot segments before classification.
    const url = info.target === undefined
      ? req.url
      : info.target.startsWith("/")
      ? `http://nmi${info.target}`
      : info.target;
    const path = rawPathOf(url);
    const kind = classifyPath(path);
    let res: Response | PlainAnswer;
    try {
      res = await this.#route({ req, url, path, remote: info.remoteAddr.hostname }, kind);
    } catch (e) {
      this.#deps.log.error("request failed", {
        route: kind,
        error: e instanceof Error ? e.message : String(e),
      });
      res = errorResponse(errorAnswer(500, "server_error", "internal error"));
    }
    this.#deps.metrics.observeRequest({
      kind,
      rawPath: path,
      status: res.status,
      namespace: this.#namespaceOf.get(req) ?? "",
      resource: resourceParam(url),
    }, (performance.now() - t0) / 1000);
    return res;
  };

  async #route(call: Call, kind: RouteKind): Promise<Response | PlainAnswer> {
    const deps = this.#deps;
    const { req } = call;
    if (headerBytes(req.headers) > MAX_HEADER_BYTES) {
      return errorResponse(
        errorAnswer(431, "invalid_request", `request headers larger than ${MAX_HEADER_BYTES} bytes`),
      );
    }
    if (kind === "instance" && deps.blockInstanceMetadata) {
      return errorResponse(errorAnswer(403, "forbidden", "Request blocked by AAD Pod Identity NMI"));
    }
    // As the original: every IMDS path NMI serves or proxies asks for the header (SSRF defence), not
    // only the token route.
    const imdsPath = kind === "token" || kind === "instance" || kind === "proxy";
    if (imdsPath && deps.metadataHeaderRequired && !hasMetadataHeader(req.headers.get("metadata"))) {
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
    if (kind === "token" || kind === "host_token") return await this.#token(call, kind);
    return await this.#proxy(call);
  }

  async #waitForCaches(): Promise<boolean> {
    const caches = this.#deps.caches;
    if (caches.isSynced()) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ok = await Promise.race([
      caches.synced.then(() => true),
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), this.#deps.waitDeadlineMs)),
    ]);
    clearTimeout(timer);
    return ok;
  }

  /** The calling pod: by source IP, or for /host/token (host processes only) by the pod it names. */
  async #caller(
    req: IncomingRequest,
    remote: string,
    route: "token" | "host_token",
  ): Promise<CallerResult | Response> {
    if (route === "token") {
      // Synced is the rule once started: no extra await (and its allocation) per request then.
      if (!this.#deps.caches.isSynced() && !await this.#waitForCaches()) return errorResponse(NOT_READY);
      return await this.#deps.callers.byIp(remote);
    }
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
    if (!await this.#waitForCaches()) return errorResponse(NOT_READY);
    return await this.#deps.callers.byName(ns, name);
  }

  async #token({ req, url, remote }: Call, route: "token" | "host_token"): Promise<Response | PlainAnswer> {
    const { flow, metrics } = this.#deps;
    const query = parseTokenQuery(rawQueryOf(url));
    if (!query.ok) return errorResponse(query.error);
    const caller = await this.#caller(req, remote, route);
    if (caller instanceof Response) return caller;
    // The original never sent Retry-After on /host/token.
    const retryAfter = route === "token" ? this.#deps.retryAfterSeconds : undefined;
    if (!caller.ok) return errorResponse(refusalAnswer(caller.refusal, retryAfter));
    const pod = callerPod(caller.pod);
    this.#namespaceOf.set(req, pod.namespace);
    metrics.waiting.inc();
    let result: FlowResult;
    try {
      result = await flow.run(pod, query.value, req.signal);
    } finally {
      metrics.waiting.dec();
    }
    if (!result.ok) {
      const answer = refusalAnswer(result.refusal, retryAfter);
      this.#refusals.refused(`${pod.namespace}/${pod.name}`, answer.status, answer.description);
      return errorResponse(answer);
    }
    if (route === "token") return tokenAnswer(result.token, result.clientId);
    // A multi-tenant identity's auxiliary tokens are not part of this answer: the original sent tokens[0] alone.
    const body = imdsJson(
      { ...result.token, clientId: result.clientId || result.token.clientId },
      Math.floor(Date.now() / 1000),
    );
    return jsonResponse({ token: body, clientid: result.clientId });
  }

  async #proxy({ req, url, remote, path }: Call): Promise<Response> {
    const deps = this.#deps;
    const headers = new Headers();
    for (const [k, v] of req.headers) if (!DROP_REQUEST_HEADERS.has(k.toLowerCase())) headers.set(k, v);
    let body: Uint8Array | undefined;
    if (req.method === "POST") {
      body = await readCappedBody(req, MAX_PROXY_BODY);
      if (!body) {
        return errorResponse(
          errorAnswer(413, "invalid_request", `request body larger than ${MAX_PROXY_BODY} bytes`),
        );
      }
    }
    const q = rawQueryOf(url);
    const target = `${deps.imdsBase}${path}${q ? `?${q}` : ""}`;
    const send = async () => {
      try {
        const res = await fetch(target, {
          method: req.method,
          headers,
          body: body as Uint8Array<ArrayBuffer> | undefined,
          redirect: "manual",
          signal: AbortSignal.any([req.signal, AbortSignal.timeout(deps.upstreamTimeoutMs)]),
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
    if (!path.toLowerCase().startsWith("/metadata/identity")) return await send();
    try {
      return await deps.limiter.run(send, req.signal, remote);
    } catch (e) {
      return errorResponse(refusalAnswer({ kind: "unavailable", message: `IMDS: ${transportMessage(e)}` }));
    }
  }
}
