// MIC's Prometheus metrics, with the original's names, types, label names and label values
// (https://github.com/Azure/aad-pod-identity/blob/v1.8.17/pkg/metrics/metrics.go), so dashboards and alerts
// built on it keep working; new metrics carry new names. Labels are bounded: an operation name, an ARM
// error code, a status; never an id or a pod.

import {
  CLOUD_BUCKETS,
  type Counter,
  Gauge,
  type Histogram,
  LATENCY_BUCKETS,
  METRIC_PREFIX,
  metricsIn,
  newRegistry,
  ORIGINAL_OPERATION_BUCKETS,
  type Registry,
  withOriginal,
} from "../lib/metrics.ts";

/** The original's buckets, plus ours: every `le` a dashboard of the original reads exists. */
const ASSIGNED_IDENTITY_BUCKETS = withOriginal(LATENCY_BUCKETS, ORIGINAL_OPERATION_BUCKETS);
/** The original's list for MIC cycles and for cloud-provider calls alike. */
const ORIGINAL_SLOW_BUCKETS = [0.5, 1, 5, 10, 30, 60, 120, 300, 600, 900, 1200];
const MIC_CYCLE_BUCKETS = withOriginal(LATENCY_BUCKETS, ORIGINAL_SLOW_BUCKETS);
const CLOUD_PROVIDER_BUCKETS = withOriginal(CLOUD_BUCKETS, ORIGINAL_SLOW_BUCKETS);

/** The Kubernetes writes of AzureAssignedIdentities the original timed and counted on success. */
type AssignedIdentityWrite =
  | "assigned_identity_addition"
  | "assigned_identity_deletion"
  | "assigned_identity_update";

export interface MicMetrics {
  registry: Registry;
  cycleDuration: Histogram;
  cycles: Counter;
  armDuration: Histogram<"operation_type">;
  armErrors: Counter<"operation_type">;
  armErrorsByCode: Counter<"operation_type" | "code">;
  kubeErrors: Counter<"operation_type">;
  writes: Record<AssignedIdentityWrite, { duration: Histogram; count: Counter }>;
  assigned: Gauge<"status">;
  queueDepth: Gauge;
  /** The original's meaning: incremented when a MIC process enters leader election (once per start). */
  leaderElections: Counter;
  /** Times this MIC became leader (new). */
  leaderAcquired: Counter;
  memory: Gauge<"kind">;
}

function writeMetrics(registry: Registry, op: AssignedIdentityWrite, verb: string) {
  const m = metricsIn(registry);
  return {
    duration: m.histogram(
      `${op}_duration_seconds`,
      `Duration in seconds of assigned identity ${verb} operations`,
      ASSIGNED_IDENTITY_BUCKETS,
    ),
    count: m.counter(`${op}_count`, `Total number of assigned identity ${verb} operations`),
  };
}

/** A successful AzureAssignedIdentity write (the original counted and timed only those). */
export function recordAssignedIdentityWrite(m: MicMetrics, op: string, seconds: number): void {
  const w = m.writes[op as AssignedIdentityWrite];
  if (!w) return;
  w.duration.observe(seconds);
  w.count.inc();
}

/** One ARM call: as the original, the duration of a successful one, a count of a failed one. */
export function recordArmCall(m: MicMetrics, op: string, code: string, seconds: number): void {
  if (code === "OK") {
    m.armDuration.observe({ operation_type: op }, seconds);
    return;
  }
  m.armErrors.inc({ operation_type: op });
  m.armErrorsByCode.inc({ operation_type: op, code });
}

// Read at scrape time. Deno.memoryUsage() rather than prom-client's default process metrics, which read
// /proc in ways Deno did not support (their RSS showed 0).
function memoryGauge(registry: Registry): Gauge<"kind"> {
  return new Gauge({
    name: `${METRIC_PREFIX}mic_memory_bytes`,
    help: "Memory of this MIC process: rss, heap_used, heap_total, external",
    labelNames: ["kind"],
    registers: [registry],
    collect() {
      const m = Deno.memoryUsage();
      this.labels("rss").set(m.rss);
      this.labels("heap_used").set(m.heapUsed);
      this.labels("heap_total").set(m.heapTotal);
      this.labels("external").set(m.external);
    },
  });
}

export function micMetrics(): MicMetrics {
  const registry = newRegistry();
  const m = metricsIn(registry);
  return {
    registry,
    cycleDuration: m.histogram(
      "mic_cycle_duration_seconds",
      "Duration of MIC cycles that had work (planning and Kubernetes writes; ARM runs beside them)",
      MIC_CYCLE_BUCKETS,
    ),
    cycles: m.counter("mic_cycle_count", "MIC cycles with work"),
    armDuration: m.histogram(
      "cloud_provider_operations_duration_seconds",
      "Successful ARM calls (vm_get, vm_update, vmss_get, vmss_update; updates include the " +
        "long-running operation)",
      CLOUD_PROVIDER_BUCKETS,
      ["operation_type"],
    ),
    armErrors: m.counter("cloud_provider_operations_errors_count", "Failed ARM calls by operation", [
      "operation_type",
    ]),
    armErrorsByCode: m.counter(
      "cloud_provider_operations_errors_by_code_count",
      "Failed ARM calls by operation and ARM error code",
      ["operation_type", "code"],
    ),
    kubeErrors: m.counter("kubernetes_api_operations_errors_count", "Failed Kubernetes writes by operation", [
      "operation_type",
    ]),
    writes: {
      assigned_identity_addition: writeMetrics(registry, "assigned_identity_addition", "addition"),
      assigned_identity_deletion: writeMetrics(registry, "assigned_identity_deletion", "deletion"),
      assigned_identity_update: writeMetrics(registry, "assigned_identity_update", "update"),
    },
    assigned: m.gauge("assigned_identities", "AzureAssignedIdentities by status, as of the last cycle", [
      "status",
    ]),
    queueDepth: m.gauge("mic_queue_depth", "VMs / scale sets with ARM work running or waiting"),
    leaderElections: m.counter(
      "mic_new_leader_election_count",
      "Total number of new leader election in mic (entries into the election, as the original)",
    ),
    leaderAcquired: m.counter("mic_leader_acquired_count", "Times this MIC became leader"),
    memory: memoryGauge(registry),
  };
}
