// One small REST layer over fetch for every kind the services touch: core kinds and our CRDs share the same
// URL scheme, so a ResourceType descriptor is all a caller names. Errors come back as KubeApiError built
// from the apiserver's Status object, so callers branch on status/reason, never on message text.

import type { KubeConnection } from "./config.ts";
import { parseRetryAfter } from "../retry_after.ts";
import { listPages } from "./pager.ts";
import type { KubeList, KubeObject, KubeStatus } from "./types.ts";
import { KubeApiError, TIMEOUT_REASON } from "./api_error.ts";
import type {
  DeleteOptions,
  ListOptions,
  PatchOptions,
  RequestOptions,
  WatchOptions,
  WriteOptions,
} from "./request_options.ts";
import { apiVersionOf, collectionPath, objectPath, type ResourceType } from "./resource.ts";
import type { BuiltinCodec } from "./builtin_proto.ts";
import { decodeListStream } from "./proto_list.ts";
import { readStatus, unwrapEnvelope } from "./protobuf.ts";

// What callers pass the client and catch from it, importable together with it.
export { KubeApiError } from "./api_error.ts";
export { Resources, type ResourceType } from "./resource.ts";

/** Protobuf first, JSON if the server (or a proxy in between) cannot: client-go asks the same way. */
export const PROTOBUF_ACCEPT = "application/vnd.kubernetes.protobuf, application/json";
const PROTOBUF_TYPE = "application/vnd.kubernetes.protobuf";

/** Wire format of a watch: protobuf is only asked for kinds with a decoder (never for CRDs). */
export type WireFormat = "json" | "protobuf";

type PatchType = "merge" | "json" | "strategic" | "apply";
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
  apply: "application/apply-patch+yaml",
};

interface KubeClientOptions {
  /** Sent as User-Agent, so apiserver audit logs name the component. */
  userAgent?: string;
  /** Per-request timeout for non-watch calls. */
  requestTimeoutMs?: number;
  /**
   * Ask the apiserver to gzip large answers (default false). It gzips any GET/LIST answer over 128 KiB,
   * in the request's own goroutine, with a fresh compressor per answer: measured on this project's control
   * plane, 100 LISTs of one node's 500 pods cost the apiserver 0.48-0.89 s of CPU with gzip against
   * 0.25-0.30 s without, and the compressors' garbage set off a GC cycle in every batch of 100. Every NMI
   * lists its node's pods, so without gzip a restart wave costs the apiserver about half the CPU. Upstream
   * reached the same trade for clients near the apiserver (kubernetes/kubernetes#112296, which added
   * kubeconfig's disable-compression); a client behind a slow link can turn it back on here.
   */
  compression?: boolean;
}

function queryString(q: RequestOptions["query"]): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q ?? {})) if (v !== undefined && v !== "") params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : "";
}

/**
 * Per connection: settled once a first request has been answered (or failed). Until then other requests
 * wait for it: fetch's pool does not know yet that the server speaks HTTP/2, and a burst of concurrent
 * first requests (an NMI starting its informers) would each open a TLS connection of their own (86 of 100
 * informers did, measured), every handshake a client-certificate verification on the apiserver. After one
 * answer, the pool multiplexes everything over one HTTP/2 connection, as client-go's transport does.
 */
const firstAnswer = new WeakMap<KubeConnection, Promise<void> | "done">();

export class KubeClient {
  readonly conn: KubeConnection;
  readonly userAgent: string;
  readonly requestTimeoutMs: number;
  readonly compression: boolean;

  constructor(conn: KubeConnection, opts: KubeClientOptions = {}) {
    this.conn = conn;
    this.userAgent = opts.userAgent ?? "aad-pod-identity";
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.compression = opts.compression ?? false;
  }

  /**
   * Sends one request and returns the raw response when it is 2xx; any other answer, or no answer, is
   * thrown as KubeApiError. The caller owns the returned body.
   */
  async fetch(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const res = await this.#send(method, path, opts);
    if (res.ok) return res;
    // A 401 with credentials that can be fetched again (an exec plugin's expired token): once more, fresh.
    if (res.status === 401 && this.conn.refreshAuth?.()) {
      await res.body?.cancel();
      const again = await this.#send(method, path, opts);
      if (again.ok) return again;
      throw await errorFromResponse(again);
    }
    throw await errorFromResponse(res);
  }

