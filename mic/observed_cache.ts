// ObservedCache: MIC's watch caches and the one immutable observed state the planner reads. Pods are watched with the
// `aadpodidbinding` label selector and cached slim (name, label, node, phase), nodes only with their
// providerID, so memory follows bound pods, not the cluster (the original cached every pod: #180, #1278).
// A change wakes the controller only when a field the planner reads changed. Our own writes are
// "expected": the next cycle waits until the cache has seen them, so it never plans from a stale view.

import { InvalidObjectError, normalize } from "../lib/api/normalize.ts";
import type {
  AadPodIdentityObject,
  AzureAssignedIdentity,
  AzureIdentity,
  AzureIdentityBinding,
} from "../lib/api/types.ts";
import { BINDING_LABEL } from "../lib/api/types.ts";
import { type ComputeTarget, parseProviderId } from "../lib/azure/provider_id.ts";
import type { Node, Pod } from "../lib/kube/core.ts";
import { Informer } from "../lib/kube/informer.ts";
import { type KubeClient, Resources } from "../lib/kube/rest.ts";
import { type KubeObject, objectKey } from "../lib/kube/types.ts";
import type { Logger } from "../lib/log.ts";
import type { BoundPod, ObservedState, Problem } from "./plan_types.ts";

/** How many deleted nodes' machines are remembered for cleaning up their identities. */
const GONE_NODES_KEPT = 10_000;

interface Observed {
  state: ObservedState;
  /** Objects that could not be read (malformed, unknown type); they are left out of `state`. */
  problems: Problem[];
}

interface ObservedCacheOptions {
  client: KubeClient;
  log: Logger;
  /** Server-side watch timeout (default: client-go's random 5-10 minutes). */
  watchTimeoutSeconds?: number;
}

function slimPod(p: Pod): Pod {
  const m = p.metadata;
  const label = m.labels?.[BINDING_LABEL];
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      labels: label === undefined ? {} : { [BINDING_LABEL]: label },
      ...(m.deletionTimestamp ? { deletionTimestamp: m.deletionTimestamp } : {}),
    },
    spec: p.spec?.nodeName ? { nodeName: p.spec.nodeName } : {},
    status: p.status?.phase ? { phase: p.status.phase } : {},
  };
}

function slimNode(n: Node): Node {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: n.metadata.name, uid: n.metadata.uid, resourceVersion: n.metadata.resourceVersion },
    spec: n.spec?.providerID ? { providerID: n.spec.providerID } : {},
  };
}

function podFingerprint(p: Pod): string {
  return JSON.stringify([p.metadata.labels?.[BINDING_LABEL], p.spec?.nodeName, p.status?.phase]);
}

type Raw = KubeObject & Record<string, unknown>;

/** Embedded identity/binding copies are the same for every object made from one version: keep one. */
const INTERN_MAX = 20_000;

export class ObservedCache {
  readonly pods: Informer<Pod>;
  readonly nodes: Informer<Node>;
  readonly identities: Informer<Raw>;
  readonly bindings: Informer<Raw>;
  readonly assigned: Informer<Raw>;
  /** Cached objects that failed to normalise (kept raw in the cache, reported each cycle). */
  #invalid = new WeakMap<object, InvalidObjectError>();
  #interned = new Map<string, AzureIdentity | AzureIdentityBinding>();
  #goneNodes = new Map<string, ComputeTarget>();
  #expected = new Map<string, string | null>();
  #expectationWaiters = new Set<() => void>();
  #listeners = new Set<() => void>();

