// MIC's Prometheus metrics: the original's names where they still mean the same thing (upstream 7), with
// bounded labels only (an operation name, an ARM error code, a status; never an id or a pod).

import {
  CLOUD_BUCKETS,
  Counter,
  Gauge,
  Histogram,
  LATENCY_BUCKETS,
  METRIC_PREFIX,
  newRegistry,
  type Registry,
} from "../lib/metrics.ts";

export interface MicMetrics {
  registry: Registry;
  cycleDuration: Histogram;
  cycles: Counter;
  armDuration: Histogram<"operation_type">;
  armErrors: Counter<"operation_type" | "code">;
  kubeErrors: Counter<"operation_type">;
  assigned: Gauge<"status">;
  queueDepth: Gauge;
  leaderElections: Counter;
  memory: Gauge<"kind">;
}

export function micMetrics(): MicMetrics {
  const registry = newRegistry();
  const p = METRIC_PREFIX;
  return {
    registry,
    cycleDuration: new Histogram({
      name: `${p}mic_cycle_duration_seconds`,
      help: "Duration of MIC cycles that had work (planning and Kubernetes writes; ARM runs beside them)",
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    cycles: new Counter({ name: `${p}mic_cycle_count`, help: "MIC cycles with work", registers: [registry] }),
    armDuration: new Histogram({
      name: `${p}cloud_provider_operations_duration_seconds`,
      help:
        "ARM calls (vm_get, vm_update, vmss_get, vmss_update; updates include the long-running operation)",
      labelNames: ["operation_type"],
      buckets: CLOUD_BUCKETS,
      registers: [registry],
    }),
    armErrors: new Counter({
      name: `${p}cloud_provider_operations_errors_count`,
      help: "Failed ARM calls by operation and ARM error code",
      labelNames: ["operation_type", "code"],
      registers: [registry],
    }),
    kubeErrors: new Counter({
      name: `${p}kubernetes_api_operations_errors_count`,
      help: "Failed Kubernetes writes by operation",
      labelNames: ["operation_type"],
      registers: [registry],
    }),
    assigned: new Gauge({
      name: `${p}assigned_identities`,
      help: "AzureAssignedIdentities by status, as of the last cycle",
      labelNames: ["status"],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: `${p}mic_queue_depth`,
      help: "VMs / scale sets with ARM work running or waiting",
      registers: [registry],
    }),
    leaderElections: new Counter({
      name: `${p}mic_new_leader_election_count`,
      help: "Times this MIC became leader",
      registers: [registry],
    }),
    // prom-client's default process metrics read /proc in ways Deno does not support (RSS shows 0).
    memory: new Gauge({
      name: `${p}mic_memory_bytes`,
      help: "Memory of this MIC process: rss, heap_used, heap_total, external",
      labelNames: ["kind"],
      registers: [registry],
      collect() {
        const m = Deno.memoryUsage();
        this.set({ kind: "rss" }, m.rss);
        this.set({ kind: "heap_used" }, m.heapUsed);
        this.set({ kind: "heap_total" }, m.heapTotal);
        this.set({ kind: "external" }, m.external);
      },
    }),
  };
}
