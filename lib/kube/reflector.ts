// The list/watch loop that keeps a Store equal to the server. It follows client-go's reflector: a LIST
// served from the apiserver's watch cache (see listFrom for why that is safe), then a WATCH from the list's
// resourceVersion with bookmarks and a randomized server-side timeout, resuming from the last seen
// resourceVersion whenever a watch ends, and re-listing (with an exact diff) only when the server says
// that version is gone. Failures back off with jitter and are logged once per
// distinct cause, not once per retry.

import type { Logger } from "../log.ts";
import { log as defaultLog } from "../log.ts";
import { sleep } from "../sleep.ts";
import { Backoff, type BackoffOptions } from "./backoff.ts";
import { CauseLog } from "./cause_log.ts";
import { KubeApiError } from "./api_error.ts";
import { builtinCodec } from "./builtin_proto.ts";
import { clientListerWatcher, type ListerWatcher } from "./lister_watcher.ts";
import type { ListOptions } from "./request_options.ts";
import { apiVersionOf, resourceName, type ResourceType } from "./resource.ts";
import type { KubeClient } from "./rest.ts";
import type { Store } from "./store.ts";
import type { KubeObject, KubeStatus } from "./types.ts";
import { listPages } from "./pager.ts";

interface ReflectorOptions<T extends KubeObject> {
  /** The apiserver client the default ListerWatcher (`clientListerWatcher`) lists and watches with. */
  client?: KubeClient;
  /** Lists and watches instead of `client` (tests give a fake one); namespace, selectors and encoding
   * then only name the reflector in log lines. */
  listerWatcher?: ListerWatcher<T>;
  resource: ResourceType;
  store: Store<T>;
  /** Only this namespace; all namespaces when absent. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** LIST page size (`limit`); 0 lists in one response. Default 500, as client-go. */
  pageSize?: number;
  /**
   * Server-side watch timeout in seconds, or a function picking one per watch. Default: random in
   * [300, 600) like client-go, so many clients do not reconnect in step.
   */
  watchTimeoutSeconds?: number | (() => number);
  /** Pacing of retries after errors. Default 1 s doubling to 30 s, +0-50% jitter. */
  backoff?: BackoffOptions;
  /**
   * Applied to every object before it enters the store. Default: drop `metadata.managedFields`, which is
   * often the largest part of an object and which no cache reader needs (it is what made the original
   * MIC's pod cache grow, #180/#1278). Pass `(o) => o` to keep objects whole.
   */
  transform?: (obj: T) => T;
  /** A still-failing cause is logged again after this long (default 5 minutes). */
  repeatLogMs?: number;
  /**
   * Wire format and cache shape for built-in kinds with a protobuf decoder (pods, nodes, leases):
   * "protobuf" (default) lists and watches in protobuf and caches the slim projection of builtin_proto.ts
   * (all of metadata plus the spec/status fields the services read); "json" caches whole objects. Other
   * kinds (CRDs) are always JSON and whole.
   */
  encoding?: "protobuf" | "json";
  log?: Logger;
}

export interface ReflectorStats {
  /** Completed full LISTs (the first one included). */
  lists: number;
  /** LIST requests those took (pages, fallbacks). */
  listRequests: number;
  /** Re-lists forced by an expired resourceVersion (410). */
  relists: number;
  /** Watch requests answered with 200. */
  watches: number;
  /** ADDED/MODIFIED/DELETED events received. */
  events: number;
  bookmarks: number;
  /** Failed LIST or WATCH attempts. */
  errors: number;
}

class WatchExpired extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WatchExpired";
  }
}

const BUILT_IN_GROUPS = new Set([
  "",
  "apps",
  "batch",
  "policy",
  "autoscaling",
  "coordination.k8s.io",
  "apiextensions.k8s.io",
  "events.k8s.io",
  "rbac.authorization.k8s.io",
  "networking.k8s.io",
  "discovery.k8s.io",
  "storage.k8s.io",
]);