  constructor(opts: ObservedCacheOptions) {
    const { client, log } = opts;
    const onChange = () => {
      for (const listener of this.#listeners) listener();
    };
    const watchTimeoutSeconds = opts.watchTimeoutSeconds;
    const common = { client, log, ...(watchTimeoutSeconds ? { watchTimeoutSeconds } : {}) };
    this.pods = new Informer<Pod>({
      ...common,
      resource: Resources.pods,
      labelSelector: BINDING_LABEL,
      transform: slimPod,
    });
    this.nodes = new Informer<Node>({ ...common, resource: Resources.nodes, transform: slimNode });
    // CRD objects are cached already normalised (one copy, not raw JSON plus a normalised one).
    const crd = (resource: typeof Resources.azureIdentities) =>
      new Informer<Raw>({ ...common, resource, transform: (raw) => this.normalizeForCache(raw) });
    this.identities = crd(Resources.azureIdentities);
    this.bindings = crd(Resources.azureIdentityBindings);
    this.assigned = crd(Resources.azureAssignedIdentities);

    this.pods.addHandler({
      onAdd: onChange,
      onUpdate: (a, b) => podFingerprint(a) !== podFingerprint(b) && onChange(),
      onDelete: onChange,
    });
    this.nodes.addHandler({
      onAdd: (n) => {
        this.#goneNodes.delete(n.metadata.name!);
        onChange();
      },
      onUpdate: (a, b) => a.spec?.providerID !== b.spec?.providerID && onChange(),
      onDelete: (n) => {
        const t = parseProviderId(n.spec?.providerID);
        if (t) {
          this.#goneNodes.set(n.metadata.name!, t);
          if (this.#goneNodes.size > GONE_NODES_KEPT) {
            this.#goneNodes.delete(this.#goneNodes.keys().next().value!);
          }
        }
        onChange();
      },
    });
    for (const inf of [this.identities, this.bindings]) {
      inf.addHandler({ onAdd: onChange, onUpdate: onChange, onDelete: onChange });
    }
    // Changes to AzureAssignedIdentities wake the controller too: one deleted or edited by hand is put back.
    this.assigned.addHandler({
      onAdd: (o) => (this.#seen(o, false), onChange()),
      onUpdate: (_, o) => (this.#seen(o, false), onChange()),
      onDelete: (o) => (this.#seen(o, true), onChange()),
    });
  }

  /**
   * `listener` is called whenever something the planner reads changed (as client-go's AddEventHandler:
   * the cache knows nothing of who listens). Returns the unsubscribe function.
   */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get informers(): Informer<KubeObject>[] {
    return [this.pods, this.nodes, this.identities, this.bindings, this.assigned] as Informer<KubeObject>[];
  }

  start(signal: AbortSignal): void {
    for (const inf of this.informers) inf.start(signal);
  }

  async waitForSync(signal: AbortSignal): Promise<boolean> {
    const done = await Promise.all(this.informers.map((i) => i.waitForSync(signal)));
    return done.every(Boolean);
  }

  /** Our own write: the cache must show `resourceVersion` (or, with null, the deletion) before we plan again. */
  expect(key: string, resourceVersion: string | null): void {
    const current = this.assigned.store.get(key);
    if (resourceVersion === null ? !current : current?.metadata.resourceVersion === resourceVersion) return;
    this.#expected.set(key, resourceVersion);
  }

  /** Resolves when every expected write is in the cache, or after `timeoutMs` (then they are forgotten). */
  async expectationsMet(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.#expected.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#expectationWaiters.add(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const met = this.#expected.size === 0;
    this.#expected.clear();
    return met;
  }

  #seen(o: KubeObject, deleted: boolean): void {
    const key = objectKey(o);
    if (this.#expected.has(key)) {
      const want = this.#expected.get(key);
      if (want === null ? deleted : !deleted && o.metadata.resourceVersion === want) {
        this.#expected.delete(key);
      }
    }
    const waiters = [...this.#expectationWaiters];
    this.#expectationWaiters.clear();
    for (const w of waiters) w();
  }

  /**
   * The CRD informers' transform: the normalised object, or (malformed) the raw one, remembered as invalid
   * so every cycle reports it instead of planning with it.
   */
  normalizeForCache(raw: Raw): Raw {
    let n: AadPodIdentityObject;
    try {
      n = normalize(raw);
    } catch (e) {
      if (!(e instanceof InvalidObjectError)) throw e;
      const { managedFields: _drop, ...metadata } = raw.metadata as Raw["metadata"] & {
        managedFields?: unknown;
      };
      const kept = { ...raw, metadata };
      this.#invalid.set(kept, e);
      return kept;
    }
    if (n.kind === "AzureAssignedIdentity") {
      n.spec.azureIdentityRef = this.#intern(n.spec.azureIdentityRef);
      n.spec.azureBindingRef = this.#intern(n.spec.azureBindingRef);
    }
    return n as unknown as Raw;
  }

  #intern<T extends AzureIdentity | AzureIdentityBinding>(o: T): T {
    const key = JSON.stringify(o);
    const found = this.#interned.get(key);
    if (found) return found as T;
    if (this.#interned.size >= INTERN_MAX) this.#interned.clear();
    this.#interned.set(key, o);
    return o;
  }

  /** The normalised object, or the error that kept it from being read. */
  #read<T extends AadPodIdentityObject>(cached: Raw): T | InvalidObjectError {
    return this.#invalid.get(cached) ?? (cached as unknown as T);
  }

  #readAll<T extends AadPodIdentityObject>(kind: T["kind"], inf: Informer<Raw>, problems: Problem[]): T[] {
    const out: T[] = [];
    for (const raw of inf.store.list()) {
      const n = this.#read<T>(raw);
      if (n instanceof InvalidObjectError) {
        problems.push({
          object: {
            kind,
            namespace: raw.metadata.namespace ?? "",
            name: raw.metadata.name ?? "",
            ...(raw.metadata.uid ? { uid: raw.metadata.uid } : {}),
            ...(raw.metadata.resourceVersion ? { resourceVersion: raw.metadata.resourceVersion } : {}),
          },
          reason: "InvalidObject",
          message: `${n.message}; ignored until fixed`,
        });
      } else {
        out.push(n);
      }
    }
    return out;
  }

  /**
   * The VM / scale set an Assigned AzureAssignedIdentity (`ns/name`) is on, from the caches; undefined
   * when it is unknown, not Assigned, or its node is not an Azure machine.
   */
  targetOfAssigned(key: string): ComputeTarget | undefined {
    const raw = this.assigned.store.get(key);
    const a = raw && this.#read<AzureAssignedIdentity>(raw);
    if (!a || a instanceof InvalidObjectError) return undefined;
    if (a.status.status !== "Assigned" && a.status.status !== "") return undefined;
    return parseProviderId(this.nodes.store.get(a.spec.nodeName)?.spec?.providerID);
  }

  /** One consistent view of everything the planner reads. */
  observe(): Observed {
    const problems: Problem[] = [];
    const pods: BoundPod[] = [];
    for (const p of this.pods.store.list()) {
      const nodeName = p.spec?.nodeName;
      const phase = p.status?.phase;
      // Finished pods no longer run anything that could ask for a token.
      if (!nodeName || phase === "Succeeded" || phase === "Failed") continue;
      pods.push({
        name: p.metadata.name!,
        namespace: p.metadata.namespace!,
        nodeName,
        labels: p.metadata.labels ?? {},
      });
    }
    const nodes = new Map<string, ComputeTarget | undefined>();
    for (const n of this.nodes.store.list()) nodes.set(n.metadata.name!, parseProviderId(n.spec?.providerID));
    const state: ObservedState = {
      pods,
      nodes,
      goneNodes: new Map(this.#goneNodes),
      identities: this.#readAll<AzureIdentity>("AzureIdentity", this.identities, problems),
      bindings: this.#readAll<AzureIdentityBinding>("AzureIdentityBinding", this.bindings, problems),
      assigned: this.#readAll<AzureAssignedIdentity>("AzureAssignedIdentity", this.assigned, problems),
    };
    return { state, problems };
  }
}
