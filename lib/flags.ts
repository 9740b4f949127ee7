// Command-line flags for MIC and NMI, read the way the original's Go `flag`/pflag parsers read them, so the
// args in existing manifests keep working: `-name` or `--name`, `=value` or a separate value, bare booleans,
// `--bool=false`, and the original's old spellings as aliases. An env var may stand in for a flag (as
// FORCENAMESPACED did upstream), either as a fallback (a flag given on the command line wins) or ORed with a
// boolean flag, as the original combined FORCENAMESPACED. Parsing is pure: it returns values or throws
// FlagError, and `helpText` renders the table `--help` prints. KLOG_FLAGS is the klog v2 set both original
// binaries registered (k8s.io/klog/v2 v2.30.0 `InitFlags`), so their args keep parsing.

type FlagKind = "string" | "bool" | "int" | "float" | "duration" | "list";

type ValueOf<K extends FlagKind> = K extends "string" ? string
  : K extends "bool" ? boolean
  : K extends "int" ? number
  : K extends "float" ? number
  : K extends "duration" ? number
  : K extends "list" ? string[]
  : never;

interface FlagSpec<K extends FlagKind = FlagKind> {
  kind: K;
  /** Durations are milliseconds. */
  default: ValueOf<K>;
  help: string;
  /** Other names accepted for the same flag (the original's spellings). */
  aliases?: string[];
  /** An env var read when the flag is not on the command line. */
  env?: string;
  /** "or": a bool flag is true when the flag or the env var is (the original's FORCENAMESPACED). */
  envMode?: "fallback" | "or";
  /** Allowed values of a string flag. */
  choices?: readonly string[];
  /** Compare `choices` case-insensitively and keep the lower-cased value (the original's ToLower). */
  foldCase?: boolean;
  /** Accepted so existing args parse; the job is gone (`help` says why). Reported once at start. */
  ignored?: boolean;
}

type FlagSpecs = Record<string, FlagSpec>;
export type FlagValues<S extends FlagSpecs> = {
  [N in keyof S]: S[N] extends FlagSpec<infer K> ? ValueOf<K> : never;
};

export class FlagError extends Error {
  override name = "FlagError";
}

export function flag<K extends FlagKind>(spec: FlagSpec<K>): FlagSpec<K> {
  return spec;
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's time.ParseDuration ("1h0m0s", "15s", "1.5h", "250ms"); a bare number is seconds, as upstream's int flags. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const parts = [...s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join("") !== s) {
    throw new FlagError(`invalid duration ${JSON.stringify(text)} (use e.g. 15s, 3m, 1h)`);
  }
  return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * DURATION_UNITS[p[2]], 0));
}

function convert(name: string, spec: FlagSpec, raw: string): ValueOf<FlagKind> {
  switch (spec.kind) {
    case "string": {
      const v = spec.foldCase ? raw.toLowerCase() : raw;
      if (spec.choices && !spec.choices.includes(v)) {
        throw new FlagError(`--${name}: ${JSON.stringify(raw)} is not one of ${spec.choices.join(", ")}`);
      }
      return v;
    }
    case "bool": {
      const v = raw.toLowerCase();
      if (["true", "1", "t"].includes(v)) return true;
      if (["false", "0", "f"].includes(v)) return false;
      throw new FlagError(`--${name}: ${JSON.stringify(raw)} is not a boolean`);
    }
    case "int": {
      if (!/^-?\d+$/.test(raw.trim())) {
        throw new FlagError(`--${name}: ${JSON.stringify(raw)} is not an integer`);
      }
      return Number(raw);
    }
    case "float": {
      // Go's strconv.ParseFloat forms that manifests use: 5, 5.5, .5, 1e2.
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw.trim())) {
        throw new FlagError(`--${name}: ${JSON.stringify(raw)} is not a number`);
      }
      return Number(raw);
    }
    case "duration":
      try {
        return parseDuration(raw);
      } catch (e) {
        throw new FlagError(`--${name}: ${(e as Error).message}`);
      }
    case "list":
      return raw.split(",").map((x) => x.trim()).filter(Boolean);
  }
}

interface ParsedFlags<S extends FlagSpecs> {
  values: FlagValues<S>;
  /** Arguments after `--` or that are not flags. */
  rest: string[];
  help: boolean;
  /** Canonical names of the flags given on the command line, in first-seen order. */
  given: string[];
}