  async #send(method: string, path: string, opts: RequestOptions): Promise<Response> {
    const headers = new Headers({ "User-Agent": this.userAgent, Accept: opts.accept ?? "application/json" });
    // fetch asks for gzip (and decompresses) unless told otherwise.
    if (!this.compression) headers.set("Accept-Encoding", "identity");
    const auth = await this.conn.authHeader();
    if (auth) headers.set("Authorization", auth);
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers.set("Content-Type", opts.contentType ?? "application/json");
      body = JSON.stringify(opts.body);
    }
    const http2 = this.conn.http2;
    if (http2) {
      // This client decompresses only what it asked for; fetch's default ask would be gzip and br.
      const h2Headers = this.compression ? new Headers(headers) : headers;
      if (this.compression) h2Headers.set("Accept-Encoding", "gzip");
      const url = `${path}${queryString(opts.query)}`;
      const bytes = body === undefined ? undefined : new TextEncoder().encode(body);
      let res: Response | undefined;
      try {
        res = await http2.request(this.conn.server, method, url, h2Headers, bytes, opts.signal);
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        throw transportError(e, this.conn.server);
      }
      if (res) return res;
      // Not over this client's HTTP/2 (plain http, a proxy, no h2 in ALPN): fetch.
    }
    const gate = firstAnswer.get(this.conn);
    let first: (() => void) | undefined;
    if (gate === undefined) {
      firstAnswer.set(this.conn, new Promise<void>((r) => first = r));
    } else if (gate !== "done") {
      await gate;
    }
    let res: Response;
    try {
      res = await fetch(`${this.conn.server}${path}${queryString(opts.query)}`, {
        method,
        headers,
        body,
        client: this.conn.client,
        signal: opts.signal,
      });
    } catch (e) {
      // No answer: the next request opens the gate again (the waiting ones go ahead now).
      if (first) firstAnswer.delete(this.conn);
      if (opts.signal?.aborted) throw e;
      throw transportError(e, this.conn.server);
    } finally {
      if (first) {
        if (firstAnswer.get(this.conn) !== undefined) firstAnswer.set(this.conn, "done");
        first();
      }
    }
    return res;
  }

  /**
   * One request with the client's timeout; the JSON answer. A timeout is thrown as a KubeApiError with
   * `isTimeout`; an abort of `opts.signal` rethrows the caller's abort reason.
   */
  request<R>(method: string, path: string, opts: RequestOptions = {}): Promise<R> {
    return this.#timed(method, path, opts, (res) => res.json() as Promise<R>);
  }

  async #timed<R>(
    method: string,
    path: string,
    opts: RequestOptions,
    read: (res: Response) => Promise<R>,
  ): Promise<R> {
    // A timer cleared with the answer, not AbortSignal.timeout: that one lives its full 30 s after the
    // request ended and keeps the signal (and through its listeners the answer) alive until then; with
    // 10,000 assignments written in a burst that held over 100 MiB of heap (deno task bench mic).
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.requestTimeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout.signal]) : timeout.signal;
    try {
      return await this.#request<R>(method, path, { ...opts, signal }, read);
    } catch (e) {
      if (timeout.signal.aborted && !opts.signal?.aborted) {
        throw new KubeApiError(
          0,
          TIMEOUT_REASON,
          `${method} ${path}: no answer from ${this.conn.server} within ${this.requestTimeoutMs} ms`,
        );
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  async #request<R>(
    method: string,
    path: string,
    opts: RequestOptions & { signal: AbortSignal },
    read: (res: Response) => Promise<R>,
  ): Promise<R> {
    const signal = opts.signal;
    const res = await this.fetch(method, path, opts);
    // The abort must also end a body read that stalls after the headers (see decodeWatchEvents).
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        res.body?.cancel().catch(() => {});
        reject(signal.reason ?? new DOMException("aborted", "AbortError"));
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    });
    aborted.catch(() => {});
    try {
      return await Promise.race([read(res), aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort!);
    }
  }

  get<T extends KubeObject>(rt: ResourceType, name: string, namespace?: string): Promise<T> {
    return this.request<T>("GET", objectPath(rt, name, namespace));
  }

  list<T extends KubeObject>(
    rt: ResourceType,
    opts: ListOptions = {},
    signal?: AbortSignal,
  ): Promise<KubeList<T>> {
    return this.request<KubeList<T>>("GET", collectionPath(rt, opts.namespace), {
      signal,
      query: listQuery(opts),
    });
  }

  /**
   * One LIST page of a built-in kind, asked for in protobuf and decoded to `codec`'s slim projection; a
   * JSON answer (a server or proxy without protobuf) is projected the same way, so callers cannot tell.
   */
  listProjected<T extends KubeObject>(
    rt: ResourceType,
    codec: BuiltinCodec,
    opts: ListOptions = {},
    signal?: AbortSignal,
  ): Promise<KubeList<T>> {
    return this.#timed("GET", collectionPath(rt, opts.namespace), {
      signal,
      accept: PROTOBUF_ACCEPT,
      query: listQuery(opts),
    }, async (res) => {
      if (isProtobuf(res)) return decodeListStream<T>(res.body!, codec.decode);
      const list = await res.json() as KubeList<T>;
      return { ...list, items: list.items.map((o) => codec.project(o) as T) };
    });
  }

  /**
   * Every item across pages of `opts.limit` (limit/continue), re-listing unpaginated when a continue token
   * expires; the same pager as the reflector's.
   */
  async listAll<T extends KubeObject>(
    rt: ResourceType,
    opts: ListOptions = {},
    signal?: AbortSignal,
  ): Promise<KubeList<T>> {
    const paged = await listPages<T>((o, s) => this.list<T>(rt, o, s), opts, signal);
    return { ...paged.last, items: paged.items, metadata: { resourceVersion: paged.resourceVersion } };
  }

  create<T extends KubeObject>(rt: ResourceType, obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.request<T>("POST", collectionPath(rt, obj.metadata.namespace), {
      body: { apiVersion: apiVersionOf(rt), kind: rt.kind, ...obj },
      query: writeQuery(opts),
    });
  }

  /** PUT; `obj.metadata.resourceVersion` makes it conditional (409 Conflict if stale). */
  update<T extends KubeObject>(rt: ResourceType, obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.request<T>("PUT", objectPath(rt, obj.metadata.name!, obj.metadata.namespace), {
      body: { apiVersion: apiVersionOf(rt), kind: rt.kind, ...obj },
      query: writeQuery(opts),
    });
  }

  updateStatus<T extends KubeObject>(rt: ResourceType, obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.request<T>("PUT", objectPath(rt, obj.metadata.name!, obj.metadata.namespace, "status"), {
      body: { apiVersion: apiVersionOf(rt), kind: rt.kind, ...obj },
      query: writeQuery(opts),
    });
  }

  patch<T extends KubeObject>(
    rt: ResourceType,
    name: string,
    type: PatchType,
    patch: unknown,
    opts: PatchOptions = {},
  ): Promise<T> {
    if (type === "apply" && !opts.fieldManager) throw new Error("server-side apply needs a fieldManager");
    return this.request<T>("PATCH", objectPath(rt, name, opts.namespace, opts.subresource), {
      body: patch,
      contentType: PATCH_CONTENT_TYPE[type],
      // The apiserver refuses `force` on every other patch type (422 "may not be specified for non-apply
      // patch"), so it is only ever sent with an apply patch.
      query: { ...writeQuery(opts), force: type === "apply" ? opts.force : undefined },
    });
  }

  /** Returns the deleted object, or the object with a deletionTimestamp when finalizers hold it. */
  delete<T extends KubeObject>(
    rt: ResourceType,
    name: string,
    opts: DeleteOptions = {},
  ): Promise<T | KubeStatus> {
    const hasBody = opts.propagationPolicy || opts.gracePeriodSeconds !== undefined || opts.preconditions;
    return this.request<T | KubeStatus>("DELETE", objectPath(rt, name, opts.namespace), {
      body: hasBody
        ? {
          apiVersion: "v1",
          kind: "DeleteOptions",
          propagationPolicy: opts.propagationPolicy,
          gracePeriodSeconds: opts.gracePeriodSeconds,
          preconditions: opts.preconditions,
        }
        : undefined,
    });
  }

  /**
   * Opens a watch; the body streams events until the server ends it or `signal` aborts: newline-delimited
   * JSON, or with `format` "protobuf" length-prefixed protobuf frames if the server agrees (check
   * `isProtobuf(res)`: it may still answer JSON).
   */
  watch(
    rt: ResourceType,
    opts: WatchOptions,
    signal?: AbortSignal,
    format: WireFormat = "json",
  ): Promise<Response> {
    return this.fetch("GET", collectionPath(rt, opts.namespace), {
      signal,
      accept: format === "protobuf" ? PROTOBUF_ACCEPT : undefined,
      query: {
        watch: 1,
        resourceVersion: opts.resourceVersion,
        allowWatchBookmarks: opts.allowWatchBookmarks,
        timeoutSeconds: opts.timeoutSeconds,
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
      },
    });
  }
}

