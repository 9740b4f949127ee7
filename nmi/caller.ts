// Who is calling: the source IP (IPv4 or IPv6) -> the live pod holding it on this node, from the node's pod
// watch. A miss (a new pod the watch has not delivered yet, the original's #780 "pod list is empty" 500)
// gets ONE direct API lookup before answering, shared by concurrent requests from the same IP; a pod found
// on another node, or no pod at all, is refused. Host-network pods share the node's IP and never count.
// An address no pod holds is remembered for a few seconds (until a pod watch event names it), so a stream of
// requests from unknown addresses costs one cluster-wide lookup, not one each. While the pod watch is not
// known fresh (nmi/watch_freshness.ts), a pod found in the cache is confirmed with a direct GET (same uid,
// still holding the IP, on this node) before it is served: a reused IP never gets a deleted pod's identity
// from a stale cache; when the GET fails the request is refused (503, retryable).

import type { Pod } from "../lib/kube/core.ts";
import { isPodLive, podIPs } from "../lib/kube/core.ts";
import { KubeApiError, type KubeClient, Resources } from "../lib/kube/rest.ts";
import { normalizeIp } from "./request.ts";
import { type Refusal, refusal } from "./refusal.ts";
import type { CallerPod } from "./select.ts";
import type { Store } from "../lib/kube/store.ts";
import type { WatchFreshness } from "./watch_freshness.ts";

/** How long "no pod holds this IP" is remembered (dropped earlier by a watch event for the IP). */
const UNKNOWN_IP_TTL_MS = 5000;
/** How long a direct confirmation of a cached caller is reused while the watch is stale. */
const CONFIRMED_TTL_MS = 1000;
const CONFIRM_TIMEOUT_MS = 2000;

export type CallerResult = { ok: true; pod: Pod } | { ok: false; refusal: Refusal };

