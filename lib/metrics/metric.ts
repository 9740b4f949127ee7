// What counters, gauges and histograms share: the name, help and label names, and their series (one per
// combination of label values). A series is found through one Map per label (values as keys), so looking
// up an existing one allocates nothing; callers on a hot path can also bind a series once (`labels(...)`)
// and keep it. Labels are bounded by design, but the number of series per metric is capped anyway: past
// the cap a new combination gets a detached series (its values are never exposed) and counts as a drop.

import { checkLabelNames, checkMetricName, escapeHelp, labelPairs } from "./exposition.ts";

type LabelValue = string | number;
/** Every label of the metric with its value, by name. */
export type LabelValues<L extends string> = Record<L, LabelValue>;

/** Series past this many per metric are dropped (counted, not exposed). */
export const DEFAULT_MAX_SERIES = 10_000;

/** What a registry needs of a metric. */
export interface Collectable {
  readonly name: string;
  readonly droppedSeries: number;
  /** Refreshes values computed at scrape time (a gauge of the process's memory). */
  collect?(): void;
  /**
   * The metric's lines (no trailing line feed); `extra(labelNames)` gives the registry's default labels that
   * the metric does not have itself, formatted (`a="x",b="y"` or "").
   */
  render(extra: (labelNames: readonly string[]) => string): string;
}

/** A registry as a metric sees it, so that this module and the registry's do not import each other. */
export interface MetricSink {
  registerMetric(metric: Collectable): void;
}

export interface MetricConfig<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
  /** Registries to register with (none: a metric only its owner reads). */
  registers?: MetricSink[];
  /** Cap on series (combinations of label values); default DEFAULT_MAX_SERIES. */
  maxSeries?: number;
}

/** One series: its labels already formatted for the exposition. */
export interface Series {
  readonly labelText: string;
}

type Node = Map<string, unknown>;

export abstract class Metric<L extends string, S extends Series> implements Collectable {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  abstract readonly type: "counter" | "gauge" | "histogram";
  readonly #maxSeries: number;
  readonly #root: Node = new Map();
  readonly #series: S[] = [];
  #unlabelled: S | undefined;
  #detached: S | undefined;
  #dropped = 0;

  constructor(config: MetricConfig<L>) {
    checkMetricName(config.name);
    if (!config.help) throw new TypeError(`${config.name}: help text is required`);
    this.name = config.name;
    this.help = config.help;
    this.labelNames = [...(config.labelNames ?? [])];
    checkLabelNames(config.name, this.labelNames);
    this.#maxSeries = config.maxSeries ?? DEFAULT_MAX_SERIES;
  }

  /** Registers with `config.registers`; subclasses call it once their own fields are set. */
  protected init(config: MetricConfig<L>): void {
    // As prom-client: a metric without labels has its one series, at zero, from the start.
    if (this.labelNames.length === 0) {
      this.#unlabelled = this.newSeries("");
      this.#series.push(this.#unlabelled);
    }
    for (const r of config.registers ?? []) r.registerMetric(this);
  }

  /** New combinations refused because the metric had `maxSeries` series. */
  get droppedSeries(): number {
    return this.#dropped;
  }

  /** The series for these label values, in the order of `labelNames`; keep it to skip the lookup. */
  labels(...values: LabelValue[]): S {
    if (values.length !== this.labelNames.length) {
      throw new TypeError(
        `${this.name}: ${values.length} label values for labels (${this.labelNames.join(", ")})`,
      );
    }
    return this.#find(values, true);
  }

  protected abstract newSeries(labelText: string): S;

  protected abstract renderSeries(series: S, extra: string): string;

  /** The series of a call: its label object, or the unlabelled series when the metric has none. */
  protected seriesOf(labels: LabelValues<L> | undefined): S {
    if (labels === undefined) {
      if (this.#unlabelled) return this.#unlabelled;
      throw new TypeError(`${this.name}: label values required for (${this.labelNames.join(", ")})`);
    }
    return this.#find(labels, false);
  }

  render(extra: (labelNames: readonly string[]) => string): string {
    const defaults = extra(this.labelNames);
    let out = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}`;
    for (const s of this.#series) out += "\n" + this.renderSeries(s, defaults);
    return out;
  }

  #find(src: readonly LabelValue[] | LabelValues<L>, positional: boolean): S {
    const n = this.labelNames.length;
    if (n === 0) {
      if (!positional) this.#checkKeys(src as LabelValues<L>);
      return this.#unlabelled!;
    }
    let node = this.#root;
    for (let i = 0; i < n - 1; i++) {
      const next = node.get(this.#valueAt(src, i, positional));
      if (next === undefined) return this.#create(src, positional);
      node = next as Node;
    }
    const hit = node.get(this.#valueAt(src, n - 1, positional));
    return hit === undefined ? this.#create(src, positional) : hit as S;
  }

  #valueAt(src: readonly LabelValue[] | LabelValues<L>, i: number, positional: boolean): string {
    const v = positional ? (src as readonly LabelValue[])[i] : (src as LabelValues<L>)[this.labelNames[i]];
    if (typeof v === "string") return v;
    if (typeof v === "number") return `${v}`;
    throw new TypeError(`${this.name}: label ${this.labelNames[i]} needs a string or number value`);
  }

  #create(src: readonly LabelValue[] | LabelValues<L>, positional: boolean): S {
    if (!positional) this.#checkKeys(src as LabelValues<L>);
    const values = this.labelNames.map((_, i) => this.#valueAt(src, i, positional));
    if (this.#series.length >= this.#maxSeries) {
      this.#dropped++;
      return this.#detached ??= this.newSeries("");
    }
    let node = this.#root;
    for (let i = 0; i < values.length - 1; i++) {
      let next = node.get(values[i]) as Node | undefined;
      if (!next) node.set(values[i], next = new Map());
      node = next;
    }
    const series = this.newSeries(labelPairs(this.labelNames, values));
    node.set(values[values.length - 1], series);
    this.#series.push(series);
    return series;
  }

  /** A label object names exactly the metric's labels (checked when a series is made, not on every hit). */
  #checkKeys(labels: LabelValues<L>): void {
    for (const k of Object.keys(labels)) {
      if (!(this.labelNames as readonly string[]).includes(k)) {
        throw new TypeError(`${this.name}: unknown label ${k} (labels: ${this.labelNames.join(", ")})`);
      }
    }
  }
}
