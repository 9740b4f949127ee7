// One client connection of NMI's HTTP/1.1 server: requests in sequence (pipelined ones wait their turn),
// heads parsed strictly (nmi/http1_head.ts), bodies streamed (nmi/http1_body.ts), answers written with
// Content-Length. Deadlines are checked by the server's periodic sweep, not by a timer per request.

import { httpDate } from "../lib/time_text.ts";
import { BodyReader } from "./http1_body.ts";
import { headEnd, parseHead, type RequestHead } from "./http1_head.ts";
import {
  closeQuietly,
  HeadFields,
  type Http1Handler,
  type Http1Limits,
  type Http1Stats,
  type IncomingRequest,
  type PlainAnswer,
} from "./http1_types.ts";

/** What a connection needs of its server. */
interface ConnectionHost {
  readonly limits: Http1Limits;
  readonly stats: Http1Stats;
  readonly closing: boolean;
}

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Content Too Large",
  414: "URI Too Long",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};
const SKIP_RESPONSE_HEADERS = new Set(["content-length", "connection", "transfer-encoding", "keep-alive"]);
const latin1 = new TextDecoder("latin1");
const encoder = new TextEncoder();
/** How often the server sweeps deadlines; also how long a request runs before its client is watched. */
export const SWEEP_MS = 50;

let dateSecond = 0;
let dateText = "";
function dateHeader(): string {
  const s = Math.floor(Date.now() / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateText = httpDate(s * 1000);
  }
  return dateText;
}

/** A kept-alive answer's bytes on the wire, per answer object, valid within the second of `date`. */
const framed = new WeakMap<PlainAnswer, { date: string; bytes: Uint8Array }>();

/** Status line, headers (ours: Date, Content-Length, Connection) and body, as one buffer. */
function wireBytes(
  res: { status: number; headers: Iterable<readonly [string, string]> },
  statusText: string,
  body: Uint8Array,
  o: { head: boolean; keep: boolean; date: string },
): Uint8Array {
  let text = `HTTP/1.1 ${res.status} ${STATUS_TEXT[res.status] ?? (statusText || "Unknown")}\r\n`;
  let dated = false;
  for (const [k, v] of res.headers) {
    if (k === "date") dated = true;
    if (!SKIP_RESPONSE_HEADERS.has(k)) text += `${k}: ${v}\r\n`;
  }
  if (!dated) text += `date: ${o.date}\r\n`;
  if (res.status !== 204 && res.status !== 304) text += `content-length: ${body.length}\r\n`;
  if (!o.keep) text += "connection: close\r\n";
  text += "\r\n";
  const headBytes = encoder.encode(text);
  const out = new Uint8Array(headBytes.length + (o.head ? 0 : body.length));
  out.set(headBytes, 0);
  if (!o.head) out.set(body, headBytes.length);
  return out;
}

/** One client connection: requests in sequence (pipelined ones wait their turn). */
export class Connection {
  done: Promise<void> = Promise.resolve();
  #conn: Deno.TcpConn;
  #server: ConnectionHost;
  #handler: Http1Handler;
  #readBuf = new Uint8Array(4096);
  #buf = new Uint8Array(0);
  #start = 0;
  #end = 0;
  #filling?: Promise<boolean>;
  #closed = false;
  #idle = true;
  /** performance.now() time after which the connection is closed (a head or a body late); Infinity: none. */
  #deadline = Infinity;
  /** The body being read (its deadline holds only until it is complete). */
  #body?: BodyReader;
  /** A request being answered whose client is not watched yet, and since when. */
  #unwatched?: { ac: AbortController; since: number };

  constructor(conn: Deno.TcpConn, server: ConnectionHost, handler: Http1Handler) {
    this.#conn = conn;
    this.#server = server;
    this.#handler = handler;
  }

