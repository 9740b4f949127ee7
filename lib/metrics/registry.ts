// A registry: the metrics of one service, rendered together for its /metrics. Each service makes its own,
// so tests that run several components in one process do not share values.

import { braces, checkLabelNames, CONTENT_TYPE, escapeLabelValue, joinLabels } from "./exposition.ts";
import type { Collectable, MetricSink } from "./metric.ts";

/** Reports series refused by the per-metric cap, only once some were. */
const DROPPED_NAME = "aadpodidentity_metric_series_dropped_total";

export class Registry implements MetricSink {
  readonly #metrics = new Map<string, Collectable>();
  #defaults: [string, string][] = [];

  get contentType(): string {
    return CONTENT_TYPE;
  }

  registerMetric(metric: Collectable): void {
    const had = this.#metrics.get(metric.name);
    if (had && had !== metric) throw new Error(`metric ${metric.name} is already registered`);
    this.#metrics.set(metric.name, metric);
  }

  /** Labels added to every series that does not carry a label of the same name. */
  setDefaultLabels(labels: Record<string, string>): void {
    checkLabelNames("default labels", Object.keys(labels));
    this.#defaults = Object.entries(labels).map(([k, v]) => [k, `${k}="${escapeLabelValue(v)}"`]);
  }

  /** The text exposition (format 0.0.4) of every metric, in registration order. */
  metrics(): string {
    const extra = (own: readonly string[]) =>
      this.#defaults.filter(([k]) => !own.includes(k)).map(([, text]) => text).join(",");
    const blocks: string[] = [];
    let dropped = "";
    for (const m of this.#metrics.values()) {
      m.collect?.();
      blocks.push(m.render(extra));
      if (m.droppedSeries > 0) {
        const labels = joinLabels(`metric="${m.name}"`, extra(["metric"]));
        dropped += `\n${DROPPED_NAME}${braces(labels)} ${m.droppedSeries}`;
      }
    }
    if (dropped) {
      blocks.push(
        `# HELP ${DROPPED_NAME} Label combinations refused by the per-metric series cap\n` +
          `# TYPE ${DROPPED_NAME} counter${dropped}`,
      );
    }
    return blocks.join("\n\n") + "\n";
  }
}
