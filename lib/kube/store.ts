// The watch cache: objects keyed by namespace/name, named secondary indexes, and change handlers. Every
// mutation goes through here, so handlers see exactly the changes the cache sees, in the same order, and an
// object whose resourceVersion did not change is never delivered again (no periodic resync: resyncs were
// the original MIC's CPU spikes every 10 minutes).

import type { Logger } from "../log.ts";
import { log as defaultLog } from "../log.ts";
import { type KubeObject, objectKey } from "./types.ts";

/** Returns the index values an object is filed under (none, one or many). */
export type IndexFunc<T> = (obj: T) => string[];

interface DeleteInfo {
  /**
   * True when the delete was inferred from a re-list (the watch missed the DELETED event): the object is
   * the last state the cache had, not the state at deletion.
   */
  finalStateUnknown: boolean;
}

export interface EventHandler<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T, info: DeleteInfo): void;
}

interface StoreOptions<T> {
  indexers?: Record<string, IndexFunc<T>>;
  /** Used in log lines about failing handlers. */
  name?: string;
  log?: Logger;
}

/** What one mutation did to the cache; "none" when the object was already known at that version. */
type Change = "added" | "updated" | "deleted" | "none";

interface ReplaceResult {
  added: number;
  updated: number;
  deleted: number;
}

const rv = (o: KubeObject) => o.metadata.resourceVersion;
const uid = (o: KubeObject) => o.metadata.uid;

export class Store<T extends KubeObject> {
  readonly name: string;
  #items = new Map<string, T>();
  #indexers: Map<string, IndexFunc<T>>;
  // index name -> value -> keys; plus each key's values so removal does not re-run index functions.
  #indices = new Map<string, Map<string, Set<string>>>();
  #filedUnder = new Map<string, Map<string, string[]>>();
  #handlers = new Set<EventHandler<T>>();
  #log: Logger;