  get #limits(): Http1Limits {
    return this.#server.limits;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#conn);
  }

  closeIfIdle(): void {
    if (this.#idle) this.close();
  }

  /**
   * Called every SWEEP_MS: closes the connection when its head or body is late, and starts watching for
   * the client leaving once a request has been answered for longer than one sweep (most answers take far
   * less, and a pending read per request costs more than it is worth for them).
   */
  sweep(now: number): void {
    if (now > this.#deadline && (!this.#body || !this.#body.complete)) {
      this.#server.stats.timedOut++;
      this.close();
      return;
    }
    const u = this.#unwatched;
    if (u && now - u.since >= SWEEP_MS) {
      this.#unwatched = undefined;
      this.#watchClient(u.ac);
    }
  }

  async run(): Promise<void> {
    try {
      let first = true;
      while (!this.#closed) {
        this.#idle = true;
        if (this.#server.closing) break;
        const head = await this.#readHead(first ? this.#limits.headTimeoutMs : this.#limits.idleTimeoutMs);
        if (!head) break;
        this.#idle = false;
        first = false;
        if (!await this.#serve(head)) break;
      }
    } catch {
      // A write to a client that left: nothing to answer.
    } finally {
      this.close();
    }
  }

  /** One read appended to the buffer; false at EOF or when the connection was closed. */
  #fill(): Promise<boolean> {
    return this.#filling ??= this.#read().finally(() => this.#filling = undefined);
  }

  async #read(): Promise<boolean> {
    let n: number | null;
    try {
      n = await this.#conn.read(this.#readBuf);
    } catch {
      n = null;
    }
    if (n === null) return false;
    this.#append(this.#readBuf.subarray(0, n));
    return true;
  }

  #append(bytes: Uint8Array): void {
    if (this.#end + bytes.length > this.#buf.length) {
      const live = this.#end - this.#start;
      const size = Math.max(live + bytes.length, Math.min(2 * this.#buf.length, 1 << 20), 1024);
      if (size <= this.#buf.length) this.#buf.copyWithin(0, this.#start, this.#end);
      else {
        const next = new Uint8Array(size);
        next.set(this.#buf.subarray(this.#start, this.#end), 0);
        this.#buf = next;
      }
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(bytes, this.#end);
    this.#end += bytes.length;
  }

  get #buffered(): number {
    return this.#end - this.#start;
  }

  /** Takes up to `max` buffered bytes (a copy). */
  #take(max: number): Uint8Array {
    const n = Math.min(max, this.#buffered);
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return out;
  }

  /** The next request head; undefined when the client left, timed out, or sent garbage (answered). */
  async #readHead(waitMs: number): Promise<RequestHead | undefined> {
    this.#deadline = performance.now() + (this.#buffered > 0 ? this.#limits.headTimeoutMs : waitMs);
    let restarted = this.#buffered > 0;
    try {
      // Bytes of the buffered head already searched for its end, relative to #start (a fill may move the
      // buffer's contents).
      let scanned = 0;
      for (;;) {
        // A client may send empty lines between requests (RFC 9112 2.2).
        while (this.#buffered >= 2 && this.#buf[this.#start] === 13 && this.#buf[this.#start + 1] === 10) {
          this.#start += 2;
          scanned = 0;
        }
        const end = headEnd(this.#buf, this.#start, this.#start + scanned, this.#end);
        if (end >= 0) {
          const text = latin1.decode(this.#buf.subarray(this.#start, end));
          this.#start = end;
          if (this.#start === this.#end) this.#start = this.#end = 0;
          const parsed = parseHead(text);
          if (parsed.ok) return parsed.head;
          await this.#writeError(parsed.status, parsed.reason);
          return undefined;
        }
        if (this.#buffered > this.#limits.maxHeadBytes) {
          await this.#writeError(431, "request head too large");
          return undefined;
        }
        scanned = Math.max(0, this.#buffered - 3);
        if (!await this.#fill()) return undefined;
        if (!restarted) {
          // The first byte of a kept-alive connection's next request: the whole head must follow in time.
          restarted = true;
          this.#deadline = performance.now() + this.#limits.headTimeoutMs;
        }
      }
    } finally {
      this.#deadline = Infinity;
    }
  }

  async #serve(head: RequestHead): Promise<boolean> {
    const url = head.target.startsWith("/")
      ? `http://nmi${head.target}`
      : /^https?:\/\/[^/?#]+/i.test(head.target)
      ? head.target
      : undefined;
    const body = new BodyReader(this, head);
    const bodyless = head.body.kind === "none";
    const carriesBody = !bodyless && head.method !== "GET" && head.method !== "HEAD";
    const ac = new AbortController();
    let req: IncomingRequest;
    try {
      if (!url) throw new TypeError("unsupported request target");
      req = {
        method: head.method,
        url,
        headers: new HeadFields(head.headers),
        body: carriesBody ? body.stream() : null,
        signal: ac.signal,
      };
    } catch {
      await this.#writeError(400, "malformed request");
      return false;
    }
    if (!bodyless) {
      this.#body = body;
      this.#deadline = performance.now() + this.#limits.bodyTimeoutMs;
    } else this.#unwatched = { ac, since: performance.now() };
    let res: Response | PlainAnswer;
    this.#server.stats.requests++;
    try {
      res = await this.#handler(req, { remoteAddr: this.#conn.remoteAddr, target: head.target });
    } catch {
      res = new Response(JSON.stringify({ error: "server_error", error_description: "internal error" }), {
        status: 500,
        headers: { "content-type": "application/json; charset=utf-8" },
      });
    } finally {
      this.#deadline = Infinity;
      this.#body = undefined;
      this.#unwatched = undefined;
    }
    // A body the handler did not read is not drained: the connection closes after the answer.
    const keep = head.keepAlive && !this.#server.closing && (bodyless || body.complete) && !this.#closed;
    await this.#write(res, head.method === "HEAD", keep);
    return keep;
  }

  /** While a bodiless request is being answered, a client that closes its connection aborts it. */
  #watchClient(ac: AbortController): void {
    if (this.#buffered > this.#limits.maxHeadBytes) return;
    this.#fill().then((more) => {
      if (!more && !this.#idle) ac.abort(new DOMException("client closed the connection", "AbortError"));
    });
  }

  async #write(res: Response | PlainAnswer, head: boolean, keep: boolean): Promise<void> {
    const date = dateHeader();
    if (res instanceof Response) {
      const body = res.body ? new Uint8Array(await res.arrayBuffer()) : new Uint8Array(0);
      return await this.writeAll(wireBytes(res, res.statusText, body, { head, keep, date }));
    }
    if (head || !keep) return await this.writeAll(wireBytes(res, "", res.body, { head, keep, date }));
    // A shared answer (a cached token's, one object per second) is framed once per second, not per request.
    const hit = framed.get(res);
    if (hit?.date === date) return await this.writeAll(hit.bytes);
    const bytes = wireBytes(res, "", res.body, { head, keep, date });
    framed.set(res, { date, bytes });
    await this.writeAll(bytes);
  }

  async #writeError(status: number, reason: string): Promise<void> {
    const body = JSON.stringify({ error: "invalid_request", error_description: reason });
    const res = new Response(body, {
      status,
      headers: { "content-type": "application/json; charset=utf-8" },
    });
    await this.#write(res, false, false).catch(() => {});
  }

  async writeAll(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) at += await this.#conn.write(bytes.subarray(at));
  }

  /** Body access for BodyReader: buffered bytes first, then reads. */
  async nextBytes(max: number): Promise<Uint8Array | undefined> {
    if (this.#buffered === 0 && !await this.#fill()) return undefined;
    return this.#take(max);
  }

  /** The next CRLF-terminated line (chunked framing), at most `max` bytes; undefined when it never comes. */
  async nextLine(max: number): Promise<string | undefined> {
    for (;;) {
      for (let i = this.#start + 1; i < this.#end; i++) {
        if (this.#buf[i] === 10 && this.#buf[i - 1] === 13) {
          const line = latin1.decode(this.#buf.subarray(this.#start, i - 1));
          this.#start = i + 1;
          return line;
        }
      }
      if (this.#buffered > max) return undefined;
      if (!await this.#fill()) return undefined;
    }
  }
}
