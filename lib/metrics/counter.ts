// A counter: a total that only goes up (requests served, errors seen).

import { braces, formatValue, joinLabels } from "./exposition.ts";
import { type LabelValues, Metric, type MetricConfig } from "./metric.ts";
import { ValueSeries } from "./value_series.ts";

export class CounterSeries extends ValueSeries {
  inc(by = 1): void {
    if (!(by >= 0) || by === Infinity) {
      throw new TypeError(`counter increment must be finite and >= 0: ${by}`);
    }
    this.slot[0] += by;
  }
}

export class Counter<L extends string = string> extends Metric<L, CounterSeries> {
  readonly type = "counter";

  constructor(config: MetricConfig<L>) {
    super(config);
    this.init(config);
  }

  /** `inc()`, `inc(n)`, `inc(labels)` or `inc(labels, n)`. */
  inc(labels?: LabelValues<L> | number, by?: number): void {
    if (typeof labels === "number") this.seriesOf(undefined).inc(labels);
    else this.seriesOf(labels).inc(by);
  }

  protected newSeries(labelText: string): CounterSeries {
    return new CounterSeries(labelText);
  }

  protected renderSeries(s: CounterSeries, extra: string): string {
    return `${this.name}${braces(joinLabels(s.labelText, extra))} ${formatValue(s.value)}`;
  }
}
