// Records core/v1 Events so `kubectl describe` shows what MIC did to an object, with client-go's recorder
// safeguards so a retry loop cannot flood etcd or the apiserver:
// - repeats of the same event (same object, type, reason and message) bump `count` on the existing Event;
// - many similar events (same object, type and reason, different messages) fold into one combined Event;
// - a per-object token bucket drops events beyond a burst (25, then 1 per 5 minutes);
// - writes go through a bounded queue with a small concurrency; when full, the oldest waiting event is
//   dropped and counted.
// record() never throws and never rejects: events are advice, not state.

import { isoTime } from "../time_text.ts";
import type { Logger } from "../log.ts";
import { log as defaultLog } from "../log.ts";
import { CauseLog } from "./cause_log.ts";
import {
  type AggregatorOptions,
  EventAggregator,
  SpamFilter,
  type SpamFilterOptions,
} from "./event_correlator.ts";
import { KubeApiError } from "./api_error.ts";
import type { KubeClient } from "./rest.ts";
import { Resources } from "./resource.ts";
import type { KubeObject } from "./types.ts";

export const EVENT_COMPONENT = "aadpodidentity.k8s.io";

export type EventType = "Normal" | "Warning";

interface ObjectReference {
  apiVersion?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
}

export interface CoreEvent extends KubeObject {
  involvedObject: ObjectReference;
  reason: string;
  message: string;
  type: EventType;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
  source: { component: string; host?: string };
  reportingComponent: string;
  reportingInstance: string;
}

interface EventRecorderOptions {
  client: KubeClient;
  component?: string;
  /** Identifies this replica (e.g. hostname); becomes reportingInstance and source.host. */
  instance?: string;
  /** How many distinct events are remembered for aggregation (oldest forgotten first). */
  cacheSize?: number;
  /** Per-object token bucket (default burst 25, one more per 5 minutes, as client-go). */
  spamFilter?: SpamFilterOptions;
  /** Folding of similar events (default: the 10th distinct message in 10 minutes, as client-go). */
  aggregator?: AggregatorOptions;
  /** Event writes in flight at once (default 2). */
  concurrency?: number;
  /** Events waiting to be written; beyond it the oldest waiting one is dropped (default 1000). */
  maxQueue?: number;
  log?: Logger;
}

interface EventRecorderStats {
  /** Events handed to record() that were valid. */
  recorded: number;
  /** Events created or counted on the apiserver. */
  written: number;
  /** Dropped by the per-object spam filter. */
  spamFiltered: number;
  /** Written as part of a combined event. */
  combined: number;
  /** Dropped because the queue was full (the oldest waiting ones). */
  dropped: number;
  /** Refused as bad input (no object, no name, unknown type, empty reason). */
  invalid: number;
  /** Writes the apiserver refused or that failed in transit. */
  failed: number;
}

interface Job {
  key: string;
  ref: ObjectReference;
  type: EventType;
  reason: string;
  message: string;
  done: () => void;
}

interface Seen {
  name: string;
  namespace: string;
  count: number;
  firstTimestamp: string;
}

/** Kubernetes event timestamps are metav1.Time: second precision. */
function timeNow(): string {
  return isoTime(Date.now()).replace(/\.\d{3}Z$/, "Z");
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown"; // no --allow-sys: the component name alone still identifies the source
  }
}

function referenceOf(obj: KubeObject): ObjectReference {
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    name: obj.metadata.name,
    namespace: obj.metadata.namespace,
    uid: obj.metadata.uid,
    resourceVersion: obj.metadata.resourceVersion,
  };
}

/** Why an event cannot be recorded, or undefined when it can. */
function invalidEvent(obj: unknown, type: unknown, reason: unknown, message: unknown): string | undefined {
  const meta = (obj as KubeObject | null | undefined)?.metadata;
  if (!meta || typeof meta !== "object") return "no object";
  if (typeof meta.name !== "string" || meta.name === "") return "the object has no name";
  if (type !== "Normal" && type !== "Warning") return `unknown event type ${JSON.stringify(type)}`;
  if (typeof reason !== "string" || reason === "") return "no reason";
  if (typeof message !== "string") return "the message is not a string";
  return undefined;
}

export class EventRecorder {
  readonly stats: EventRecorderStats = {
    recorded: 0,
    written: 0,
    spamFiltered: 0,
    combined: 0,
    dropped: 0,
    invalid: 0,
    failed: 0,
  };
  #client: KubeClient;
  #component: string;
  #instance: string;
  #cacheSize: number;
  #log: Logger;
  #seen = new Map<string, Seen>();
  #spam: SpamFilter;
  #aggregator: EventAggregator;
  #concurrency: number;
  #maxQueue: number;
  #queue: Job[] = [];
  #active = 0;
  /** Keys being written: a repeat waits for the first write instead of racing it into a duplicate. */
  #inFlight = new Set<string>();
  #idle: (() => void)[] = [];
  #writeFailures: CauseLog = new CauseLog();
  #drops: CauseLog = new CauseLog();