/**
 * Which snapshot a LIST asks for, given the resourceVersion the cache holds (none before the first LIST).
 * - First LIST: resourceVersion=0 ("any version"), the request client-go's informers make. The apiserver
 *   answers it from its watch cache in one response (it ignores `limit` there: the objects are in memory
 *   already, so pages would only add round trips), and pages it from etcd when the watch cache is off.
 *   "Any version" may lag the server by the cache's delay, so the reflector first reads the server's
 *   current resourceVersion (a one-key probe) and refuses an answer older than that: `synced` then still
 *   means "everything that existed when the informer started is in the cache", which MIC and NMI rely on.
 *   In practice the answer is never older: on 1.31+ the probe is a consistent read that itself waits for
 *   the watch cache to catch up with etcd.
 * - Re-list: resourceVersion=held with resourceVersionMatch=NotOlderThan, also served from the watch
 *   cache, once the cache has caught up with what we hold: the answer is never older than our cache, so a
 *   re-list cannot move it back in time (resurrect deleted objects, undo updates).
 * - When the apiserver cannot serve that (410 Gone; 504 "Too large resource version" when its watch
 *   cache does not reach the version in time, e.g. just after a restart; or an answer older than asked
 *   for): resourceVersion="" (a quorum read, the newest state), as client-go does.
 * The streaming list (watch with sendInitialEvents=true) would save the LIST too, but kube-apiserver 1.33+
 * ships with its WatchList gate off, so it is not used.
 */
export function listFrom(held: string | undefined, heldUnavailable: boolean): ListOptions {
  if (heldUnavailable) return {};
  if (held === undefined) return { resourceVersion: "0" };
  return { resourceVersion: held, resourceVersionMatch: "NotOlderThan" };
}

/**
 * True when list resourceVersion `next` is older than `held`. Resource versions are opaque in the API, but
 * every kube-apiserver (etcd revisions) sends decimal integers; anything else is not compared.
 */
export function isOlder(next: string | undefined, held: string | undefined): boolean {
  if (!next || !held || !/^\d+$/.test(next) || !/^\d+$/.test(held)) return false;
  return BigInt(next) < BigInt(held);
}

/** A LIST could not be served at the resourceVersion asked for: ask for the newest state instead. */
function listRvUnavailable(e: unknown): boolean {
  if (e instanceof StaleList) return true;
  if (!(e instanceof KubeApiError)) return false;
  return e.isGone || (e.status === 504 && /too large resource version/i.test(e.message));
}

class StaleList extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StaleList";
  }
}

/** An apiserver answer meaning "the resourceVersion you hold is not served any more: list again". */
function mustRelist(e: unknown): boolean {
  if (e instanceof WatchExpired) return true;
  if (!(e instanceof KubeApiError)) return false;
  if (e.isGone) return true;
  // After an apiserver restart its watch cache may be behind the RV we hold; client-go re-lists too.
  return e.status === 504 && /too large resource version/i.test(e.message);
}

export class Reflector<T extends KubeObject> {
  readonly resource: ResourceType;
  readonly stats: ReflectorStats = {
    lists: 0,
    listRequests: 0,
    relists: 0,
    watches: 0,
    events: 0,
    bookmarks: 0,
    errors: 0,
  };
  /** Resolves once the first full LIST has been applied to the store. */
  readonly synced: Promise<void>;
  #opts: ReflectorOptions<T>;
  #log: Logger;
  #backoff: Backoff;
  #resolveSynced!: () => void;
  #rv: string | undefined;
  /** The last LIST at #rv was refused (410, or the watch cache did not reach it): next LIST is a quorum read. */
  #rvUnavailable = false;
  #lw: ListerWatcher<T>;
  /** Where the credentials come from, for the hint on a 401. */
  #credentials: string;
  #causes: CauseLog;
  /** 410s in a row with no watch event in between: the second and later ones back off. */
  #goneStreak = 0;
  #running = false;

