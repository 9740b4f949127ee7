// Reads a response body chunk by chunk into one reused buffer. Deno's default reader allocates a fresh
// 64 KiB buffer for every read; a watch delivers each event as its own small read, so 100 watches of a
// busy node meant gigabytes of short-lived buffers. A BYOB ("bring your own buffer") read fills ours.
// The chunk returned is only valid until the next read: callers copy what they keep.

const SCRATCH = 64 * 1024;

export class ChunkReader {
  #byob: ReadableStreamBYOBReader | undefined;
  #plain: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #scratch = new Uint8Array(SCRATCH);

  constructor(body: ReadableStream<Uint8Array>) {
    try {
      this.#byob = body.getReader({ mode: "byob" });
    } catch {
      // Not a byte stream (a stream made in JS, as in tests): the default reader.
      this.#plain = body.getReader();
    }
  }

  /** The next chunk, or undefined at the end of the body. */
  async read(): Promise<Uint8Array | undefined> {
    if (this.#plain) {
      const { value, done } = await this.#plain.read();
      return done ? undefined : value;
    }
    const { value, done } = await this.#byob!.read(this.#scratch);
    if (done || !value) return undefined;
    // The read transferred our buffer into `value`; keep it for the next read.
    this.#scratch = new Uint8Array(value.buffer, 0, SCRATCH);
    return value;
  }

  cancel(reason?: unknown): Promise<void> {
    return (this.#byob ?? this.#plain)!.cancel(reason);
  }

  releaseLock(): void {
    (this.#byob ?? this.#plain)!.releaseLock();
  }
}
