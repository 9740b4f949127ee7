// A cache that follows one resource: a Store fed by a Reflector. This is what MIC and NMI hold: they read
// from `store`, subscribe with `addHandler`, and wait for `synced` before trusting an empty answer.

import type { Logger } from "../log.ts";
import type { BackoffOptions } from "./backoff.ts";
import { Reflector, type ReflectorStats } from "./reflector.ts";
import type { KubeClient } from "./rest.ts";
import { resourceName, type ResourceType } from "./resource.ts";
import { type EventHandler, type IndexFunc, Store } from "./store.ts";
import type { KubeObject } from "./types.ts";

export interface InformerOptions<T extends KubeObject> {
  client: KubeClient;
  resource: ResourceType;
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  indexers?: Record<string, IndexFunc<T>>;
  pageSize?: number;
  watchTimeoutSeconds?: number | (() => number);
  backoff?: BackoffOptions;
  repeatLogMs?: number;
  /** See ReflectorOptions.transform (default: drop managedFields). */
  transform?: (obj: T) => T;
  /** See ReflectorOptions.encoding (default "protobuf": slim pods/nodes/leases; "json": whole objects). */
  encoding?: "protobuf" | "json";
  log?: Logger;
}

export class Informer<T extends KubeObject> {
  readonly store: Store<T>;
  readonly reflector: Reflector<T>;
  #run: Promise<void> | undefined;

  constructor(opts: InformerOptions<T>) {
    this.store = new Store<T>({ indexers: opts.indexers, name: resourceName(opts.resource), log: opts.log });
    this.reflector = new Reflector<T>({ ...opts, store: this.store });
  }

  /** Resolves once the first full LIST is in the store. */
  get synced(): Promise<void> {
    return this.reflector.synced;
  }

  get stats(): ReflectorStats {
    return this.reflector.stats;
  }

  addHandler(handler: EventHandler<T>, opts?: { replay?: boolean }): () => void {
    return this.store.addHandler(handler, opts);
  }

  /** Starts the loop in the background; the returned promise settles after `signal` aborts. */
  start(signal: AbortSignal): Promise<void> {
    this.#run ??= this.reflector.run(signal);
    return this.#run;
  }

  waitForSync(signal: AbortSignal): Promise<boolean> {
    return this.reflector.waitForSync(signal);
  }
}

/** Index functions the services share. */
export const podIndexers = {
  byIP: (pod: KubeObject & { status?: { podIP?: string; podIPs?: { ip: string }[] } }): string[] => {
    const ips = new Set<string>();
    if (pod.status?.podIP) ips.add(pod.status.podIP);
    for (const p of pod.status?.podIPs ?? []) if (p.ip) ips.add(p.ip);
    return [...ips];
  },
  byNode: (pod: KubeObject & { spec?: { nodeName?: string } }): string[] =>
    pod.spec?.nodeName ? [pod.spec.nodeName] : [],
};
