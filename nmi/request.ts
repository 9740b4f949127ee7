// Request classification and token-query parsing (pure). Which route a path is, and whether a token query is
// acceptable, is decided here from the raw request line, before any lookup or upstream call, so bad input
// costs nothing and changes nothing (docs/protocols.md "IMDS token protocol"; docs/upstream.md "NMI routes
// and status codes").

import type { RequestHeaders } from "./http1_types.ts";

export type RouteKind = "token" | "host_token" | "mangled_token" | "instance" | "proxy";

const TOKEN_PATH = "/metadata/identity/oauth2/token";
const HOST_TOKEN_PATH = "/host/token";

/** Longest raw query NMI reads; SDK token queries are a few hundred bytes. */
export const MAX_QUERY_LENGTH = 2048;
/** Total size of request headers NMI accepts (names + values); SDKs send well under 1 KiB. */
export const MAX_HEADER_BYTES = 8192;

export interface ErrorAnswer {
  status: number;
  error: string;
  description: string;
  headers?: Record<string, string>;
}

export function errorAnswer(
  status: number,
  error: string,
  description: string,
  headers?: Record<string, string>,
): ErrorAnswer {
  return headers ? { status, error, description, headers } : { status, error, description };
}

/** Percent-decodes a path; undefined when the escapes are not valid UTF-8. */
function decodePath(path: string): string | undefined {
  try {
    return decodeURIComponent(path);
  } catch {
    return undefined;
  }
}

/**
 * The route of a URL path. Token paths compare case-insensitively, ignoring repeated and trailing slashes
 * and percent-escapes; anything else under `/metadata/identity/` (except `info`), or any path that spells
 * identity..oauth2..token some other way, is a mangled token path: refused, never proxied, because IMDS
 * would answer it with the node's own identities (the original's fix #1325, generalised).
 */
export function classifyPath(rawPath: string): RouteKind {
  if (rawPath === TOKEN_PATH) return "token"; // what every SDK sends: skip the general rules
  const decoded = decodePath(rawPath);
  if (decoded === undefined) return "mangled_token";
  const p = decoded.toLowerCase().replace(/\/{2,}/g, "/").replace(/\/+$/, "");
  if (p === TOKEN_PATH) return "token";
  if (p === HOST_TOKEN_PATH) return "host_token";
  if (/identity[\s\S]*oauth2[\s\S]*token/.test(p)) return "mangled_token";
  if (p.startsWith("/metadata/identity/") && p !== "/metadata/identity/info") return "mangled_token";
  if (p === "/metadata/instance" || p.startsWith("/metadata/instance/")) return "instance";
  return "proxy";
}

/** Methods each route answers; IMDS serves tokens on GET only. */
export function allowedMethods(route: RouteKind): readonly string[] {
  switch (route) {
    case "token":
    case "host_token":
    case "instance":
      return ["GET"];
    case "mangled_token":
      return [];
    case "proxy":
      // Scheduled events are acknowledged with POST; nothing else IMDS serves takes another method.
      return ["GET", "HEAD", "POST"];
  }
}

/** `Metadata: true`, exactly, as IMDS and the original compare it. */
export function hasMetadataHeader(value: string | null): boolean {
  return value === "true";
}

export function headerBytes(headers: RequestHeaders): number {
  let n = 0;
  for (const [k, v] of headers) n += k.length + v.length + 4;
  return n;
}

export interface TokenQuery {
  resource: string;
  clientId?: string;
  resourceId?: string;
  objectId?: string;
  /** Other parameters (api-version, bypass_cache, ...) as sent; not interpreted. */
  apiVersion?: string;
}

type ParseResult<T> = { ok: true; value: T } | { ok: false; error: ErrorAnswer };

const bad = (description: string): { ok: false; error: ErrorAnswer } => ({
  ok: false,
  error: errorAnswer(400, "invalid_request", description),
});

/**
 * Parses a raw query string (without `?`) strictly: every name once (IMDS rejects duplicates, and two
 * `client_id`s must never be read two ways), valid percent-encoded UTF-8, no control characters.
 */
