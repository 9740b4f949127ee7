// A histogram: observations counted into cumulative buckets (`le`, upper bounds inclusive, then +Inf), with
// their sum and count. A series keeps one count per bucket, so an observation is a binary search and three
// additions, and allocates nothing.

import { braces, formatValue, joinLabels } from "./exposition.ts";
import { type LabelValues, Metric, type MetricConfig, type Series } from "./metric.ts";

export class HistogramSeries implements Series {
  readonly labelText: string;
  readonly bounds: readonly number[];
  /**
   * Observations per bucket (not cumulative; slot `bounds.length` is above the highest bound), then the sum,
   * then the count: in a Float64Array an update stores in place, where a number field may box a new double.
   */
  readonly values: Float64Array;

  constructor(labelText: string, bounds: readonly number[]) {
    this.labelText = labelText;
    this.bounds = bounds;
    this.values = new Float64Array(bounds.length + 3);
  }

  get sum(): number {
    return this.values[this.bounds.length + 1];
  }

  get count(): number {
    return this.values[this.bounds.length + 2];
  }

  observe(v: number): void {
    if (!Number.isFinite(v)) throw new TypeError(`histogram observation must be finite: ${v}`);
    const b = this.bounds;
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (v <= b[mid]) hi = mid;
      else lo = mid + 1;
    }
    const values = this.values;
    values[lo]++;
    values[b.length + 1] += v;
    values[b.length + 2]++;
  }
}

interface HistogramConfig<L extends string> extends MetricConfig<L> {
  /** Upper bounds, strictly increasing and finite (+Inf is implied). */
  buckets: readonly number[];
}

export class Histogram<L extends string = string> extends Metric<L, HistogramSeries> {
  readonly type = "histogram";
  readonly #bounds: readonly number[];
  /** `le="0.01"` per bound, formatted once. */
  readonly #le: readonly string[];

  constructor(config: HistogramConfig<L>) {
    super(config);
    if ((this.labelNames as readonly string[]).includes("le")) {
      throw new TypeError(`${this.name}: "le" is reserved for histogram buckets`);
    }
    const b = config.buckets;
    b.forEach((v, i) => {
      if (!Number.isFinite(v) || (i > 0 && v <= b[i - 1])) {
        throw new TypeError(`${this.name}: buckets must be finite and strictly increasing: ${b.join(", ")}`);
      }
    });
    this.#bounds = [...b];
    this.#le = this.#bounds.map((v) => `le="${formatValue(v)}"`);
    this.init(config);
  }

  /** `observe(v)` or `observe(labels, v)`. */
  observe(labels: LabelValues<L> | number, v?: number): void {
    if (typeof labels === "number") this.seriesOf(undefined).observe(labels);
    else this.seriesOf(labels).observe(v as number);
  }

  protected newSeries(labelText: string): HistogramSeries {
    return new HistogramSeries(labelText, this.#bounds);
  }

  // As prom-client: `le` first on bucket lines.
  protected renderSeries(s: HistogramSeries, extra: string): string {
    const bucket = `${this.name}_bucket`;
    const labels = joinLabels(s.labelText, extra);
    const tail = labels ? "," + labels : "";
    const rest = braces(labels);
    let out = "";
    let cumulative = 0;
    for (let i = 0; i < this.#le.length; i++) {
      cumulative += s.values[i];
      out += `${bucket}{${this.#le[i]}${tail}} ${formatValue(cumulative)}\n`;
    }
    out += `${bucket}{le="+Inf"${tail}} ${formatValue(s.count)}\n`;
    out += `${this.name}_sum${rest} ${formatValue(s.sum)}\n`;
    return out + `${this.name}_count${rest} ${formatValue(s.count)}`;
  }
}
