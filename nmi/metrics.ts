// NMI's Prometheus metrics. Labels are bounded: the route (a fixed set, never the raw path as the original's
// `operation_type` was), the status code, and the upstream kind; never a pod, namespace or identity.

import {
  Counter,
  Gauge,
  Histogram,
  LATENCY_BUCKETS,
  METRIC_PREFIX,
  newRegistry,
  type Registry,
} from "../lib/metrics.ts";

export class NmiMetrics {
  readonly registry: Registry;
  readonly requests: Histogram<"operation" | "status_code">;
  readonly upstream: Histogram<"operation_type">;
  readonly upstreamErrors: Counter<"operation_type">;
  readonly cache: Counter<"result">;
  readonly waiting: Gauge;

  constructor() {
    this.registry = newRegistry();
    const registers = [this.registry];
    this.requests = new Histogram({
      name: `${METRIC_PREFIX}nmi_operations_duration_seconds`,
      help: "NMI requests by route and status code",
      labelNames: ["operation", "status_code"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.upstream = new Histogram({
      name: `${METRIC_PREFIX}imds_operations_duration_seconds`,
      help: "Token calls to the node's IMDS (imds) and Azure AD (aad)",
      labelNames: ["operation_type"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.upstreamErrors = new Counter({
      name: `${METRIC_PREFIX}imds_operations_errors_count`,
      help: "Failed token calls to IMDS (imds) and Azure AD (aad)",
      labelNames: ["operation_type"],
      registers,
    });
    this.cache = new Counter({
      name: `${METRIC_PREFIX}nmi_token_cache_total`,
      help: "Token requests by how they were served: cache, upstream (fetched), shared (joined a fetch)",
      labelNames: ["result"],
      registers,
    });
    this.waiting = new Gauge({
      name: `${METRIC_PREFIX}nmi_requests_waiting`,
      help: "Token requests waiting for an identity assignment",
      registers,
    });
  }
}
