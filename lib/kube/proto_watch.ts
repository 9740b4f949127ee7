// Decodes a protobuf watch stream (`application/vnd.kubernetes.protobuf;stream=watch`): frames of a 4-byte
// big-endian length and a meta/v1 WatchEvent{type = 1, object = 2 (RawExtension{raw = 1})}, whose raw bytes
// are the object in the "k8s\0" envelope. Frames arrive split across network chunks anywhere, so bytes are
// kept until a whole frame is there.

import type { ProtoObjectDecoder } from "./builtin_proto.ts";
import { ChunkReader } from "./chunk_reader.ts";
import { ProtoDecodeError, ProtoReader, readStatus, unwrapEnvelope } from "./protobuf.ts";
import type { KubeObject } from "./types.ts";
import type { WatchEvent } from "./watch_stream.ts";

const TYPES = new Set<string>(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]);
/** Far above any object the apiserver stores (etcd's default request limit is 1.5 MiB). */
const MAX_FRAME = 64 * 1024 * 1024;

/** One frame's WatchEvent: the object decoded by `decode`, or a Status for ERROR events. */
export function parseProtoWatchEvent<T extends KubeObject>(
  frame: Uint8Array,
  decode: ProtoObjectDecoder,
): WatchEvent<T> {
  const r = new ProtoReader(frame);
  let type = "";
  let raw: Uint8Array | undefined;
  while (!r.done) {
    const t = r.varint();
    if (t === 10 /* 1:len type */) type = r.string();
    else if (t === 18 /* 2:len object (RawExtension) */) {
      const end = r.lenEnd();
      while (r.pos < end) {
        const u = r.varint();
        if (u === 10 /* 1:len raw */) raw = r.bytes();
        else r.skip(u);
      }
      r.closed(end);
    } else r.skip(t);
  }
  if (!TYPES.has(type)) throw new ProtoDecodeError(`unexpected watch event type ${JSON.stringify(type)}`);
  if (!raw) throw new ProtoDecodeError(`watch event ${type} without an object`);
  const inner = unwrapEnvelope(raw);
  if (type === "ERROR") return { type: "ERROR", object: readStatus(inner.raw) };
  const object = decode(new ProtoReader(inner.raw));
  if (type === "BOOKMARK") return { type, object };
  return { type: type as "ADDED" | "MODIFIED" | "DELETED", object: object as T };
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
  let buf: Uint8Array = new Uint8Array(0);
  try {
    while (true) {
      const value = await reader.read();
      if (value === undefined) break;
      // `value` is reused by the next read: the unconsumed tail is copied below.
      buf = buf.length === 0 ? value : concat(buf, value);
      let off = 0;
      const batch: WatchEvent<T>[] = [];
      while (buf.length - off >= 4) {
        const len = ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
        if (len > MAX_FRAME) throw new ProtoDecodeError(`watch frame of ${len} bytes`);
        if (buf.length - off - 4 < len) break;
        let ev: WatchEvent<T>;
        try {
          ev = parseProtoWatchEvent<T>(buf.subarray(off + 4, off + 4 + len), decode);
        } catch (e) {
          // The events before the bad frame are still delivered, in order, before the error.
          if (batch.length > 0) yield batch;
          throw e;
        }
        batch.push(ev);
        off += 4 + len;
      }
      // Keep only the unconsumed tail, as a copy (the chunk's buffer is reused by the next read).
      buf = off === buf.length ? new Uint8Array(0) : buf.slice(off);
      if (batch.length > 0) yield batch;
    }
    if (signal?.aborted) return;
    if (buf.length !== 0) throw new ProtoDecodeError("watch stream ended inside a frame");
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

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
