// The watch caches NMI decides from, all fed by lib/kube informers (no polling, no periodic resync):
// - pods on this node (field selector spec.nodeName), indexed by IP (IPv4 and IPv6, podIPs);
// - standard mode: AzureAssignedIdentities labelled nodename=<node>, indexed by pod;
// - AzureIdentities, AzureIdentityBindings (by selector) and AzurePodIdentityExceptions, all namespaces:
//   every request is authorised against the live bindings, so a deleted binding stops tokens at once;
// - the Secrets that service-principal identities name, each through its own single-object watch, started
//   when first needed (secrets are never fetched per request, and NMI never lists every secret).
// Every event wakes waiters through the ChangeFeed. CRD objects are normalised once per object version.

import { type IdentityCatalog } from "../lib/api/matching.ts";
import {
  InvalidObjectError,
  normalizeAzureAssignedIdentity,
  normalizeAzureIdentity,
  normalizeAzureIdentityBinding,
  normalizeAzurePodIdentityException,
} from "../lib/api/normalize.ts";
import type {
  AzureAssignedIdentity,
  AzureIdentity,
  AzureIdentityBinding,
  AzurePodIdentityException,
  SecretReference,
} from "../lib/api/types.ts";
import { NODE_NAME_LABEL } from "../lib/api/types.ts";
import type { Logger } from "../lib/log.ts";
import type { Pod } from "../lib/kube/core.ts";
import { Informer, podIndexers } from "../lib/kube/informer.ts";
import { type KubeClient, Resources } from "../lib/kube/rest.ts";
import type { KubeObject } from "../lib/kube/types.ts";
import { ChangeFeed } from "./change_feed.ts";

export interface Secret extends KubeObject {
  data?: Record<string, string>;
}

interface CachesOptions {
  client: KubeClient;
  node: string;
  mode: "standard" | "managed";
  log: Logger;
}

/** Normalises a raw CRD object once per object (the store replaces objects on change, so identity works). */
class Normalised<T> {
  #memo = new WeakMap<object, T | null>();
  #warned = new WeakSet<object>();
  constructor(readonly kind: string, readonly fn: (raw: unknown) => T, readonly log: Logger) {}

  get(raw: object): T | undefined {
    const hit = this.#memo.get(raw);
    if (hit !== undefined) return hit ?? undefined;
    try {
      const v = this.fn(raw);
      this.#memo.set(raw, v);
      return v;
    } catch (e) {
      this.#memo.set(raw, null);
      if (!this.#warned.has(raw)) {
        this.#warned.add(raw);
        this.log.warn(`ignoring invalid ${this.kind}`, {
          error: e instanceof InvalidObjectError ? e.message : String(e),
        });
      }
      return undefined;
    }
  }

  all(items: object[]): T[] {
    const out: T[] = [];
    for (const raw of items) {
      const v = this.get(raw);
      if (v) out.push(v);
    }
    return out;
  }
}

const rawSpec = (o: KubeObject) => ((o as unknown as { spec?: Record<string, unknown> }).spec ?? {});
const str = (v: unknown) => (typeof v === "string" ? v : "");

export class NmiCaches {
  readonly changes = new ChangeFeed();
  readonly pods: Informer<Pod>;
  readonly assigned?: Informer<KubeObject>;
  readonly identities: Informer<KubeObject>;
  readonly bindings: Informer<KubeObject>;
  readonly exceptions: Informer<KubeObject>;
  #opts: CachesOptions;
  #secrets = new Map<string, Informer<Secret>>();
  #signal?: AbortSignal;
  #synced = false;
  #nId: Normalised<AzureIdentity>;
  #nBinding: Normalised<AzureIdentityBinding>;
  #nAssigned: Normalised<AzureAssignedIdentity>;
  #nException: Normalised<AzurePodIdentityException>;