function listQuery(opts: ListOptions): RequestOptions["query"] {
  return {
    labelSelector: opts.labelSelector,
    fieldSelector: opts.fieldSelector,
    limit: opts.limit,
    continue: opts.continue,
    resourceVersion: opts.resourceVersion,
    resourceVersionMatch: opts.resourceVersionMatch,
  };
}

/** The answer is in Kubernetes protobuf (a list, an object, a Status or a watch stream). */
export function isProtobuf(res: Response): boolean {
  return (res.headers.get("Content-Type") ?? "").startsWith(PROTOBUF_TYPE);
}

function writeQuery(opts: WriteOptions): RequestOptions["query"] {
  return { fieldManager: opts.fieldManager, dryRun: opts.dryRun ? "All" : undefined };
}

function transportError(e: unknown, server: string): KubeApiError {
  // Deno says only "fetch failed" and keeps the reason (TLS, refused, reset) in `cause`.
  const inner = e instanceof Error && e.cause instanceof Error ? e.cause : e;
  const msg = inner instanceof Error ? inner.message : String(inner);
  const short = msg
    .replace(/^error sending request for url \([^)]*\):\s*/, "")
    .replace(/^client error \((\w+)\):\s*/, "$1: ")
    .replace(/: https:\/\/docs\.rs\/\S+$/, "");
  return new KubeApiError(0, "ConnectionError", `cannot reach ${server}: ${short}`);
}

