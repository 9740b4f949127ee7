// A request body as a stream pulled from its connection, fixed length or chunked (RFC 9112 7.1), never read
// ahead: the handler's reads drive the socket reads, so a body nobody reads is never buffered.

import type { RequestHead } from "./http1_head.ts";

/** What a body reads from: the connection's buffered bytes first, then socket reads. */
interface ByteSource {
  /** Up to `max` bytes; undefined when the connection ended. */
  nextBytes(max: number): Promise<Uint8Array | undefined>;
  /** The next CRLF-terminated line, at most `max` bytes; undefined when it never comes. */
  nextLine(max: number): Promise<string | undefined>;
  /** Writes raw bytes to the client (the interim 100 Continue). */
  writeAll(bytes: Uint8Array): Promise<void>;
}

const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");

/** A request body as a stream pulled from the connection (fixed length or chunked), never read ahead. */
export class BodyReader {
  complete: boolean;
  #conn: ByteSource;
  #head: RequestHead;
  #left: number;
  #chunked: boolean;
  #chunkDone = false;
  /** The client sent `Expect: 100-continue` and waits for a go-ahead before the body (curl does, over 1 KiB). */
  #continue: boolean;

  constructor(conn: ByteSource, head: RequestHead) {
    this.#conn = conn;
    this.#head = head;
    this.#chunked = head.body.kind === "chunked";
    this.#left = head.body.kind === "length" ? head.body.length : 0;
    this.complete = head.body.kind === "none";
    this.#continue = head.version === "HTTP/1.1" &&
      head.headers.some(([k, v]) => k.toLowerCase() === "expect" && v.toLowerCase() === "100-continue");
  }

  stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: async (controller) => {
        if (this.#continue) {
          // Only once the handler reads the body: a refused request never invites it.
          this.#continue = false;
          await this.#conn.writeAll(CONTINUE);
        }
        const bytes = await this.#next();
        if (bytes === null) {
          this.complete = true;
          controller.close();
        } else if (bytes === undefined) {
          controller.error(new Error(`request body of ${this.#head.method} ended early or is malformed`));
        } else {
          controller.enqueue(bytes as Uint8Array<ArrayBuffer>);
        }
      },
    }, { highWaterMark: 0 });
  }

  /** The next piece; null at the end of the body; undefined when the body is cut short or malformed. */
  async #next(): Promise<Uint8Array | null | undefined> {
    if (!this.#chunked) {
      if (this.#left === 0) return null;
      const bytes = await this.#conn.nextBytes(this.#left);
      if (bytes) this.#left -= bytes.length;
      return bytes;
    }
    if (this.#chunkDone) return null;
    if (this.#left === 0) {
      const line = await this.#conn.nextLine(4096);
      if (line === undefined) return undefined;
      const m = /^([0-9a-fA-F]{1,8})(;.*)?$/.exec(line);
      if (!m) return undefined;
      this.#left = parseInt(m[1], 16);
      if (this.#left === 0) return await this.#trailers();
    }
    const bytes = await this.#conn.nextBytes(this.#left);
    if (!bytes) return undefined;
    this.#left -= bytes.length;
    if (this.#left === 0 && await this.#conn.nextLine(2) !== "") return undefined;
    return bytes;
  }

  async #trailers(): Promise<null | undefined> {
    for (let size = 0; size < 8192;) {
      const line = await this.#conn.nextLine(8192);
      if (line === undefined) return undefined;
      if (line === "") {
        this.#chunkDone = true;
        return null;
      }
      size += line.length + 2;
    }
    return undefined;
  }
}
