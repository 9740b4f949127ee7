// Who is calling: the source IP (IPv4 or IPv6) -> the live pod holding it on this node, from the node's pod
// watch. A miss (a new pod the watch has not delivered yet, the original's #780 "pod list is empty" 500)
// gets ONE direct API lookup before answering, shared by concurrent requests from the same IP; a pod found
// on another node, or no pod at all, is refused. Host-network pods share the node's IP and never count.

import type { Pod } from "../lib/kube/core.ts";
import { isPodLive, podIPs } from "../lib/kube/core.ts";
import { KubeApiError, type KubeClient, Resources } from "../lib/kube/rest.ts";
import { type ErrorAnswer, errorAnswer, normalizeIp } from "./request.ts";
import type { CallerPod } from "./select.ts";
import type { Store } from "../lib/kube/store.ts";

export type CallerResult = { ok: true; pod: Pod } | { ok: false; answer: ErrorAnswer };

export function callerPod(pod: Pod): CallerPod {
  const rs = pod.metadata.ownerReferences?.find((o) => o.kind === "ReplicaSet");
  return {
    name: pod.metadata.name ?? "",
    namespace: pod.metadata.namespace ?? "",
    labels: pod.metadata.labels ?? {},
    replicaSet: rs?.name,
    uid: pod.metadata.uid,
    serviceAccountName: pod.spec?.serviceAccountName,
    nodeName: pod.spec?.nodeName,
  };
}

const candidate = (pod: Pod) => isPodLive(pod) && !pod.spec?.hostNetwork;

/**
 * Pure: the one pod among `pods` that may be the caller at `ip` on `node`. Several live pods with one IP
 * (a deleted pod whose DELETE the watch has not delivered yet) prefer the one not being deleted; still
 * several is ambiguous and refused rather than guessed.
 */
export function pickCaller(pods: readonly Pod[], ip: string, node: string): CallerResult | undefined {
  const live = pods.filter((p) => candidate(p) && podIPs(p).some((x) => normalizeIp(x) === ip));
  if (live.length === 0) return undefined;
  const local = live.filter((p) => p.spec?.nodeName === node);
  if (local.length === 0) {
    const p = live[0];
    return {
      ok: false,
      answer: errorAnswer(
        403,
        "forbidden",
        `pod ${p.metadata.namespace}/${p.metadata.name} with IP ${ip} is not on node ${node}`,
      ),
    };
  }
  const current = local.length > 1 ? local.filter((p) => !p.metadata.deletionTimestamp) : local;
  if (current.length === 1) return { ok: true, pod: current[0] };
  return {
    ok: false,
    answer: errorAnswer(
      403,
      "forbidden",
      `IP ${ip} is held by ${current.length || local.length} pods on node ${node}; refusing to guess`,
    ),
  };
}

export class CallerResolver {
  #pods: Store<Pod>;
  #client: KubeClient;
  #node: string;
  #lookups = new Map<string, Promise<CallerResult>>();
  #onKubeError: (op: "get_pod_list") => void;
  stats = { cacheHits: 0, directLookups: 0 };

  constructor(
    opts: {
      pods: Store<Pod>;
      client: KubeClient;
      node: string;
      /** A failed pod lookup, for the original's kubernetes_api_operations_errors_count{get_pod_list}. */
      onKubeError?: (op: "get_pod_list") => void;
    },
  ) {
    this.#pods = opts.pods;
    this.#client = opts.client;
    this.#node = opts.node;
    this.#onKubeError = opts.onKubeError ?? (() => {});
  }

  async byIp(rawIp: string): Promise<CallerResult> {
    const ip = normalizeIp(rawIp);
    if (!ip) {
      return { ok: false, answer: errorAnswer(400, "invalid_request", "request source address is empty") };
    }
    const cached = pickCaller(this.#pods.byIndex("byIP", ip), ip, this.#node);
    if (cached?.ok) {
      this.stats.cacheHits++;
      return cached;
    }
    let pending = this.#lookups.get(ip);
    if (!pending) {
      pending = this.#lookup(ip).finally(() => this.#lookups.delete(ip));
      this.#lookups.set(ip, pending);
    }
    return await pending;
  }

  async #lookup(ip: string): Promise<CallerResult> {
    this.stats.directLookups++;
    let pods: Pod[];
    try {
      pods = (await this.#client.list<Pod>(Resources.pods, { fieldSelector: `status.podIP=${ip}` })).items;
    } catch (e) {
      this.#onKubeError("get_pod_list");
      const why = e instanceof KubeApiError ? e.message : String(e);
      return {
        ok: false,
        answer: errorAnswer(503, "service_unavailable", `cannot look up the pod with IP ${ip}: ${why}`, {
          "retry-after": "1",
        }),
      };
    }
    return pickCaller(pods, ip, this.#node) ?? {
      ok: false,
      answer: errorAnswer(404, "not_found", `no live pod with IP ${ip} on node ${this.#node}`),
    };
  }

  /** /host/token names the pod; it must be a live pod on this node (cache, else one direct GET). */
  async byName(namespace: string, name: string): Promise<CallerResult> {
    let pod = this.#pods.getByName(name, namespace);
    if (!pod) {
      try {
        pod = await this.#client.get<Pod>(Resources.pods, name, namespace);
      } catch (e) {
        if (e instanceof KubeApiError && e.status === 404) pod = undefined;
        else {
          this.#onKubeError("get_pod_list");
          return {
            ok: false,
            answer: errorAnswer(503, "service_unavailable", `cannot look up pod ${namespace}/${name}`, {
              "retry-after": "1",
            }),
          };
        }
      }
    }
    if (!pod || !isPodLive(pod)) {
      return { ok: false, answer: errorAnswer(404, "not_found", `no live pod ${namespace}/${name}`) };
    }
    if (pod.spec?.nodeName !== this.#node) {
      return {
        ok: false,
        answer: errorAnswer(403, "forbidden", `pod ${namespace}/${name} is not on node ${this.#node}`),
      };
    }
    return { ok: true, pod };
  }
}
