// A gauge: a value that goes up and down (requests waiting, memory in use).

import type { LabelValues, MetricConfig } from "./metric.ts";
import { ValueMetric, ValueSeries } from "./value_metric.ts";

export class GaugeSeries extends ValueSeries {
  set(v: number): void {
    if (typeof v !== "number") throw new TypeError(`gauge value must be a number: ${v}`);
    this.slot[0] = v;
  }

  inc(by = 1): void {
    if (!Number.isFinite(by)) throw new TypeError(`gauge increment must be finite: ${by}`);
    this.slot[0] += by;
  }

  dec(by = 1): void {
    this.inc(-by);
  }
}

interface GaugeConfig<L extends string> extends MetricConfig<L> {
  /** Sets values at scrape time (`this` is the gauge). */
  collect?: (this: Gauge<L>) => void;
}

export class Gauge<L extends string = string> extends ValueMetric<L, GaugeSeries> {
  readonly type = "gauge";
  readonly #collect: ((this: Gauge<L>) => void) | undefined;

  constructor(config: GaugeConfig<L>) {
    super(config);
    this.#collect = config.collect;
    this.init(config);
  }

  collect(): void {
    this.#collect?.call(this);
  }

  /** `set(v)` or `set(labels, v)`. */
  set(labels: LabelValues<L> | number, v?: number): void {
    if (typeof labels === "number") this.seriesOf(undefined).set(labels);
    else this.seriesOf(labels).set(v as number);
  }

  /** `dec()`, `dec(n)`, `dec(labels)` or `dec(labels, n)`. */
  dec(labels?: LabelValues<L> | number, by?: number): void {
    if (typeof labels === "number") this.seriesOf(undefined).dec(labels);
    else this.seriesOf(labels).dec(by);
  }

  protected newSeries(labelText: string): GaugeSeries {
    return new GaugeSeries(labelText);
  }
}
