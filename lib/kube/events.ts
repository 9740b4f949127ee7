// Records core/v1 Events so `kubectl describe` shows what MIC did to an object. Repeats of the same event
// (same object, type, reason and message) bump `count` on the existing Event instead of creating a new
// one, as client-go's recorder does, so a retry loop cannot flood etcd.

import type { Logger } from "../log.ts";
import { log as defaultLog } from "../log.ts";
import { KubeApiError, type KubeClient, Resources } from "./rest.ts";
import type { KubeObject } from "./types.ts";

export const EVENT_COMPONENT = "aadpodidentity.k8s.io";

export type EventType = "Normal" | "Warning";

export interface ObjectReference {
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

export interface EventRecorderOptions {
  client: KubeClient;
  component?: string;
  /** Identifies this replica (e.g. hostname); becomes reportingInstance and source.host. */
  instance?: string;
  /** How many distinct events are remembered for aggregation (oldest forgotten first). */
  cacheSize?: number;
  log?: Logger;
}

interface Seen {
  name: string;
  namespace: string;
  count: number;
  firstTimestamp: string;
}

/** Kubernetes event timestamps are metav1.Time: second precision. */
function timeNow(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown"; // no --allow-sys: the component name alone still identifies the source
  }
}

export function referenceOf(obj: KubeObject): ObjectReference {
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    name: obj.metadata.name,
    namespace: obj.metadata.namespace,
    uid: obj.metadata.uid,
    resourceVersion: obj.metadata.resourceVersion,
  };
}

export class EventRecorder {
  #client: KubeClient;
  #component: string;
  #instance: string;
  #cacheSize: number;
  #log: Logger;
  #seen = new Map<string, Seen>();
  // Per aggregation key, so a repeat waits for the first write instead of racing it into a duplicate.
  #pending = new Map<string, Promise<void>>();

  constructor(opts: EventRecorderOptions) {
    this.#client = opts.client;
    this.#component = opts.component ?? EVENT_COMPONENT;
    this.#instance = opts.instance ?? hostname();
    this.#cacheSize = opts.cacheSize ?? 4096;
    this.#log = opts.log ?? defaultLog;
  }

  /**
   * Records an event about `obj` (which needs kind and apiVersion). Never throws: an event that cannot be
   * written is logged and dropped, since events are advice, not state.
   */
  record(obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const ref = referenceOf(obj);
    const key = [ref.kind, ref.namespace, ref.name, ref.uid, type, reason, message].join("\u0000");
    const prev = this.#pending.get(key) ?? Promise.resolve();
    const next = prev.then(() => this.#write(key, ref, type, reason, message));
    this.#pending.set(key, next);
    next.finally(() => {
      if (this.#pending.get(key) === next) this.#pending.delete(key);
    });
    return next;
  }

  async #write(
    key: string,
    ref: ObjectReference,
    type: EventType,
    reason: string,
    message: string,
  ): Promise<void> {
    const now = timeNow();
    const seen = this.#seen.get(key);
    try {
      if (seen) {
        try {
          await this.#client.patch(Resources.events, seen.name, "merge", {
            count: seen.count + 1,
            lastTimestamp: now,
          }, { namespace: seen.namespace });
          seen.count++;
          this.#touch(key, seen);
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
    } catch (e) {
      this.#log.warn(
        `event ${type} ${reason} on ${ref.kind} ${ref.namespace ?? ""}/${ref.name} not recorded`,
        {
          error: e,
        },
      );
    }
  }

  #touch(key: string, seen: Seen): void {
    // Map order is insertion order: re-inserting makes this the most recent entry.
    this.#seen.delete(key);
    this.#seen.set(key, seen);
    while (this.#seen.size > this.#cacheSize) this.#seen.delete(this.#seen.keys().next().value!);
  }
}