  constructor(opts: CachesOptions) {
    this.#opts = opts;
    const { client, node, log } = opts;
    this.#nId = new Normalised("AzureIdentity", normalizeAzureIdentity, log);
    this.#nBinding = new Normalised("AzureIdentityBinding", normalizeAzureIdentityBinding, log);
    this.#nAssigned = new Normalised("AzureAssignedIdentity", normalizeAzureAssignedIdentity, log);
    this.#nException = new Normalised("AzurePodIdentityException", normalizeAzurePodIdentityException, log);
    this.pods = new Informer<Pod>({
      client,
      resource: Resources.pods,
      fieldSelector: `spec.nodeName=${node}`,
      indexers: { byIP: podIndexers.byIP },
      log,
    });
    if (opts.mode === "standard") {
      this.assigned = new Informer<KubeObject>({
        client,
        resource: Resources.azureAssignedIdentities,
        labelSelector: `${NODE_NAME_LABEL}=${node}`,
        indexers: {
          // The pod an assignment is for, read in either field casing (Pod/PodNamespace before v1.6).
          byPod: (o) => {
            const s = rawSpec(o);
            return [`${str(s.podNamespace) || str(s.PodNamespace)}/${str(s.pod) || str(s.Pod)}`];
          },
        },
        log,
      });
    }
    this.identities = new Informer<KubeObject>({ client, resource: Resources.azureIdentities, log });
    this.bindings = new Informer<KubeObject>({
      client,
      resource: Resources.azureIdentityBindings,
      indexers: { bySelector: (o) => [str(rawSpec(o).selector) || str(rawSpec(o).Selector)] },
      log,
    });
    this.exceptions = new Informer<KubeObject>({
      client,
      resource: Resources.azurePodIdentityExceptions,
      indexers: { byNamespace: (o) => [o.metadata.namespace ?? ""] },
      log,
    });
    const wake = {
      onAdd: () => this.changes.notify(),
      onUpdate: () => this.changes.notify(),
      onDelete: () => this.changes.notify(),
    };
    for (const inf of this.#all()) inf.addHandler(wake, { replay: false });
  }

  #all(): Informer<KubeObject>[] {
    const list: Informer<KubeObject>[] = [this.pods, this.identities, this.bindings, this.exceptions];
    if (this.assigned) list.push(this.assigned);
    return list;
  }

  start(signal: AbortSignal): Promise<void> {
    this.#signal = signal;
    const runs = this.#all().map((i) => i.start(signal));
    this.synced.then(() => {
      this.#synced = true;
      this.changes.notify();
    }, () => {});
    return Promise.all(runs).then(() => {});
  }

  /** Resolves when every cache holds its first full LIST. */
  get synced(): Promise<void> {
    return Promise.all(this.#all().map((i) => i.synced)).then(() => {});
  }

  isSynced(): boolean {
    return this.#synced;
  }

  /** Which caches are not synced yet (for /readyz). */
  pending(): string[] {
    return this.#all().filter((i) => i.stats.lists === 0).map((i) => i.reflector.description);
  }

  catalog(): IdentityCatalog {
    return {
      bindingsForSelector: (selector) =>
        this.#nBinding.all(this.bindings.store.byIndex("bySelector", selector)),
      identity: (namespace, name) => {
        const raw = this.identities.store.getByName(name, namespace);
        return raw ? this.#nId.get(raw) : undefined;
      },
    };
  }

  assignedFor(namespace: string, name: string): AzureAssignedIdentity[] {
    if (!this.assigned) return [];
    return this.#nAssigned.all(this.assigned.store.byIndex("byPod", `${namespace}/${name}`));
  }

  exceptionsIn(namespace: string): AzurePodIdentityException[] {
    return this.#nException.all(this.exceptions.store.byIndex("byNamespace", namespace));
  }

  /**
   * A secret's data (base64-decoded), from its own watch; the watch starts on first use and this waits for
   * its first LIST (bounded by `signal`). Undefined when the secret does not exist.
   */
  async secret(ref: SecretReference, signal: AbortSignal): Promise<Secret | undefined> {
    const key = `${ref.namespace}/${ref.name}`;
    let inf = this.#secrets.get(key);
    if (!inf) {
      inf = new Informer<Secret>({
        client: this.#opts.client,
        resource: Resources.secrets,
        namespace: ref.namespace,
        fieldSelector: `metadata.name=${ref.name}`,
        log: this.#opts.log,
      });
      this.#secrets.set(key, inf);
      inf.start(this.#signal ?? signal);
    }
    if (!(await inf.waitForSync(signal))) return undefined;
    return inf.store.getByName(ref.name, ref.namespace);
  }
}
