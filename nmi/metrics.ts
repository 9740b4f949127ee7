// NMI's Prometheus metrics, with the original's names, types, label names and label values
// (https://github.com/Azure/aad-pod-identity/blob/v1.8.17/pkg/metrics/metrics.go), so dashboards built on it
// keep working. The original's unbounded labels are kept but bounded here: `operation_type` is the route's
// path (a fixed set; any other path is "other"), `namespace` and `resource` keep their first
// NAMESPACE_LIMIT / RESOURCE_LIMIT distinct values and answer "other" after that. Never a pod or an identity.
// Called per request: label values go positionally to `labels(...)` (a lookup that allocates nothing), and
// the series of the fixed label sets (upstream kind, cache result) are bound on first use and kept; not
// before, so that /metrics shows only what happened, as the original's did.

import * as lib from "../lib/metrics.ts";
import type { RouteKind } from "./request.ts";

// The original's buckets plus finer ones below them: every `le` a dashboard of the original reads exists.
const NMI_OPERATION_BUCKETS = lib.withOriginal(lib.LATENCY_BUCKETS, [
  0.5,
  1,
  2,
  3,
  4,
  5,
  10,
  15,
  20,
  25,
  30,
  40,
  50,
  60,
  70,
  80,
  90,
  100,
]);
const IMDS_OPERATION_BUCKETS = lib.withOriginal(lib.LATENCY_BUCKETS, lib.ORIGINAL_OPERATION_BUCKETS);
const NAMESPACE_LIMIT = 500;
const RESOURCE_LIMIT = 100;
const MAX_RESOURCE_LENGTH = 256;
const OTHER = "other";

/** Paths IMDS serves, as `operation_type` values (lower case, no trailing slash). */
const KNOWN_PATHS: ReadonlySet<string> = new Set([
  "/metadata/identity/oauth2/token",
  "/host/token",
  "/metadata/identity/info",
  "/metadata/instance",
  "/metadata/instance/compute",
  "/metadata/instance/network",
  "/metadata/attested/document",
  "/metadata/scheduledevents",
  "/metadata/loadbalancer",
  "/metadata/versions",
]);

/** Keeps a label's first `limit` distinct values; later ones are "other", so the series count is bounded. */
class BoundedLabel {
  readonly #seen = new Set<string>();
  constructor(readonly limit: number) {}
  value(v: string): string {
    if (this.#seen.has(v)) return v;
    if (this.#seen.size >= this.limit) return OTHER;
    this.#seen.add(v);
    return v;
  }
}

/** The original's `operation_type` (its raw URL path), reduced to the routes NMI knows. */
function operationTypeOf(kind: RouteKind, rawPath: string): string {
  if (kind === "token") return "/metadata/identity/oauth2/token";
  if (kind === "host_token") return "/host/token";
  let p = rawPath.toLowerCase().replace(/\/{2,}/g, "/").replace(/\/+$/, "");
  try {
    p = decodeURIComponent(p);
  } catch {
    return OTHER;
  }
  return KNOWN_PATHS.has(p) ? p : OTHER;
}

/** Upstream calls as the token service reports them. */
export type UpstreamKind = "imds" | "imds_user_assigned" | "aad" | "kube";

/** The original's `imds_operations_*` values; the service-account TokenRequest of federation is new. */
const IMDS_OPERATION_TYPE: Record<UpstreamKind, string> = {
  imds: "adal_token_msi",
  imds_user_assigned: "adal_token_msi_userassignedid",
  aad: "adal_token",
  kube: "service_account_token",
};

interface RequestObservation {
  kind: RouteKind;
  rawPath: string;
  status: number;
  /** The caller pod's namespace; "" when the request never got that far (as the original). */
  namespace: string;
  /** The `resource` query parameter; "" when absent. */
  resource: string;
}

type RequestLabels = "operation_type" | "status_code" | "namespace" | "resource";
/** How the token cache served a request. */
type CacheOutcome = "cache" | "upstream" | "shared";

export class NmiMetrics {
  readonly registry: lib.Registry;
  readonly requests: lib.Histogram<RequestLabels>;
  readonly upstream: lib.Histogram<"operation_type">;
  readonly upstreamErrors: lib.Counter<"operation_type">;
  readonly kubeErrors: lib.Counter<"operation_type">;
  readonly cache: lib.Counter<"result">;
  readonly waiting: lib.Gauge;
  readonly #namespaces = new BoundedLabel(NAMESPACE_LIMIT);
  readonly #resources = new BoundedLabel(RESOURCE_LIMIT);
  readonly #upstreamOk: Partial<Record<UpstreamKind, lib.HistogramSeries>> = {};
  readonly #upstreamFailed: Partial<Record<UpstreamKind, lib.CounterSeries>> = {};
  readonly #cacheOutcomes: Partial<Record<CacheOutcome, lib.CounterSeries>> = {};

  constructor() {
    this.registry = lib.newRegistry();
    const m = lib.metricsIn(this.registry);
    this.requests = m.histogram(
      "nmi_operations_duration_seconds",
      "Duration in seconds for nmi operations",
      NMI_OPERATION_BUCKETS,
      ["operation_type", "status_code", "namespace", "resource"],
    );
    this.upstream = m.histogram(
      "imds_operations_duration_seconds",
      "Duration in seconds of imds token operations (successful calls)",
      IMDS_OPERATION_BUCKETS,
      ["operation_type"],
    );
    this.upstreamErrors = m.counter(
      "imds_operations_errors_count",
      "Total number of errors in imds token operations",
      ["operation_type"],
    );
    this.kubeErrors = m.counter(
      "kubernetes_api_operations_errors_count",
      "Total number of errors in kubernetes api operations (get_pod_list, get_secret)",
      ["operation_type"],
    );
    this.cache = m.counter(
      "nmi_token_cache_total",
      "Token requests by how they were served: cache, upstream (fetched), shared (joined a fetch)",
      ["result"],
    );
    this.waiting = m.gauge("nmi_requests_waiting", "Token requests waiting for an identity assignment");
  }

  observeRequest(o: RequestObservation, seconds: number): void {
    const resource = o.resource.length > MAX_RESOURCE_LENGTH ? OTHER : o.resource;
    this.requests.labels(
      operationTypeOf(o.kind, o.rawPath),
      o.status,
      o.namespace ? this.#namespaces.value(o.namespace) : "",
      resource ? this.#resources.value(resource) : "",
    ).observe(seconds);
  }

  /** As the original: the duration of successful calls, a count of failed ones. */
  observeUpstream(kind: UpstreamKind, ok: boolean, seconds: number): void {
    if (ok) (this.#upstreamOk[kind] ??= this.upstream.labels(IMDS_OPERATION_TYPE[kind])).observe(seconds);
    else (this.#upstreamFailed[kind] ??= this.upstreamErrors.labels(IMDS_OPERATION_TYPE[kind])).inc();
  }

  /** One token request by how the cache served it (`nmi_token_cache_total{result}`). */
  countCacheResult(from: CacheOutcome): void {
    (this.#cacheOutcomes[from] ??= this.cache.labels(from)).inc();
  }
}
