// Parsing an HTTP/1.1 request head (pure), strictly: a pod is the client, so anything two servers could read
// two ways is refused rather than guessed (RFC 9112): CRLF line ends only, no whitespace before a header's
// colon, no obsolete line folding, one Content-Length (digits only), Transfer-Encoding only as exactly
// "chunked" and never together with Content-Length.

export interface RequestHead {
  method: string;
  /** The request-target exactly as sent. */
  target: string;
  /** "HTTP/1.1" or "HTTP/1.0". */
  version: string;
  headers: [string, string][];
  /** Body framing: none, a fixed length, or chunked. */
  body: { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" };
  /** The client asked to keep the connection open (HTTP/1.1 default, HTTP/1.0 with keep-alive). */
  keepAlive: boolean;
}

type HeadResult =
  | { ok: true; head: RequestHead }
  | { ok: false; status: 400 | 501 | 505; reason: string };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII, obs-text, spaces and tabs; never CR, LF or NUL.
// deno-lint-ignore no-control-regex
const BAD_VALUE = /[\u0000-\u0008\u000a-\u001f\u007f]/;
// deno-lint-ignore no-control-regex
const BAD_TARGET = /[\u0000-\u0020\u007f]/;

/** Header lines accepted in one head (as hyper, which Deno.serve used). */
const MAX_HEADERS = 100;

const fail = (status: 400 | 501 | 505, reason: string): HeadResult => ({ ok: false, status, reason });

/** Index just past the blank line ending the head that starts at `start`, searching `[from, to)`; or -1. */
export function headEnd(buf: Uint8Array, start: number, from: number, to: number): number {
  for (let i = Math.max(from, start + 3); i < to; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1;
  }
  return -1;
}

/** Parses a head (latin-1 text up to and including its blank line). */
export function parseHead(text: string): HeadResult {
  const lines = text.split("\r\n");
  // The head ends with CRLF CRLF: the last two items are empty.
  if (lines.length < 3 || lines[lines.length - 1] !== "" || lines[lines.length - 2] !== "") {
    return fail(400, "malformed request head");
  }
  lines.length -= 2;
  for (const l of lines) if (l.includes("\n") || l.includes("\r")) return fail(400, "bare CR or LF");
  const parts = lines[0].split(" ");
  if (parts.length !== 3) return fail(400, "malformed request line");
  const [method, target, version] = parts;
  if (!TOKEN.test(method)) return fail(400, "malformed method");
  if (target === "" || BAD_TARGET.test(target)) return fail(400, "malformed request target");
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    return /^HTTP\/\d\.\d$/.test(version)
      ? fail(505, "HTTP version not supported")
      : fail(400, "bad version");
  }
  const headers: [string, string][] = [];
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let connection = "";
  if (lines.length - 1 > MAX_HEADERS) return fail(400, `more than ${MAX_HEADERS} header lines`);
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line[0] === " " || line[0] === "\t") return fail(400, "obsolete line folding");
    const colon = line.indexOf(":");
    if (colon <= 0) return fail(400, "malformed header line");
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return fail(400, "malformed header name");
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (BAD_VALUE.test(value)) return fail(400, "control character in a header value");
    const lower = name.toLowerCase();
    if (lower === "content-length") {
      if (contentLength !== undefined) return fail(400, "more than one Content-Length");
      contentLength = value;
    } else if (lower === "transfer-encoding") {
      if (transferEncoding !== undefined) return fail(400, "more than one Transfer-Encoding");
      transferEncoding = value;
    } else if (lower === "connection") {
      connection += `,${value.toLowerCase()}`;
    }
    headers.push([name, value]);
  }
  let body: RequestHead["body"] = { kind: "none" };
  if (transferEncoding !== undefined) {
    if (contentLength !== undefined) return fail(400, "both Content-Length and Transfer-Encoding");
    if (transferEncoding.toLowerCase() !== "chunked") return fail(501, "unsupported Transfer-Encoding");
    body = { kind: "chunked" };
  } else if (contentLength !== undefined) {
    if (!/^\d{1,15}$/.test(contentLength)) return fail(400, "malformed Content-Length");
    const length = Number(contentLength);
    if (length > 0) body = { kind: "length", length };
  }
  const tokens = connection.split(",").map((t) => t.trim());
  const keepAlive = version === "HTTP/1.1" ? !tokens.includes("close") : tokens.includes("keep-alive");
  return { ok: true, head: { method, target, version, headers, body, keepAlive } };
}
