// A minimal structured logger shared by the services: one line per record on stderr, as text or JSON.
// Components take a `Logger` so tests can capture what a user would see.

import { isoTime } from "./time_text.ts";

type LogLevel = "debug" | "info" | "warn" | "error";
type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

interface LogRecord {
  level: LogLevel;
  msg: string;
  fields: LogFields;
  time: Date;
}

const LEVELS: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

interface LoggerOptions {
  format?: "text" | "json";
  level?: LogLevel;
  /** Where finished lines go; stderr by default. */
  write?: (line: string) => void;
}

function fieldText(value: unknown): string {
  const s = typeof value === "string"
    ? value
    : value instanceof Error
    ? value.message
    : JSON.stringify(value);
  return /[\s"=]/.test(s ?? "") ? JSON.stringify(s) : String(s);
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const format = opts.format ?? "text";
  const min = LEVELS[opts.level ?? "info"];
  const encoder = new TextEncoder();
  const write = opts.write ?? ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const emit = (level: LogLevel, msg: string, fields: LogFields = {}) => {
    if (LEVELS[level] < min) return;
    const time = isoTime(Date.now());
    if (format === "json") {
      const plain = Object.fromEntries(
        Object.entries(fields).map(([k, v]) => [k, v instanceof Error ? v.message : v]),
      );
      write(JSON.stringify({ time, level, msg, ...plain }));
    } else {
      const extra = Object.entries(fields).map(([k, v]) => ` ${k}=${fieldText(v)}`).join("");
      write(`${time} ${level.toUpperCase()} ${msg}${extra}`);
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

/** A logger that keeps records in memory, for tests that assert what was logged. */
export function memoryLogger(): Logger & { records: LogRecord[] } {
  const records: LogRecord[] = [];
  const push = (level: LogLevel) => (msg: string, fields: LogFields = {}) =>
    records.push({ level, msg, fields, time: new Date() });
  return { records, debug: push("debug"), info: push("info"), warn: push("warn"), error: push("error") };
}

function envOr(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    // Without --allow-env the defaults apply; importing the logger must never fail.
    return undefined;
  }
}

const levelFromEnv = (envOr("LOG_LEVEL") ?? "info") as LogLevel;

/** The process-wide default logger (LOG_LEVEL, LOG_FORMAT=json|text). */
export const log: Logger = createLogger({
  level: levelFromEnv in LEVELS ? levelFromEnv : "info",
  format: envOr("LOG_FORMAT") === "json" ? "json" : "text",
});
