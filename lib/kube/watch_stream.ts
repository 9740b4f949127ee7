// Decodes the body of a Kubernetes watch response: one JSON object per line, each
// `{"type": ..., "object": ...}`. Network chunks split lines (and UTF-8 characters) anywhere, so bytes
// are buffered until a full line is seen.

import type { KubeObject, KubeStatus } from "./types.ts";
import { ChunkReader } from "./chunk_reader.ts";

export type WatchEvent<T extends KubeObject> =
  | { type: "ADDED" | "MODIFIED" | "DELETED"; object: T }
  | { type: "BOOKMARK"; object: KubeObject }
  | { type: "ERROR"; object: KubeStatus };

const TYPES = new Set<string>(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]);

export class WatchDecodeError extends Error {
  constructor(message: string, readonly line: string) {
    super(message);
    this.name = "WatchDecodeError";
  }
}

/** Parses one line of a watch stream; throws WatchDecodeError on anything that is not a watch event. */
export function parseWatchLine<T extends KubeObject>(line: string): WatchEvent<T> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    throw new WatchDecodeError(`malformed watch event: ${(e as Error).message}`, line);
  }
  if (typeof value !== "object" || value === null) {
    throw new WatchDecodeError("watch event is not an object", line);
  }
  const { type, object } = value as { type?: unknown; object?: unknown };
  if (typeof type !== "string" || !TYPES.has(type) || typeof object !== "object" || object === null) {
    throw new WatchDecodeError(`unexpected watch event type ${JSON.stringify(type)}`, line);
  }
  return value as WatchEvent<T>;
}

/**
 * Yields watch events from a response body as they arrive; a trailing partial line at EOF is an error.
 * When `signal` aborts, the body is cancelled and the generator ends without an error.
 */
export async function* decodeWatchEvents<T extends KubeObject>(
  body: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<WatchEvent<T>> {
  for await (const batch of decodeWatchBatches<T>(body, signal)) yield* batch;
}

/** decodeWatchEvents, the events of each network chunk together (one await per chunk, not per event). */
export async function* decodeWatchBatches<T extends KubeObject>(
  body: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<WatchEvent<T>[]> {
  const decoder = new TextDecoder();
  const reader = new ChunkReader(body);
  // Aborting the fetch alone does not always wake a pending read of a long-lived body (seen with Deno 2.9
  // after a large burst of events): cancelling the reader ends the read at the stream level, always.
  const onAbort = () => reader.cancel(signal?.reason).catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) onAbort();
  let buffer = "";
  try {
    while (true) {
      const value = await reader.read();
      if (value === undefined) break;
      buffer += decoder.decode(value, { stream: true });
      // Index walking rather than re-slicing keeps a chunk holding many events linear in its size.
      let start = 0;
      let nl: number;
      const batch: WatchEvent<T>[] = [];
      while ((nl = buffer.indexOf("\n", start)) >= 0) {
        const line = buffer.slice(start, nl).trim();
        start = nl + 1;
        if (line === "") continue;
        let ev: WatchEvent<T>;
        try {
          ev = parseWatchLine<T>(line);
        } catch (e) {
          // The events before the bad line are still delivered, in order, before the error.
          if (batch.length > 0) yield batch;
          throw e;
        }
        batch.push(ev);
      }
      buffer = buffer.slice(start);
      if (batch.length > 0) yield batch;
    }
    if (signal?.aborted) return;
    buffer += decoder.decode();
    const rest = buffer.trim();
    // The apiserver ends every event with a newline; a leftover means the stream was cut mid-event.
    if (rest !== "") throw new WatchDecodeError("watch stream ended inside an event", rest);
  } finally {
    signal?.removeEventListener("abort", onAbort);
    // Cancelling (not just releasing) closes the underlying connection when the consumer stops early.
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
