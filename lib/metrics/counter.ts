// A counter: a total that only goes up (requests served, errors seen).

import type { MetricConfig } from "./metric.ts";
import { ValueMetric, ValueSeries } from "./value_metric.ts";

export class CounterSeries extends ValueSeries {
  inc(by = 1): void {
    if (!(by >= 0) || by === Infinity) {
      throw new TypeError(`counter increment must be finite and >= 0: ${by}`);
    }
    this.slot[0] += by;
  }
}

export class Counter<L extends string = string> extends ValueMetric<L, CounterSeries> {
  readonly type = "counter";

  constructor(config: MetricConfig<L>) {
    super(config);
    this.init(config);
  }

  protected newSeries(labelText: string): CounterSeries {
    return new CounterSeries(labelText);
  }
}