export function callerPod(pod: Pod): CallerPod {
  let c = callers.get(pod);
  if (!c) {
    c = Object.freeze({
      name: pod.metadata.name ?? "",
      namespace: pod.metadata.namespace ?? "",
      labels: pod.metadata.labels ?? {},
      uid: pod.metadata.uid,
      serviceAccountName: pod.spec?.serviceAccountName,
      nodeName: pod.spec?.nodeName,
    });
    callers.set(pod, c);
  }
  return c;
}
// One CallerPod per pod object (the pod cache replaces an object when it changes), so what is derived from
// the caller can be reused per request (nmi/token_flow.ts).
const callers = new WeakMap<Pod, CallerPod>();

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
      refusal: refusal(
        "forbidden",
        `pod ${p.metadata.namespace}/${p.metadata.name} with IP ${ip} is not on node ${node}`,
      ),
    };
  }
  const current = local.length > 1 ? local.filter((p) => !p.metadata.deletionTimestamp) : local;
  if (current.length === 1) return { ok: true, pod: current[0] };
  return {
    ok: false,
    refusal: refusal(
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
  #freshness?: WatchFreshness;
  #onKubeError: (op: "get_pod_list") => void;
  /** IP -> until when no pod is known to hold it. */
  #unknown = new Map<string, number>();
  /** pod uid -> confirmation (pending or done, with when it was made). */
  #confirmed = new Map<string, { at: number; result: Promise<CallerResult> }>();
  /**
   * IP -> what the pod cache says of it (pickCaller is pure on the cached pods), until the next pod event:
   * no filtering and IP normalising per request.
   */
  #picked = new Map<string, CallerResult | undefined>();
  stats = { cacheHits: 0, directLookups: 0, unknownHits: 0, confirmations: 0 };

  constructor(
    opts: {
      pods: Store<Pod>;
      client: KubeClient;
      node: string;
      freshness?: WatchFreshness;
      /** A failed pod lookup, for the original's kubernetes_api_operations_errors_count{get_pod_list}. */
      onKubeError?: (op: "get_pod_list") => void;
    },
  ) {
    this.#pods = opts.pods;
    this.#client = opts.client;
    this.#node = opts.node;
    this.#freshness = opts.freshness;
    this.#onKubeError = opts.onKubeError ?? (() => {});
    const forget = (pod: Pod) => {
      this.#picked.clear();
      for (const ip of podIPs(pod)) this.#unknown.delete(normalizeIp(ip));
    };
    opts.pods.addHandler({
      onAdd: forget,
      onUpdate: (_old, pod) => forget(pod),
      onDelete: () => this.#picked.clear(),
    }, { replay: false });
  }

  async byIp(rawIp: string): Promise<CallerResult> {
    const ip = normalizeIp(rawIp);
    if (!ip) {
      return { ok: false, refusal: refusal("invalid", "request source address is empty") };
    }
    const cached = this.#pick(ip);
    if (cached?.ok) {
      this.stats.cacheHits++;
      return this.#freshness && !this.#freshness.isFresh() ? await this.#confirm(cached.pod, ip) : cached;
    }
    const until = this.#unknown.get(ip);
    if (until !== undefined && until > performance.now()) {
      this.stats.unknownHits++;
      return { ok: false, refusal: refusal("not_found", `no live pod with IP ${ip} on node ${this.#node}`) };
    }
    let pending = this.#lookups.get(ip);
    if (!pending) {
      pending = this.#lookup(ip).finally(() => this.#lookups.delete(ip));
      this.#lookups.set(ip, pending);
    }
    return await pending;
  }

  #pick(ip: string): CallerResult | undefined {
    if (this.#picked.has(ip)) return this.#picked.get(ip);
    const result = pickCaller(this.#pods.byIndex("byIP", ip), ip, this.#node);
    if (this.#picked.size >= 10_000) this.#picked.clear(); // bounded under a flood of addresses
    this.#picked.set(ip, result);
    return result;
  }

  /** The cached caller confirmed by a direct GET: same uid, still live on this node and holding `ip`. */
  #confirm(pod: Pod, ip: string): Promise<CallerResult> {
    const uid = pod.metadata.uid ?? "";
    const now = performance.now();
    const hit = this.#confirmed.get(uid);
    if (hit && now - hit.at <= CONFIRMED_TTL_MS) return hit.result;
    if (this.#confirmed.size > 10_000) this.#confirmed.clear();
    const result = this.#fetchPod(pod).then((live): CallerResult => {
      const held = live && live.metadata.uid === uid && isPodLive(live) &&
        podIPs(live).some((x) => normalizeIp(x) === ip) && live.spec?.nodeName === this.#node;
      if (held) return { ok: true, pod: live };
      this.#confirmed.delete(uid);
      return {
        ok: false,
        refusal: refusal(
          "unavailable",
          `the pod watch is stale and pod ${pod.metadata.namespace}/${pod.metadata.name} no longer holds IP ${ip}`,
        ),
      };
    }, (e): CallerResult => {
      this.#confirmed.delete(uid);
      const why = e instanceof Error ? e.message : String(e);
      return {
        ok: false,
        refusal: refusal(
          "unavailable",
          `the pod watch is stale and the caller at ${ip} cannot be confirmed: ${why}`,
        ),
      };
    });
    this.#confirmed.set(uid, { at: now, result });
    return result;
  }

  async #fetchPod(pod: Pod): Promise<Pod | undefined> {
    this.stats.confirmations++;
    const list = await this.#client.list<Pod>(Resources.pods, {
      namespace: pod.metadata.namespace,
      fieldSelector: `metadata.name=${pod.metadata.name}`,
    }, AbortSignal.timeout(CONFIRM_TIMEOUT_MS));
    return list.items[0];
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
        refusal: refusal("unavailable", `cannot look up the pod with IP ${ip}: ${why}`),
      };
    }
    const found = pickCaller(pods, ip, this.#node);
    if (found) return found;
    if (this.#unknown.size >= 10_000) this.#unknown.clear(); // bounded under a flood of addresses
    this.#unknown.set(ip, performance.now() + UNKNOWN_IP_TTL_MS);
    return { ok: false, refusal: refusal("not_found", `no live pod with IP ${ip} on node ${this.#node}`) };
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
            refusal: refusal("unavailable", `cannot look up pod ${namespace}/${name}`),
          };
        }
      }
    }
    if (!pod || !isPodLive(pod)) {
      return { ok: false, refusal: refusal("not_found", `no live pod ${namespace}/${name}`) };
    }
    if (pod.spec?.nodeName !== this.#node) {
      return {
        ok: false,
        refusal: refusal("forbidden", `pod ${namespace}/${name} is not on node ${this.#node}`),
      };
    }
    return { ok: true, pod };
  }
}