  constructor(opts: EventRecorderOptions) {
    this.#client = opts.client;
    this.#component = opts.component ?? EVENT_COMPONENT;
    this.#instance = opts.instance ?? hostname();
    this.#cacheSize = opts.cacheSize ?? 4096;
    this.#log = opts.log ?? defaultLog;
    this.#spam = new SpamFilter(opts.spamFilter);
    this.#aggregator = new EventAggregator({ cacheSize: this.#cacheSize, ...opts.aggregator });
    this.#concurrency = opts.concurrency ?? 2;
    this.#maxQueue = opts.maxQueue ?? 1000;
    if (!(this.#concurrency >= 1 && this.#maxQueue >= 0)) {
      throw new RangeError("event recorder needs concurrency >= 1 and maxQueue >= 0");
    }
  }

  /**
   * Records an event about `obj` (which needs kind and apiVersion). Never throws and never rejects: an
   * event that is bad input, spam, crowded out of the queue or refused by the apiserver is counted in
   * `stats`, logged, and dropped. The promise settles when the event was written or dropped.
   */
  record(obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    try {
      const why = invalidEvent(obj, type, reason, message);
      if (why) {
        this.stats.invalid++;
        this.#log.warn(`event not recorded: ${why}`, { reason: String(reason) });
        return Promise.resolve();
      }
      this.stats.recorded++;
      const ref = referenceOf(obj);
      const source = `${this.#component}\u0000${this.#instance}`;
      const object = [ref.apiVersion, ref.kind, ref.namespace, ref.name, ref.uid].join("\u0000");
      if (!this.#spam.allow(`${source}\u0000${object}`)) {
        this.stats.spamFiltered++;
        return Promise.resolve();
      }
      const agg = this.#aggregator.aggregate([source, object, type, reason].join("\u0000"), message);
      if (agg.combined) this.stats.combined++;
      return new Promise<void>((done) => {
        this.#queue.push({ key: agg.key, ref, type, reason, message: agg.message, done });
        if (this.#queue.length > this.#maxQueue) {
          const oldest = this.#queue.shift()!;
          this.stats.dropped++;
          if (this.#drops.failed("full")) {
            this.#log.warn(`event queue full (${this.#maxQueue}): dropping the oldest waiting events`);
          }
          oldest.done();
        }
        this.#pump();
      });
    } catch (e) {
      this.stats.invalid++;
      this.#log.warn("event not recorded", { error: e });
      return Promise.resolve();
    }
  }

  /** Resolves once nothing is queued or being written (for shutdown and tests). */
  drain(): Promise<void> {
    if (this.#active === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  #pump(): void {
    while (this.#active < this.#concurrency) {
      const i = this.#queue.findIndex((j) => !this.#inFlight.has(j.key));
      if (i < 0) break;
      const [job] = this.#queue.splice(i, 1);
      this.#active++;
      this.#inFlight.add(job.key);
      this.#write(job).finally(() => {
        this.#active--;
        this.#inFlight.delete(job.key);
        job.done();
        this.#pump();
        if (this.#active === 0 && this.#queue.length === 0) {
          this.#drops.recovered();
          for (const r of this.#idle.splice(0)) r();
        }
      });
    }
  }

  async #write({ key, ref, type, reason, message }: Job): Promise<void> {
    const now = timeNow();
    const seen = this.#seen.get(key);
    try {
      if (seen) {
        try {
          // The message goes too: a combined event shows the latest of the messages it stands for.
          await this.#client.patch(Resources.events, seen.name, "merge", {
            count: seen.count + 1,
            lastTimestamp: now,
            message,
          }, { namespace: seen.namespace });
          seen.count++;
          this.#touch(key, seen);
          this.#wrote();
          return;
        } catch (e) {
          // The Event expired (apiserver TTL, 1 h by default): start a new one.
          if (!(e instanceof KubeApiError && e.isNotFound)) throw e;
          this.#seen.delete(key);
        }
      }
      const namespace = ref.namespace || "default";
      // client-go's naming: <object>.<hex nanoseconds>, unique per event.
      const name = `${ref.name}.${
        (BigInt(Date.now()) * 1_000_000n + BigInt(Math.floor(Math.random() * 1e6))).toString(16)
      }`;
      await this.#client.create<CoreEvent>(Resources.events, {
        metadata: { name, namespace },
        involvedObject: ref,
        reason,
        message,
        type,
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: this.#component, host: this.#instance },
        reportingComponent: this.#component,
        reportingInstance: this.#instance,
      });
      this.#touch(key, { name, namespace, count: 1, firstTimestamp: now });
      this.#wrote();
    } catch (e) {
      this.stats.failed++;
      const cause = e instanceof KubeApiError ? `${e.status}:${e.reason}` : String(e);
      if (this.#writeFailures.failed(cause)) {
        this.#log.warn(
          `event ${type} ${reason} on ${ref.kind} ${ref.namespace ?? ""}/${ref.name} not recorded`,
          { error: e },
        );
      }
    }
  }

  #wrote(): void {
    this.stats.written++;
    this.#writeFailures.recovered();
  }

  #touch(key: string, seen: Seen): void {
    // Map order is insertion order: re-inserting makes this the most recent entry.
    this.#seen.delete(key);
    this.#seen.set(key, seen);
    while (this.#seen.size > this.#cacheSize) this.#seen.delete(this.#seen.keys().next().value!);
  }
}
