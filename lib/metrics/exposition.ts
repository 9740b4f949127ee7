// Prometheus text format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/): the escaping
// and number formatting of its lines, as prom-client 15 wrote them, so scrapes and dashboards see the same
// text as before: integers without ".0", JavaScript's shortest round-trip form otherwise (`le="0.01"`).

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A sample value: `+Inf`, `-Inf`, `NaN` (the format's spellings), else the number's shortest form. */
export function formatValue(v: number): string {
  if (Number.isFinite(v)) return `${v}`;
  if (Number.isNaN(v)) return "NaN";
  return v > 0 ? "+Inf" : "-Inf";
}

/** HELP text escapes only backslash and line feed. */
export function escapeHelp(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** Label values escape backslash, double quote and line feed. */
export function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** `a="x",b="y"` for names and values in the same order ("" for none). */
export function labelPairs(names: readonly string[], values: readonly string[]): string {
  let out = "";
  for (let i = 0; i < names.length; i++) {
    out += `${i ? "," : ""}${names[i]}="${escapeLabelValue(values[i])}"`;
  }
  return out;
}

/** Two lists of label pairs as one (either may be ""). */
export function joinLabels(a: string, b: string): string {
  return a && b ? `${a},${b}` : a || b;
}

/** `{pairs}`, or "" for no labels (the format writes a bare name then). */
export function braces(pairs: string): string {
  return pairs ? `{${pairs}}` : "";
}

export function checkMetricName(name: string): void {
  if (!METRIC_NAME.test(name)) throw new TypeError(`invalid metric name ${JSON.stringify(name)}`);
}

/** Label names: the format's pattern, no `__` prefix (Prometheus reserves it), no duplicates. */
export function checkLabelNames(metric: string, names: readonly string[]): void {
  for (const n of names) {
    if (!LABEL_NAME.test(n) || n.startsWith("__")) {
      throw new TypeError(`${metric}: invalid label name ${JSON.stringify(n)}`);
    }
  }
  if (new Set(names).size !== names.length) throw new TypeError(`${metric}: duplicate label names`);
}
