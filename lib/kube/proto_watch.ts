// Decodes a protobuf watch stream (`application/vnd.kubernetes.protobuf;stream=watch`): frames of a 4-byte
// big-endian length and a meta/v1 WatchEvent{type = 1, object = 2 (RawExtension{raw = 1})}, whose raw bytes
// are the object in the "k8s\0" envelope. Frames arrive split across network chunks anywhere, so bytes are
// kept until a whole frame is there.

import type { ProtoObjectDecoder } from "./builtin_proto.ts";
import { ByteQueue } from "./byte_queue.ts";
import { ChunkReader } from "./chunk_reader.ts";
import { envelopeReader, ProtoDecodeError, ProtoReader, readStatus } from "./protobuf.ts";
import type { KubeObject } from "./types.ts";
import type { WatchEvent } from "./watch_stream.ts";

type EventType = WatchEvent<KubeObject>["type"];
const TYPES: EventType[] = ["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"];
const TYPE_BYTES = TYPES.map((t) => new TextEncoder().encode(t));
/** Far above any object the apiserver stores (etcd's default request limit is 1.5 MiB). */
const MAX_FRAME = 64 * 1024 * 1024;

/** The event type in buf[start, end), compared byte by byte: no string is made for it. */
function eventType(buf: Uint8Array, start: number, end: number): EventType {
  next: for (let k = 0; k < TYPES.length; k++) {
    const want = TYPE_BYTES[k];
    if (want.length !== end - start) continue;
    for (let i = 0; i < want.length; i++) if (buf[start + i] !== want[i]) continue next;
    return TYPES[k];
  }
  const got = new TextDecoder().decode(buf.subarray(start, end));
  throw new ProtoDecodeError(`unexpected watch event type ${JSON.stringify(got)}`);
}

/** The WatchEvent of the frame at buf[start, end): the object decoded by `decode`, a Status for ERROR. */
function parseProtoWatchEvent<T extends KubeObject>(
  buf: Uint8Array,
  start: number,
  end: number,
  decode: ProtoObjectDecoder,
): WatchEvent<T> {
  const r = new ProtoReader(buf, start, end);
  let type: EventType | undefined;
  let raw: ProtoReader | undefined;
  while (!r.done) {
    const t = r.varint();
    if (t === 10 /* 1:len type */) {
      const typeEnd = r.lenEnd();
      type = eventType(buf, r.pos, typeEnd);
      r.pos = typeEnd;
    } else if (t === 18 /* 2:len object (RawExtension) */) {
      const objEnd = r.lenEnd();
      while (r.pos < objEnd) {
        const u = r.varint();
        if (u === 10 /* 1:len raw */) raw = r.message();
        else r.skip(u);
      }
      r.closed(objEnd);
    } else r.skip(t);
  }
  if (type === undefined) throw new ProtoDecodeError('unexpected watch event type ""');
  if (!raw) throw new ProtoDecodeError(`watch event ${type} without an object`);
  const inner = envelopeReader(buf, raw.pos, raw.end);
  if (type === "ERROR") return { type: "ERROR", object: readStatus(buf.subarray(inner.pos, inner.end)) };
  const object = decode(inner);
  if (type === "BOOKMARK") return { type, object };
  return { type, object: object as T };
}

/** The length prefix of the frame at `off` (big-endian uint32), refused when absurd. */
function frameLength(buf: Uint8Array, off: number): number {
  const len = ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
  if (len > MAX_FRAME) throw new ProtoDecodeError(`watch frame of ${len} bytes`);
  return len;
}

/**
 * Yields the watch events of each network chunk together (one await per chunk rather than per event); a
 * partial frame at EOF is an error. When `signal` aborts, the body is cancelled and the generator ends
 * without an error (as decodeWatchEvents does).
 */
export async function* decodeProtoWatchBatches<T extends KubeObject>(
  body: ReadableStream<Uint8Array>,
  decode: ProtoObjectDecoder,
  signal?: AbortSignal,
): AsyncGenerator<WatchEvent<T>[]> {
  const reader = new ChunkReader(body);
  const onAbort = () => reader.cancel(signal?.reason).catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) onAbort();
  // Holds only a frame split across chunks: the next chunk completes it with the bytes it lacks, and the
  // rest of that chunk is read in place, so a stream whose frames straddle every chunk boundary (large
  // chunks rarely end on one) is not copied as a whole.
  const q = new ByteQueue(16 * 1024);
  const parse = (buf: Uint8Array, off: number, len: number): WatchEvent<T> =>
    parseProtoWatchEvent<T>(buf, off + 4, off + 4 + len, decode);
  try {
    while (true) {
      const value = await reader.read();
      if (value === undefined) break;
      const batch: WatchEvent<T>[] = [];
      let off = 0;
      const end = value.length;
      if (q.avail > 0) {
        const { taken, whole } = q.completeFrame(value, 4, frameLength);
        off = taken;
        if (whole) {
          batch.push(parse(q.buf, q.off, q.avail - 4));
          q.drain();
        }
      }
      while (end - off >= 4) {
        const len = frameLength(value, off);
        if (end - off - 4 < len) break;
        let ev: WatchEvent<T>;
        try {
          ev = parse(value, off, len);
        } catch (e) {
          // The events before the bad frame are still delivered, in order, before the error.
          if (batch.length > 0) yield batch;
          throw e;
        }
        batch.push(ev);
        off += 4 + len;
      }
      // The chunk's buffer is reused by the next read: keep a copy of its unconsumed tail.
      if (off < end) q.append(value.subarray(off));
      if (batch.length > 0) yield batch;
    }
    if (signal?.aborted) return;
    if (q.avail !== 0) throw new ProtoDecodeError("watch stream ended inside a frame");
  } finally {
    signal?.removeEventListener("abort", onAbort);
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/** decodeProtoWatchBatches, one event at a time. */
export async function* decodeProtoWatchEvents<T extends KubeObject>(
  body: ReadableStream<Uint8Array>,
  decode: ProtoObjectDecoder,
  signal?: AbortSignal,
): AsyncGenerator<WatchEvent<T>> {
  for await (const batch of decodeProtoWatchBatches<T>(body, decode, signal)) yield* batch;
}
