// The unread bytes of a stream of chunks in one reused buffer, for the decoders that cut a stream into
// length-prefixed frames (protobuf watch and list streams, HTTP/2 frames).

/**
 * Unconsumed bytes of a stream in one reused buffer: each chunk is copied in behind what is left (the
 * reader reuses its own buffer, so chunks must be copied anyway), the rest moves to the front when the end
 * is reached, and the buffer grows only for a message larger than it. A fresh array per chunk cost more in
 * allocation and garbage collection than decoding the messages in it. Views of `buf` are valid until the
 * next append.
 */
export class ByteQueue {
  buf: Uint8Array;
  /** buf[off, len) is unconsumed. */
  off = 0;
  len = 0;
  /** Stream offset of buf[0]. */
  base = 0;

  readonly #initialSize: number;

  constructor(initialSize = 64 * 1024) {
    this.#initialSize = initialSize;
    this.buf = new Uint8Array(initialSize);
  }

  /**
   * Everything consumed: the queue is empty again, and a buffer that grew for one large message goes back
   * to its first size (a watch lives for minutes; one 600 KiB pod must not keep 1 MiB per watch that long).
   */
  drain(): void {
    this.base += this.len;
    this.off = 0;
    this.len = 0;
    if (this.buf.length > this.#initialSize) this.buf = new Uint8Array(this.#initialSize);
  }

  get avail(): number {
    return this.len - this.off;
  }

  append(chunk: Uint8Array): void {
    if (this.len + chunk.length > this.buf.length) {
      const keep = this.len - this.off;
      if (keep + chunk.length > this.buf.length) {
        const bigger = new Uint8Array(Math.max(2 * this.buf.length, keep + chunk.length));
        bigger.set(this.buf.subarray(this.off, this.len), 0);
        this.buf = bigger;
      } else this.buf.copyWithin(0, this.off, this.len);
      this.base += this.off;
      this.off = 0;
      this.len = keep;
    }
    this.buf.set(chunk, this.len);
    this.len += chunk.length;
  }

  /**
   * The queue holds the start of a length-prefixed frame: completes it from the front of `chunk`, copying
   * only the bytes it lacks, so the rest of the chunk can be read in place. `bodyLength` reads the length
   * from a whole header at `off`. Returns how much of `chunk` was taken and whether the frame, now at
   * buf[off, len), is whole.
   */
  completeFrame(
    chunk: Uint8Array,
    headerLength: number,
    bodyLength: (buf: Uint8Array, off: number) => number,
  ): { taken: number; whole: boolean } {
    const header = Math.min(Math.max(0, headerLength - this.avail), chunk.length);
    if (header > 0) this.append(chunk.subarray(0, header));
    if (this.avail < headerLength) return { taken: header, whole: false };
    const missing = headerLength + bodyLength(this.buf, this.off) - this.avail;
    const more = Math.min(missing, chunk.length - header);
    this.append(chunk.subarray(header, header + more));
    return { taken: header + more, whole: more === missing };
  }
}