  constructor(opts: ReflectorOptions<T>) {
    this.#opts = opts;
    this.resource = opts.resource;
    this.#log = opts.log ?? defaultLog;
    this.#backoff = new Backoff(opts.backoff);
    this.#causes = new CauseLog(opts.repeatLogMs ?? 300_000);
    const { client, resource, namespace, labelSelector, fieldSelector } = opts;
    if (opts.listerWatcher) this.#lw = opts.listerWatcher;
    else if (client) {
      const codec = opts.encoding === "json" ? undefined : builtinCodec(resource);
      this.#lw = clientListerWatcher({ client, resource, namespace, labelSelector, fieldSelector, codec });
    } else throw new Error(`reflector for ${resourceName(resource)}: neither client nor listerWatcher given`);
    this.#credentials = client?.conn.source ?? "the lister-watcher";
    this.synced = new Promise((r) => this.#resolveSynced = r);
  }

  /** The resourceVersion the next watch resumes from. */
  get resourceVersion(): string | undefined {
    return this.#rv;
  }

  /** `watch pods (namespace=x, labels=y)`-style name for log lines. */
  get description(): string {
    const { namespace, labelSelector, fieldSelector } = this.#opts;
    const scope = [
      namespace ? `namespace=${namespace}` : "",
      labelSelector ? `labels=${labelSelector}` : "",
      fieldSelector ? `fields=${fieldSelector}` : "",
    ].filter(Boolean).join(", ");
    return scope ? `${resourceName(this.resource)} (${scope})` : resourceName(this.resource);
  }

  /** Resolves true once synced, false if `signal` aborts first. */
  waitForSync(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = () => resolve(false);
      signal.addEventListener("abort", onAbort, { once: true });
      this.synced.then(() => {
        signal.removeEventListener("abort", onAbort);
        resolve(true);
      });
    });
  }

  /** Runs until `signal` aborts; never rejects for apiserver trouble, only keeps retrying. */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#running) throw new Error(`reflector for ${this.description} is already running`);
    this.#running = true;
    let needList = true;
    try {
      while (!signal.aborted) {
        let op: "list" | "watch" = needList ? "list" : "watch";
        try {
          if (needList) {
            await this.#listAndReplace(signal);
            needList = false;
            // A LIST between two 410s is no recovery: the streak's failures stay counted and logged once.
            if (this.#goneStreak === 0) this.#recovered("list");
            this.#resolveSynced();
          }
          op = "watch";
          const outcome = await this.#watch(signal);
          if (outcome === "short") {
            // A watch that closes at once with nothing in it would otherwise spin; treat it as a failure.
            throw new KubeApiError(0, "ShortWatch", "the watch closed immediately without events");
          }
          this.#recovered("watch");
        } catch (e) {
          if (signal.aborted) break;
          if (op === "watch" && mustRelist(e)) {
            needList = true;
            this.stats.relists++;
            // Straight to LIST: a 410 is an answer from a healthy server, not an outage to wait out. But a
            // watch that expires again before it delivered anything after a fresh LIST would re-list in a
            // tight loop; from the second such 410 on, the normal backoff paces the re-lists.
            if (this.#goneStreak++ === 0) {
              this.#log.info(`watch ${this.description}: resourceVersion expired, re-listing`, {
                resourceVersion: this.#rv,
              });
              continue;
            }
          } else {
            this.stats.errors++;
          }
          const delay = this.#delayAfter(e);
          this.#report(op, e, delay);
          if (!(await sleep(delay, signal))) break;
        }
      }
    } finally {
      this.#running = false;
    }
  }

  async #listAndReplace(signal: AbortSignal): Promise<void> {
    const { resource } = this.#opts;
    let listed: { items: T[]; resourceVersion: string | undefined; requests: number };
    try {
      listed = await this.#list(signal);
    } catch (e) {
      if (this.#rvUnavailable || !listRvUnavailable(e) || signal.aborted) throw e;
      // Straight on to a quorum read: the apiserver answered, it just cannot serve that version.
      this.#rvUnavailable = true;
      const version = this.#rv ?? "0 (the watch cache)";
      this.#log.info(`list ${this.description}: resourceVersion ${version} not served, listing the newest`, {
        reason: e instanceof Error ? e.message : String(e),
      });
      listed = await this.#list(signal);
    }
    this.#rvUnavailable = false;
    const { items, resourceVersion: listRv } = listed;
    const transform = this.#opts.transform ?? dropManagedFields;
    // LIST items come without apiVersion/kind while watch events carry them; fill them in so every cached
    // object looks the same (an Event's involvedObject needs the kind).
    const apiVersion = apiVersionOf(resource);
    this.#opts.store.replace(
      items.map((o) => transform(o.kind ? o : { ...o, apiVersion, kind: resource.kind })),
    );
    this.#rv = listRv;
    this.stats.lists++;
    this.stats.listRequests += listed.requests;
    // During a streak of 410s the backoff must keep growing across the LISTs in between.
    if (this.#goneStreak === 0) this.#backoff.reset();
  }

  /** One LIST (all pages) from the snapshot listFrom picks; a snapshot older than the cache is refused. */
  async #list(
    signal: AbortSignal,
  ): Promise<{ items: T[]; resourceVersion: string | undefined; requests: number }> {
    const pageSize = this.#opts.pageSize ?? 500;
    const from = listFrom(this.#rv, this.#rvUnavailable);
    // First LIST from the watch cache: it must not be older than the server was when we started.
    const floor = this.#rv ?? (from.resourceVersion === "0" ? await this.#currentRv(signal) : undefined);
    const paged = await listPages<T>(
      (o, s) => this.#lw.list(o, s),
      { limit: pageSize > 0 ? pageSize : undefined, ...from },
      signal,
    );
    // On a re-list NotOlderThan already promises this; the check keeps the promise even against a server
    // (or proxy) that ignores the match, since replacing the cache with an older list would resurrect
    // deleted objects.
    if (from.resourceVersion !== undefined && isOlder(paged.resourceVersion, floor)) {
      throw new StaleList(`list answered resourceVersion ${paged.resourceVersion}, older than ${floor}`);
    }
    return { items: paged.items, resourceVersion: paged.resourceVersion, requests: paged.requests };
  }

  /** The server's current resourceVersion (one request, counted with the LIST requests). */
  async #currentRv(signal: AbortSignal): Promise<string | undefined> {
    const rv = await this.#lw.currentResourceVersion(signal);
    this.stats.listRequests++;
    return rv;
  }

  /** One watch request; returns how it ended when the server closed it cleanly. */
  async #watch(signal: AbortSignal): Promise<"events" | "short"> {
    const store = this.#opts.store;
    const pick = this.#opts.watchTimeoutSeconds ?? (() => 300 + Math.floor(Math.random() * 300));
    const timeoutSeconds = typeof pick === "number" ? pick : pick();
    const ctrl = new AbortController();
    const onAbort = () => ctrl.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    // The server ends the watch at timeoutSeconds; silence well past that means a dead connection.
    const guard = setTimeout(
      () => ctrl.abort(new KubeApiError(0, "WatchStalled", "no data past the watch timeout")),
      (timeoutSeconds + 30) * 1000,
    );
    const started = performance.now();
    const transform = this.#opts.transform ?? dropManagedFields;
    let received = 0;
    try {
      const batches = await this.#lw.watch(
        { resourceVersion: this.#rv, allowWatchBookmarks: true, timeoutSeconds },
        ctrl.signal,
      );
      this.stats.watches++;
      for await (const batch of batches) {
        for (const ev of batch) {
          received++;
          switch (ev.type) {
            case "ADDED":
            case "MODIFIED":
              this.stats.events++;
              store.upsert(transform(ev.object));
              break;
            case "DELETED":
              this.stats.events++;
              store.delete(transform(ev.object));
              break;
            case "BOOKMARK":
              this.stats.bookmarks++;
              break;
            case "ERROR":
              throw watchError(ev.object);
          }
          // Advance only after the event is applied, so a resume never skips an unapplied change.
          const next = ev.object.metadata?.resourceVersion;
          if (next) this.#rv = next;
          if (received === 1) {
            this.#backoff.reset();
            this.#goneStreak = 0;
          }
        }
      }
      // The stall guard ends the stream quietly; report it as the failure it is.
      if (ctrl.signal.aborted && !signal.aborted) throw ctrl.signal.reason;
    } catch (e) {
      if (ctrl.signal.aborted && !signal.aborted && ctrl.signal.reason instanceof KubeApiError) {
        throw ctrl.signal.reason;
      }
      if (e instanceof KubeApiError || e instanceof WatchExpired || signal.aborted) throw e;
      throw new KubeApiError(0, "StreamError", `watch stream broke: ${(e as Error).message ?? e}`);
    } finally {
      clearTimeout(guard);
      signal.removeEventListener("abort", onAbort);
    }
    return received === 0 && performance.now() - started < 1000 ? "short" : "events";
  }

  #delayAfter(e: unknown): number {
    const backoff = this.#backoff.next();
    const retryAfter = e instanceof KubeApiError ? e.retryAfterMs : undefined;
    // Honor the server's wish, but never retry sooner than our own backoff nor later than 5 minutes.
    return retryAfter !== undefined ? Math.min(Math.max(retryAfter, backoff), 300_000) : backoff;
  }

  #report(op: "list" | "watch", e: unknown, delayMs: number): void {
    const { line, level, cause } = describeFailure(
      op,
      this.description,
      this.#opts.resource,
      this.#credentials,
      e,
    );
    if (!this.#causes.failed(cause)) return;
    this.#log[level](line, { attempt: this.#causes.failures, retryInMs: delayMs });
  }

  #recovered(op: "list" | "watch"): void {
    const failed = this.#causes.recovered();
    if (failed > 0) this.#log.info(`${op} ${this.description}: recovered after ${failed} failed attempt(s)`);
  }
}

