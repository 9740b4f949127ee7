// One small REST layer over fetch for every kind the services touch: core kinds and our CRDs share the same
// URL scheme, so a ResourceType descriptor is all a caller names. Errors come back as KubeApiError built
// from the apiserver's Status object, so callers branch on status/reason, never on message text.

import type { KubeConnection } from "./config.ts";
import { parseRetryAfter } from "./backoff.ts";
// pager.ts imports this module too; the cycle is safe because neither uses the other at load time.
import { listPages } from "./pager.ts";
import type { KubeList, KubeObject, KubeStatus } from "./types.ts";
import type { BuiltinCodec } from "./builtin_proto.ts";
import { decodeListStream } from "./proto_list.ts";
import { readStatus, unwrapEnvelope } from "./protobuf.ts";

/** Protobuf first, JSON if the server (or a proxy in between) cannot: client-go asks the same way. */
export const PROTOBUF_ACCEPT = "application/vnd.kubernetes.protobuf, application/json";
const PROTOBUF_TYPE = "application/vnd.kubernetes.protobuf";

/** Wire format of a watch: protobuf is only asked for kinds with a decoder (never for CRDs). */
export type WireFormat = "json" | "protobuf";

export interface ResourceType {
  /** "" for the core group. */
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
  kind: string;
}

function core(plural: string, kind: string, namespaced: boolean): ResourceType {
  return { group: "", version: "v1", plural, kind, namespaced };
}
function aad(plural: string, kind: string): ResourceType {
  return { group: "aadpodidentity.k8s.io", version: "v1", plural, kind, namespaced: true };
}

export const Resources = {
  pods: core("pods", "Pod", true),
  nodes: core("nodes", "Node", false),
  namespaces: core("namespaces", "Namespace", false),
  configMaps: core("configmaps", "ConfigMap", true),
  secrets: core("secrets", "Secret", true),
  events: core("events", "Event", true),
  serviceAccounts: core("serviceaccounts", "ServiceAccount", true),
  leases: { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true },
  customResourceDefinitions: {
    group: "apiextensions.k8s.io",
    version: "v1",
    plural: "customresourcedefinitions",
    kind: "CustomResourceDefinition",
    namespaced: false,
  },
  azureIdentities: aad("azureidentities", "AzureIdentity"),
  azureIdentityBindings: aad("azureidentitybindings", "AzureIdentityBinding"),
  azureAssignedIdentities: aad("azureassignedidentities", "AzureAssignedIdentity"),
  azurePodIdentityExceptions: aad("azurepodidentityexceptions", "AzurePodIdentityException"),
} as const satisfies Record<string, ResourceType>;

/** `pods`, `leases.coordination.k8s.io`: how kubectl and the apiserver name a resource in messages. */
export function resourceName(rt: ResourceType): string {
  return rt.group ? `${rt.plural}.${rt.group}` : rt.plural;
}

export function apiVersionOf(rt: ResourceType): string {
  return rt.group ? `${rt.group}/${rt.version}` : rt.version;
}

/** The collection URL path: `/api/v1/namespaces/ns/pods`, `/apis/g/v/plural`. */
export function collectionPath(rt: ResourceType, namespace?: string): string {
  const base = rt.group ? `/apis/${rt.group}/${rt.version}` : `/api/${rt.version}`;
  if (rt.namespaced && namespace) return `${base}/namespaces/${encodeURIComponent(namespace)}/${rt.plural}`;
  if (!rt.namespaced && namespace) {
    throw new Error(`${resourceName(rt)} is cluster-scoped; no namespace allowed`);
  }
  return `${base}/${rt.plural}`;
}

export function objectPath(rt: ResourceType, name: string, namespace?: string, subresource?: string): string {
  if (rt.namespaced && !namespace) throw new Error(`${resourceName(rt)} ${name}: namespace required`);
  const p = `${collectionPath(rt, namespace)}/${encodeURIComponent(name)}`;
  return subresource ? `${p}/${subresource}` : p;
}

/**
 * What kind of failure a KubeApiError is: an answer from the apiserver, no answer at all, or no answer
 * within the client's request timeout. A caller's own abort is never a KubeApiError: it rethrows the
 * caller's abort reason, so "I gave up" and "the server is slow" stay apart.
 */
export type KubeErrorKind = "status" | "transport" | "timeout";

/** Reason of the KubeApiError thrown when the client's own request timeout ends a request. */
export const TIMEOUT_REASON = "Timeout";

/** An error answer from the apiserver (or a transport failure or timeout, status 0). */
export class KubeApiError extends Error {
  constructor(
    /** HTTP status; 0 when no HTTP answer arrived (connection refused, TLS failure, reset). */
    readonly status: number,
    /** metav1.StatusReason (NotFound, Conflict, Expired, Gone, ...), or a transport label. */
    readonly reason: string,
    message: string,
    readonly details?: KubeStatus["details"],
    /** From a Retry-After header or Status.details.retryAfterSeconds. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "KubeApiError";
  }

  static fromStatus(s: KubeStatus, httpStatus?: number, retryAfterMs?: number): KubeApiError {
    const code = httpStatus ?? s.code ?? 500;
    const retry = retryAfterMs ??
      (s.details?.retryAfterSeconds !== undefined ? s.details.retryAfterSeconds * 1000 : undefined);
    return new KubeApiError(code, s.reason ?? "Unknown", s.message ?? `HTTP ${code}`, s.details, retry);
  }

  get kind(): KubeErrorKind {
    if (this.status !== 0) return "status";
    return this.reason === TIMEOUT_REASON ? "timeout" : "transport";
  }
  /** The client's request timeout ended the request before a full answer arrived. */
  get isTimeout(): boolean {
    return this.kind === "timeout";
  }

  /** True for "resourceVersion too old": the caller must list again. */
  get isGone(): boolean {
    return this.status === 410 || this.reason === "Expired" || this.reason === "Gone";
  }
  get isNotFound(): boolean {
    return this.status === 404;
  }
  get isConflict(): boolean {
    return this.status === 409;
  }
  get isAlreadyExists(): boolean {
    return this.status === 409 && this.reason === "AlreadyExists";
  }
}

export type PatchType = "merge" | "json" | "strategic" | "apply";
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
  apply: "application/apply-patch+yaml",
};

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: "Exact" | "NotOlderThan";
}

export interface WatchOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  timeoutSeconds?: number;
}

export interface WriteOptions {
  fieldManager?: string;
  dryRun?: boolean;
}

export interface PatchOptions extends WriteOptions {
  namespace?: string;
  subresource?: string;
  /** Server-side apply: take ownership of conflicting fields. */
  force?: boolean;
}

export interface DeleteOptions {
  namespace?: string;
  propagationPolicy?: "Orphan" | "Background" | "Foreground";
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  /** Accept header; default application/json. */
  accept?: string;
  signal?: AbortSignal;
}

export interface KubeClientOptions {
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
    const timeout = AbortSignal.timeout(this.requestTimeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    try {
      return await this.#request<R>(method, path, { ...opts, signal }, read);
    } catch (e) {
      if (timeout.aborted && !opts.signal?.aborted) {
        throw new KubeApiError(
          0,
          TIMEOUT_REASON,
          `${method} ${path}: no answer from ${this.conn.server} within ${this.requestTimeoutMs} ms`,
        );
      }
      throw e;
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
    const paged = await listPages<T>(this, rt, opts, signal);
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