export function parseFlags<S extends FlagSpecs>(
  specs: S,
  argv: readonly string[],
  env: (name: string) => string | undefined = () => undefined,
): ParsedFlags<S> {
  const byName = new Map<string, string>();
  for (const [name, spec] of Object.entries(specs)) {
    for (const n of [name, ...(spec.aliases ?? [])]) {
      if (byName.has(n)) throw new Error(`flag name ${n} declared twice`);
      byName.set(n, name);
    }
  }
  const values: Record<string, unknown> = {};
  const rest: string[] = [];
  const given = new Set<string>();
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      rest.push(...argv.slice(i + 1));
      break;
    }
    const m = /^--?([^=]+)(?:=([\s\S]*))?$/.exec(arg);
    if (!m || arg === "-") {
      rest.push(arg);
      continue;
    }
    const [, spelled, inline] = m;
    if (spelled === "help" || spelled === "h") {
      help = true;
      continue;
    }
    const name = byName.get(spelled);
    if (!name) throw new FlagError(`unknown flag ${arg.split("=")[0]} (see --help)`);
    const spec = specs[name];
    let raw = inline;
    if (raw === undefined) {
      if (spec.kind === "bool") raw = "true";
      else if (i + 1 < argv.length) raw = argv[++i];
      else throw new FlagError(`flag --${spelled} needs a value`);
    }
    values[name] = convert(name, spec, raw);
    given.add(name);
  }
  for (const [name, spec] of Object.entries(specs)) {
    const fromEnv = spec.env ? env(spec.env) : undefined;
    const hasEnv = fromEnv !== undefined && fromEnv !== "";
    if (name in values) {
      if (spec.envMode === "or" && hasEnv && !values[name]) {
        values[name] = convert(`${name} (from ${spec.env})`, spec, fromEnv);
      }
      continue;
    }
    values[name] = hasEnv ? convert(`${name} (from ${spec.env})`, spec, fromEnv) : spec.default;
  }
  return { values: values as FlagValues<S>, rest, help, given: [...given] };
}

/** The ignored flags given on the command line, for the one line a binary logs about them at start. */
export function ignoredFlagsGiven(specs: FlagSpecs, parsed: { given: readonly string[] }): string[] {
  return parsed.given.filter((n) => specs[n]?.ignored);
}

/**
 * klog's `-v` as a log level: klog.V(4)+ is where the original logged per-request detail, so 4 and above is
 * debug; below stays info. Undefined when `-v` was not given (the binary's own default then applies).
 */
export function levelFromVerbosity(v: number | undefined): "debug" | "info" | undefined {
  if (v === undefined) return undefined;
  return v >= 4 ? "debug" : "info";
}

const KLOG_IGNORED = "ignored: logs always go to stderr, one line per event (use --log-format)";

/** klog v2.30.0's flags, as `klog.InitFlags(nil)` registered them in both original binaries. */
export const KLOG_FLAGS = {
  v: flag({ kind: "int", default: 0, help: "klog verbosity: 4 or more logs at debug level, else info" }),
  logtostderr: flag({ kind: "bool", default: true, ignored: true, help: KLOG_IGNORED }),
  alsologtostderr: flag({ kind: "bool", default: false, ignored: true, help: KLOG_IGNORED }),
  log_dir: flag({ kind: "string", default: "", ignored: true, help: KLOG_IGNORED }),
  log_file: flag({ kind: "string", default: "", ignored: true, help: KLOG_IGNORED }),
  log_file_max_size: flag({ kind: "int", default: 1800, ignored: true, help: KLOG_IGNORED }),
  add_dir_header: flag({ kind: "bool", default: false, ignored: true, help: KLOG_IGNORED }),
  skip_headers: flag({ kind: "bool", default: false, ignored: true, help: KLOG_IGNORED }),
  skip_log_headers: flag({ kind: "bool", default: false, ignored: true, help: KLOG_IGNORED }),
  one_output: flag({ kind: "bool", default: false, ignored: true, help: KLOG_IGNORED }),
  stderrthreshold: flag({ kind: "string", default: "2", ignored: true, help: KLOG_IGNORED }),
  vmodule: flag({ kind: "string", default: "", ignored: true, help: KLOG_IGNORED }),
  log_backtrace_at: flag({ kind: "string", default: "", ignored: true, help: KLOG_IGNORED }),
};

function showDefault(spec: FlagSpec): string {
  const d = spec.default;
  if (spec.kind === "duration") {
    const ms = d as number;
    return ms % 3_600_000 === 0 && ms
      ? `${ms / 3_600_000}h`
      : ms % 60_000 === 0 && ms
      ? `${ms / 60_000}m`
      : `${ms / 1000}s`;
  }
  if (Array.isArray(d)) return d.join(",");
  return String(d);
}

/** The `--help` text: one block per flag with its default, aliases and env var. */
export function helpText(usage: string, specs: FlagSpecs): string {
  const lines = [usage, "", "Flags:"];
  for (const [name, spec] of Object.entries(specs)) {
    const meta = [`default ${JSON.stringify(showDefault(spec))}`];
    if (spec.choices) meta.push(`one of ${spec.choices.join("|")}`);
    if (spec.aliases?.length) meta.push(`also ${spec.aliases.map((a) => `--${a}`).join(", ")}`);
    if (spec.env) meta.push(`env ${spec.env}${spec.envMode === "or" ? " (ORed)" : ""}`);
    lines.push(`  --${name} (${spec.kind})`, `      ${spec.help} [${meta.join("; ")}]`);
  }
  return lines.join("\n");
}