/** The default cache transform: the object without `metadata.managedFields`. */
function dropManagedFields<T extends KubeObject>(obj: T): T {
  const meta = obj.metadata as KubeObject["metadata"] & { managedFields?: unknown };
  if (meta?.managedFields === undefined) return obj;
  const { managedFields: _, ...rest } = meta;
  return { ...obj, metadata: rest };
}

function watchError(status: KubeStatus): Error {
  if (status.code === 410 || status.reason === "Expired" || status.reason === "Gone") {
    return new WatchExpired(status.message ?? "resourceVersion too old");
  }
  return KubeApiError.fromStatus(status);
}

/** The single line a user sees for a failing list/watch: what failed, the status, and a hint. */
function describeFailure(
  op: "list" | "watch",
  what: string,
  rt: ResourceType,
  credentials: string,
  e: unknown,
): { line: string; level: "warn" | "error"; cause: string } {
  const prefix = `${op} ${what}`;
  if (!(e instanceof KubeApiError)) {
    const msg = e instanceof Error ? e.message : String(e);
    return { line: `${prefix}: ${msg}`, level: "error", cause: `other:${msg}` };
  }
  const cause = `${e.status}:${e.reason}`;
  switch (e.status) {
    case 0:
      return { line: `${prefix}: ${e.message}`, level: "warn", cause };
    case 401:
      return {
        line: `${prefix}: 401 Unauthorized: the apiserver rejected the credentials from ${credentials} ` +
          `(expired or wrong token or client certificate?)`,
        level: "error",
        cause,
      };
    case 403:
      return { line: `${prefix}: 403 ${e.message} (missing RBAC permission?)`, level: "error", cause };
    case 404: {
      const hint = BUILT_IN_GROUPS.has(rt.group)
        ? "(is this API served by the apiserver?)"
        : "(is the CRD installed?)";
      return { line: `${prefix}: 404 ${e.message} ${hint}`, level: "error", cause };
    }
    default:
      return { line: `${prefix}: ${e.status} ${e.message}`, level: "warn", cause };
  }
}
