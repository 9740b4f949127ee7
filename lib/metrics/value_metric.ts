// What counters and gauges share: a series holding one number, incremented by label values and rendered as
// one exposition line.

import { braces, formatValue, joinLabels } from "./exposition.ts";
import { type LabelValues, Metric, type Series } from "./metric.ts";

export abstract class ValueSeries implements Series {
  readonly labelText: string;
  /** One slot: an update stores in place, where a number field may box a new double per update. */
  protected readonly slot = new Float64Array(1);

  constructor(labelText: string) {
    this.labelText = labelText;
  }

  get value(): number {
    return this.slot[0];
  }

  abstract inc(by?: number): void;
}

export abstract class ValueMetric<L extends string, S extends ValueSeries> extends Metric<L, S> {
  /** `inc()`, `inc(n)`, `inc(labels)` or `inc(labels, n)`. */
  inc(labels?: LabelValues<L> | number, by?: number): void {
    if (typeof labels === "number") this.seriesOf(undefined).inc(labels);
    else this.seriesOf(labels).inc(by);
  }

  protected renderSeries(s: S, extra: string): string {
    return `${this.name}${braces(joinLabels(s.labelText, extra))} ${formatValue(s.value)}`;
  }
}