async function errorFromResponse(res: Response): Promise<KubeApiError> {
  const retryAfterMs = parseRetryAfter(res.headers.get("Retry-After"));
  if (isProtobuf(res)) {
    // An error answer to a protobuf request is a protobuf Status.
    const bytes = new Uint8Array(await res.arrayBuffer().catch(() => new ArrayBuffer(0)));
    try {
      const status = readStatus(unwrapEnvelope(bytes).raw);
      return KubeApiError.fromStatus(status, res.status, retryAfterMs);
    } catch {
      return new KubeApiError(res.status, res.statusText || `HTTP${res.status}`, `HTTP ${res.status}`);
    }
  }
  const text = await res.text().catch(() => "");
  try {
    const status = JSON.parse(text) as KubeStatus;
    if (status && status.kind === "Status") return KubeApiError.fromStatus(status, res.status, retryAfterMs);
  } catch {
    // not JSON: fall through
  }
  // Not a Status: e.g. an API group that does not exist at all answers a bare "404 page not found".
  const reason = res.statusText || `HTTP${res.status}`;
  const body = text.trim().split("\n")[0].slice(0, 200);
  const message = res.status === 404 ? "the server could not find the requested resource" : body || reason;
  return new KubeApiError(res.status, reason, message, undefined, retryAfterMs);
}
