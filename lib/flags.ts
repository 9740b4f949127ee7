// Command-line flags for MIC and NMI, read the way the original's Go `flag`/pflag parsers read them, so the
// args in existing manifests keep working: `-name` or `--name`, `=value` or a separate value, bare booleans,
// `--bool=false`, and the original's old spellings as aliases. An env var may stand in for a flag (as
// FORCENAMESPACED did upstream); a flag given on the command line wins. Parsing is pure: it returns values
// or throws FlagError, and `helpText` renders the table `--help` prints.

export type FlagKind = "string" | "bool" | "int" | "duration" | "list";

type ValueOf<K extends FlagKind> = K extends "string" ? string
  : K extends "bool" ? boolean
  : K extends "int" ? number
  : K extends "duration" ? number
  : K extends "list" ? string[]
  : never;

export interface FlagSpec<K extends FlagKind = FlagKind> {
  kind: K;
  /** Durations are milliseconds. */
  default: ValueOf<K>;
  help: string;
  /** Other names accepted for the same flag (the original's spellings). */
  aliases?: string[];
  /** An env var read when the flag is not on the command line. */
  env?: string;
  /** Allowed values of a string flag. */
  choices?: readonly string[];
}

export type FlagSpecs = Record<string, FlagSpec>;
export type FlagValues<S extends FlagSpecs> = {
  [N in keyof S]: S[N] extends FlagSpec<infer K> ? ValueOf<K> : never;
};

export class FlagError extends Error {
  override name = "FlagError";
}

export function flag<K extends FlagKind>(spec: FlagSpec<K>): FlagSpec<K> {
  return spec;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration subset ("1h30m", "15s", "250ms"); a bare number is seconds, as upstream's int flags. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const parts = [...s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join("") !== s) {
    throw new FlagError(`invalid duration ${JSON.stringify(text)} (use e.g. 15s, 3m, 1h)`);
  }
  return parts.reduce((ms, p) => ms + Number(p[1]) * DURATION_UNITS[p[2]], 0);
}

function convert(name: string, spec: FlagSpec, raw: string): ValueOf<FlagKind> {
  switch (spec.kind) {
    case "string":
      if (spec.choices && !spec.choices.includes(raw)) {
        throw new FlagError(`--${name}: ${JSON.stringify(raw)} is not one of ${spec.choices.join(", ")}`);
      }
      return raw;
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

export interface ParsedFlags<S extends FlagSpecs> {
  values: FlagValues<S>;
  /** Arguments after `--` or that are not flags. */
  rest: string[];
  help: boolean;
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
    const [, given, inline] = m;
    if (given === "help" || given === "h") {
      help = true;
      continue;
    }
    const name = byName.get(given);
    if (!name) throw new FlagError(`unknown flag ${arg.split("=")[0]} (see --help)`);
    const spec = specs[name];
    let raw = inline;
    if (raw === undefined) {
      if (spec.kind === "bool") raw = "true";
      else if (i + 1 < argv.length) raw = argv[++i];
      else throw new FlagError(`flag --${given} needs a value`);
    }
    values[name] = convert(name, spec, raw);
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (name in values) continue;
    const fromEnv = spec.env ? env(spec.env) : undefined;
    values[name] = fromEnv !== undefined && fromEnv !== ""
      ? convert(`${name} (from ${spec.env})`, spec, fromEnv)
      : spec.default;
  }
  return { values: values as FlagValues<S>, rest, help };
}

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
    if (spec.env) meta.push(`env ${spec.env}`);
    lines.push(`  --${name} (${spec.kind})`, `      ${spec.help} [${meta.join("; ")}]`);
  }
  return lines.join("\n");
}
