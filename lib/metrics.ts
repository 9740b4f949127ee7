// Prometheus metrics for MIC and NMI: counters, gauges and histograms and their text exposition, our own
// (lib/metrics/) rather than prom-client, whose module graph cost each process 8-10 MiB of RSS. The API and
// the text are prom-client's, so callers and scrapes did not change. Each service makes its own Registry,
// so tests that run several components in one process do not share counters, and names carry the
// original's `aadpodidentity_` prefix. Labels must stay bounded: never a URL path, a pod name or an identity
// id as a label value (a metric also caps its series, see lib/metrics/metric.ts).

import { Counter } from "./metrics/counter.ts";
import { Gauge } from "./metrics/gauge.ts";
import { Histogram } from "./metrics/histogram.ts";
import { Registry } from "./metrics/registry.ts";

export { Counter, type CounterSeries } from "./metrics/counter.ts";
export { Gauge, type GaugeSeries } from "./metrics/gauge.ts";
export { Histogram, type HistogramSeries } from "./metrics/histogram.ts";
export { Registry } from "./metrics/registry.ts";

export const METRIC_PREFIX = "aadpodidentity_";

/** Buckets in seconds for request-scale latencies (1 ms .. 30 s). */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Buckets in seconds for cloud operations, which take seconds to minutes (up to Compute's 20 min). */
export const CLOUD_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200];

/** Declares metrics in `registry` under the original's prefix, one call per metric. */
export function metricsIn(registry: Registry) {
  const registers = [registry];
  return {
    counter: <L extends string = string>(name: string, help: string, labelNames: readonly L[] = []) =>
      new Counter<L>({ name: METRIC_PREFIX + name, help, labelNames, registers }),
    gauge: <L extends string = string>(name: string, help: string, labelNames: readonly L[] = []) =>
      new Gauge<L>({ name: METRIC_PREFIX + name, help, labelNames, registers }),
    histogram: <L extends string = string>(
      name: string,
      help: string,
      buckets: number[],
      labelNames: readonly L[] = [],
    ) => new Histogram<L>({ name: METRIC_PREFIX + name, help, labelNames, buckets, registers }),
  };
}

/**
 * The original's histogram buckets for assigned-identity writes and IMDS token calls (one list in its
 * pkg/metrics): kept in ours so every `le` a dashboard of the original reads exists.
 */
export const ORIGINAL_OPERATION_BUCKETS = [
  0.01,
  0.02,
  0.05,
  0.1,
  0.2,
  0.3,
  0.4,
  0.5,
  0.6,
  0.7,
  0.8,
  0.9,
  1,
  2,
  3,
  4,
  5,
  10,
];

/** Our buckets and the original's, merged and sorted. */
export function withOriginal(ours: number[], original: number[]): number[] {
  return [...new Set([...ours, ...original])].sort((a, b) => a - b);
}

export function newRegistry(defaultLabels?: Record<string, string>): Registry {
  const r = new Registry();
  if (defaultLabels) r.setDefaultLabels(defaultLabels);
  return r;
}
