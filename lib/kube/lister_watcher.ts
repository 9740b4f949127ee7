// The reflector's seam to the apiserver, after client-go's tools/cache ListerWatcher: LIST one page, open a
// watch, and read the server's current resourceVersion, each bound to one resource, namespace and
// selectors. The reflector decides which resourceVersions to ask for and what to do with the answers; the
// ListerWatcher only carries them, so the reflector's rules can be tested against a fake one with exact
// resourceVersion sequences, and the client below carries them to a real apiserver.

import type { BuiltinCodec } from "./builtin_proto.ts";
import { decodeProtoWatchBatches } from "./proto_watch.ts";
import type { ListOptions, WatchOptions } from "./request_options.ts";
import { collectionPath, type ResourceType } from "./resource.ts";
import { isProtobuf, type KubeClient } from "./rest.ts";
import type { KubeList, KubeObject } from "./types.ts";
import { decodeWatchBatches, type WatchEvent } from "./watch_stream.ts";

/** What one LIST page asks for; the scope (namespace, selectors) belongs to the ListerWatcher. */
export type PageRequest = Pick<
  ListOptions,
  "limit" | "continue" | "resourceVersion" | "resourceVersionMatch"
>;

/** What one watch asks for. */
export type WatchRequest = Required<Pick<WatchOptions, "allowWatchBookmarks" | "timeoutSeconds">> & {
  resourceVersion: string | undefined;
};

export interface ListerWatcher<T extends KubeObject> {
  /** One LIST page; failures are thrown as KubeApiError. */
  list(req: PageRequest, signal?: AbortSignal): Promise<KubeList<T>>;
  /**
   * Opens a watch; resolves once the server accepted it (a refusal, e.g. 410, rejects). The events come
   * in batches (what one read of the stream held) until the server ends the watch or `signal` aborts.
   */
  watch(req: WatchRequest, signal: AbortSignal): Promise<AsyncIterable<WatchEvent<T>[]>>;
  /** The server's resourceVersion now, to refuse a first LIST from a cache older than that. */
  currentResourceVersion(signal: AbortSignal): Promise<string | undefined>;
}

interface ClientListerWatcherOptions {
  client: KubeClient;
  resource: ResourceType;
  /** Only this namespace; all namespaces when absent. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Protobuf on the wire and this slim projection in the cache; JSON and whole objects without one. */
  codec?: BuiltinCodec;
}

/** The name the resourceVersion probe asks for; whether such an object exists does not matter. */
const RV_PROBE_NAME = "aad-pod-identity-resourceversion-probe";

/** A ListerWatcher over a KubeClient: what every informer of the services uses. */
export function clientListerWatcher<T extends KubeObject>(o: ClientListerWatcherOptions): ListerWatcher<T> {
  const { client, resource, namespace, labelSelector, fieldSelector, codec } = o;
  const scope = { namespace, labelSelector, fieldSelector };
  return {
    list: (req, signal) =>
      codec
        ? client.listProjected<T>(resource, codec, { ...scope, ...req }, signal)
        : client.list<T>(resource, { ...scope, ...req }, signal),
    async watch(req, signal) {
      const res = await client.watch(resource, { ...scope, ...req }, signal, codec ? "protobuf" : "json");
      if (codec && isProtobuf(res)) return decodeProtoWatchBatches<T>(res.body!, codec.decode, signal);
      if (codec) return projected(decodeWatchBatches<T>(res.body!, signal), codec);
      return decodeWatchBatches<T>(res.body!, signal);
    },
    currentResourceVersion: (signal) => probeResourceVersion(o, signal),
  };
}

/**
 * The server's current resourceVersion, from a LIST that names one object (metadata.name): both the
 * watch cache and etcd answer that with a single key lookup, whatever the selectors of the real LIST and
 * however many objects there are. A namespaced kind is probed in the informer's namespace, or in
 * "default" for an all-namespaces informer (whose RBAC covers every namespace).
 */
async function probeResourceVersion(o: ClientListerWatcherOptions, signal: AbortSignal) {
  const { client, resource, namespace, fieldSelector } = o;
  const ns = resource.namespaced ? namespace ?? "default" : undefined;
  // An informer of one object (NMI's secret watches) probes by that object's name: RBAC that grants only
  // that name (resourceNames) allows exactly that LIST and would refuse any other.
  const own = /^metadata\.name=([^,]+)$/.exec(fieldSelector ?? "")?.[1];
  const probe = await client.request<KubeList<KubeObject>>("GET", collectionPath(resource, ns), {
    signal,
    query: { fieldSelector: `metadata.name=${own ?? RV_PROBE_NAME}`, limit: 1 },
  });
  return probe.metadata?.resourceVersion || undefined;
}

/** A JSON watch of a kind with a codec (a server that refused protobuf): same projection as protobuf. */
async function* projected<T extends KubeObject>(
  batches: AsyncGenerator<WatchEvent<T>[]>,
  codec: BuiltinCodec,
): AsyncGenerator<WatchEvent<T>[]> {
  for await (const batch of batches) {
    yield batch.map((ev) =>
      ev.type === "ADDED" || ev.type === "MODIFIED" || ev.type === "DELETED"
        ? { type: ev.type, object: codec.project(ev.object) as T }
        : ev
    );
  }
}