export function parseQuery(raw: string): ParseResult<Map<string, string>> {
  if (raw.length > MAX_QUERY_LENGTH) {
    return {
      ok: false,
      error: errorAnswer(414, "invalid_request", `query string longer than ${MAX_QUERY_LENGTH} bytes`),
    };
  }
  const out = new Map<string, string>();
  if (raw === "") return { ok: true, value: out };
  for (const part of raw.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? "" : part.slice(eq + 1);
    let name: string, value: string;
    try {
      name = decodeURIComponent(rawName.replace(/\+/g, " "));
      value = decodeURIComponent(rawValue.replace(/\+/g, " "));
    } catch {
      return bad("query string is not valid percent-encoded UTF-8");
    }
    // deno-lint-ignore no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(name + value)) return bad("query string contains control characters");
    if (out.has(name)) return bad(`query parameter '${name}' is given more than once`);
    out.set(name, value);
  }
  return { ok: true, value: out };
}

const SELECTORS = ["client_id", "object_id", "msi_res_id", "mi_res_id"] as const;
const PRINTABLE_ASCII = /^[\x21-\x7e]*$/;

// An SDK repeats the same query string on every call; decoding and checking it cost 4-7 µs of NMI's ~50 µs
// per cached token. Results are frozen and shared; the memo is bounded (cleared when full).
const MEMO_ENTRIES = 64;
const memo = new Map<string, Readonly<ParseResult<TokenQuery>>>();

/** The token query: `resource` required, at most one identity selector (`mi_res_id` = `msi_res_id`). */
export function parseTokenQuery(raw: string): Readonly<ParseResult<TokenQuery>> {
  const hit = memo.get(raw);
  if (hit) return hit;
  const result = parseTokenQueryOnce(raw);
  Object.freeze(result.ok ? result.value : result.error);
  if (memo.size >= MEMO_ENTRIES) memo.clear();
  memo.set(raw, Object.freeze(result));
  return result;
}

function parseTokenQueryOnce(raw: string): ParseResult<TokenQuery> {
  const parsed = parseQuery(raw);
  if (!parsed.ok) return parsed;
  const q = parsed.value;
  const resource = q.get("resource") ?? "";
  if (resource.trim() === "") return bad("Required query variable 'resource' is missing");
  // Resources are URIs or app ids; anything else is refused here rather than sent upstream.
  for (const name of ["resource", ...SELECTORS]) {
    const v = q.get(name);
    if (v !== undefined && !PRINTABLE_ASCII.test(v)) {
      return bad(`query parameter '${name}' must be printable ASCII without spaces`);
    }
  }
  const given = SELECTORS.filter((s) => (q.get(s) ?? "") !== "");
  if (given.length > 1) {
    return bad(`only one of client_id, object_id or msi_res_id may be given; got ${given.join(", ")}`);
  }
  const value: TokenQuery = { resource };
  const apiVersion = q.get("api-version");
  if (apiVersion) value.apiVersion = apiVersion;
  const sel = given[0];
  if (sel === "client_id") value.clientId = q.get(sel)!;
  else if (sel === "object_id") value.objectId = q.get(sel)!;
  else if (sel === "msi_res_id" || sel === "mi_res_id") value.resourceId = q.get(sel)!;
  return { ok: true, value };
}

/** Removes the `?` and everything before it; "" when there is no query. */
export function rawQueryOf(url: string): string {
  const i = url.indexOf("?");
  if (i < 0) return "";
  const h = url.indexOf("#", i);
  return h < 0 ? url.slice(i + 1) : url.slice(i + 1, h);
}

/** The raw path of a request URL, without scheme, host and query. */
export function rawPathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const q = url.indexOf("?", start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}

/** An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is the IPv4 pod address; IPv6 compares lower-case. */
export function normalizeIp(ip: string): string {
  const s = ip.replace(/^\[|\]$/g, "").toLowerCase();
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  return m ? m[1] : s;
}

/** A host process on this node (the original accepted exactly 127.0.0.1 for /host/token). */
export function isHostCaller(ip: string): boolean {
  const s = normalizeIp(ip);
  return s === "127.0.0.1" || s === "::1";
}