  constructor(opts: StoreOptions<T> = {}) {
    this.name = opts.name ?? "store";
    this.#log = opts.log ?? defaultLog;
    this.#indexers = new Map(Object.entries(opts.indexers ?? {}));
    for (const index of this.#indexers.keys()) this.#indices.set(index, new Map());
  }

  get size(): number {
    return this.#items.size;
  }

  /** By cache key (`namespace/name`, or `name` when cluster-scoped). Objects are shared: do not mutate them. */
  get(key: string): T | undefined {
    return this.#items.get(key);
  }

  getByName(name: string, namespace?: string): T | undefined {
    return this.#items.get(namespace ? `${namespace}/${name}` : name);
  }

  list(): T[] {
    return [...this.#items.values()];
  }

  keys(): string[] {
    return [...this.#items.keys()];
  }

  /** Objects filed under `value` in the named index. */
  byIndex(index: string, value: string): T[] {
    const keys = this.#index(index).get(value);
    if (!keys) return [];
    const out: T[] = [];
    for (const k of keys) out.push(this.#items.get(k)!);
    return out;
  }

  /** The values an index currently holds (e.g. every node name that has pods). */
  indexValues(index: string): string[] {
    return [...this.#index(index).keys()];
  }

  /**
   * Registers handlers. With `replay` (default), the objects already cached are delivered as adds first,
   * so a late subscriber sees the same world as an early one. Returns an unsubscribe function.
   */
  addHandler(handler: EventHandler<T>, opts: { replay?: boolean } = {}): () => void {
    if (opts.replay ?? true) { for (const obj of this.#items.values()) this.#call(handler, "onAdd", [obj]); }
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  /** Applies an ADDED or MODIFIED watch event. */
  upsert(obj: T): Change {
    const key = objectKey(obj);
    const old = this.#items.get(key);
    if (!old) {
      this.#put(key, obj);
      this.#emit("onAdd", [obj]);
      return "added";
    }
    if (uid(old) !== uid(obj)) {
      // Same name, new object: the old one is gone even if we never saw its DELETED event.
      this.#remove(key);
      this.#emit("onDelete", [old, { finalStateUnknown: true }]);
      this.#put(key, obj);
      this.#emit("onAdd", [obj]);
      return "added";
    }
    if (rv(old) === rv(obj)) return "none";
    this.#put(key, obj);
    this.#emit("onUpdate", [old, obj]);
    return "updated";
  }

  /** Applies a DELETED watch event; unknown objects are ignored (nothing to tell handlers). */
  delete(obj: T): Change {
    const key = objectKey(obj);
    const old = this.#items.get(key);
    if (!old) return "none";
    this.#remove(key);
    // A uid mismatch means the cached object died unseen; report what we had, flagged as such.
    const known = uid(obj) === undefined || uid(old) === uid(obj);
    this.#emit("onDelete", known ? [obj, { finalStateUnknown: false }] : [old, { finalStateUnknown: true }]);
    return "deleted";
  }

  /**
   * Makes the cache equal to a full list and emits exactly the differences: deletes for vanished objects
   * (and for a name now held by a new uid), adds for new ones, updates for changed resourceVersions.
   */
  replace(items: T[]): ReplaceResult {
    const result: ReplaceResult = { added: 0, updated: 0, deleted: 0 };
    const next = new Map<string, T>();
    for (const obj of items) next.set(objectKey(obj), obj);
    for (const [key, old] of [...this.#items]) {
      const fresh = next.get(key);
      if (!fresh || uid(fresh) !== uid(old)) {
        this.#remove(key);
        this.#emit("onDelete", [old, { finalStateUnknown: true }]);
        result.deleted++;
      }
    }
    for (const [key, obj] of next) {
      const old = this.#items.get(key);
      if (!old) {
        this.#put(key, obj);
        this.#emit("onAdd", [obj]);
        result.added++;
      } else if (rv(old) !== rv(obj)) {
        this.#put(key, obj);
        this.#emit("onUpdate", [old, obj]);
        result.updated++;
      }
    }
    return result;
  }

  #index(name: string): Map<string, Set<string>> {
    const idx = this.#indices.get(name);
    if (!idx) throw new Error(`${this.name}: no index named "${name}"`);
    return idx;
  }

  #put(key: string, obj: T): void {
    if (this.#indexers.size > 0) this.#unindex(key);
    this.#items.set(key, obj);
    if (this.#indexers.size === 0) return;
    const filed = new Map<string, string[]>();
    for (const [name, fn] of this.#indexers) {
      let values: string[];
      try {
        values = fn(obj);
      } catch (e) {
        this.#log.error(`${this.name}: index ${name} failed for ${key}`, { error: e });
        values = [];
      }
      const idx = this.#indices.get(name)!;
      for (const v of values) {
        let set = idx.get(v);
        if (!set) idx.set(v, set = new Set());
        set.add(key);
      }
      filed.set(name, values);
    }
    this.#filedUnder.set(key, filed);
  }

  #remove(key: string): void {
    this.#unindex(key);
    this.#items.delete(key);
  }

  #unindex(key: string): void {
    const filed = this.#filedUnder.get(key);
    if (!filed) return;
    for (const [name, values] of filed) {
      const idx = this.#indices.get(name)!;
      for (const v of values) {
        const set = idx.get(v);
        if (!set) continue;
        set.delete(key);
        if (set.size === 0) idx.delete(v);
      }
    }
    this.#filedUnder.delete(key);
  }

  #emit<K extends keyof EventHandler<T>>(kind: K, args: Parameters<NonNullable<EventHandler<T>[K]>>): void {
    for (const h of this.#handlers) this.#call(h, kind, args);
  }

  #call<K extends keyof EventHandler<T>>(
    h: EventHandler<T>,
    kind: K,
    args: Parameters<NonNullable<EventHandler<T>[K]>>,
  ): void {
    const fn = h[kind] as ((...a: unknown[]) => void) | undefined;
    if (!fn) return;
    try {
      fn.apply(h, args);
    } catch (e) {
      // One broken handler must not stop the cache from following the server, nor starve other handlers.
      this.#log.error(`${this.name}: ${kind} handler threw`, { error: e });
    }
  }
}
