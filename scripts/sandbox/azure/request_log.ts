// What the emulator was asked, for tests to assert on ("exactly one PATCH, two GETs").
// Bodies and headers are never recorded, and query values whose name looks secret are masked, so the
// log can be printed without leaking credentials or tokens.

export type Service = "arm" | "aad" | "imds";

export interface RequestLogEntry {
  /** ISO-8601 time the request arrived. */
  time: string;
  service: Service;
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  /** Route name, e.g. `vmss.patch`; `<service>.unknown` when nothing matched. */
  route: string;
  durationMs: number;
  /** Client id of the authenticated caller (ARM) or of the client asking for a token (AAD). */
  caller?: string;
  /** For IMDS: the VM / scale-set instance whose endpoint was asked. */
  instance?: string;
  /** True when fault injection closed the connection instead of answering. */
  dropped?: boolean;
}

export type RequestFilter = Partial<
  Pick<RequestLogEntry, "service" | "method" | "route" | "status" | "caller" | "instance">
>;

const SECRET_QUERY = /secret|assertion|token|password|code|signature|sig$/i;

export function redactQuery(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of params) out[k] = SECRET_QUERY.test(k) ? "***" : v;
  return out;
}

function matches(e: RequestLogEntry, f: RequestFilter): boolean {
  for (const [k, v] of Object.entries(f)) {
    if (v === undefined) continue;
    const actual = e[k as keyof RequestFilter];
    if (k === "method" && typeof actual === "string" && typeof v === "string") {
      if (actual.toUpperCase() !== v.toUpperCase()) return false;
    } else if (actual !== v) {
      return false;
    }
  }
  return true;
}

export class RequestLog implements Iterable<RequestLogEntry> {
  #entries: RequestLogEntry[] = [];

  record(entry: RequestLogEntry): void {
    this.#entries.push(entry);
  }

  get length(): number {
    return this.#entries.length;
  }

  [Symbol.iterator](): Iterator<RequestLogEntry> {
    return this.#entries[Symbol.iterator]();
  }

  /** Entries matching every given field (method compared case-insensitively), oldest first. */
  list(filter: RequestFilter = {}): RequestLogEntry[] {
    return this.#entries.filter((e) => matches(e, filter)).map((e) => ({ ...e, query: { ...e.query } }));
  }

  count(filter: RequestFilter = {}): number {
    return this.#entries.filter((e) => matches(e, filter)).length;
  }

  /** Route names in arrival order; handy for asserting an exact call sequence. */
  routes(filter: RequestFilter = {}): string[] {
    return this.#entries.filter((e) => matches(e, filter)).map((e) => e.route);
  }

  clear(): void {
    this.#entries = [];
  }
}
