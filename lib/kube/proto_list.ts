// Decodes a protobuf LIST answer ("k8s\0" + runtime.Unknown{typeMeta = 1, raw = 2: <Kind>List{metadata = 1,
// items = 2...}}) while it arrives: each item is decoded as soon as its bytes are in, so decoding overlaps
// with the apiserver encoding and sending the rest (kube-apiserver 1.33+ streams protobuf lists item by
// item). The result equals decodeList over the whole body.

import type { ProtoObjectDecoder } from "./builtin_proto.ts";
import { ByteQueue } from "./byte_queue.ts";
import { ChunkReader } from "./chunk_reader.ts";
import { PROTO_MAGIC, ProtoDecodeError, ProtoReader, readListMetaUntil } from "./protobuf.ts";
import type { KubeList, KubeObject } from "./types.ts";

/** The answer's unconsumed bytes, pulled from the body chunk by chunk. */
class Pending extends ByteQueue {
  constructor(private reader: ChunkReader) {
    super(256 * 1024);
  }

  get pos(): number {
    return this.base + this.off;
  }

  /** Appends the next chunk; false at the end of the stream. */
  async fill(): Promise<boolean> {
    const value = await this.reader.read();
    if (value === undefined) return false;
    this.append(value);
    return true;
  }

  async need(n: number): Promise<void> {
    while (this.avail < n) {
      if (!(await this.fill())) throw new ProtoDecodeError("list answer ended early");
    }
  }

  /** A varint, pulling chunks while it is incomplete (the cursor stays put until it is whole). */
  async varint(): Promise<number> {
    while (true) {
      let result = 0;
      let mul = 1;
      for (let i = this.off; i < this.len && i - this.off < 10; i++) {
        const byte = this.buf[i];
        result += (byte & 0x7f) * mul;
        if (byte < 0x80) {
          this.off = i + 1;
          return result;
        }
        mul *= 128;
      }
      if (this.avail >= 10) throw new ProtoDecodeError("varint longer than 10 bytes");
      if (!(await this.fill())) throw new ProtoDecodeError("list answer ended inside a varint");
    }
  }

  async skip(tag: number): Promise<void> {
    const wire = tag & 7;
    let n: number;
    if (wire === 0) return void (await this.varint());
    else if (wire === 2) n = await this.varint();
    else if (wire === 1) n = 8;
    else if (wire === 5) n = 4;
    else throw new ProtoDecodeError(`unsupported wire type ${wire}`);
    await this.need(n);
    this.off += n;
  }
}

export async function decodeListStream<T extends KubeObject>(
  body: ReadableStream<Uint8Array>,
  decode: ProtoObjectDecoder,
): Promise<KubeList<T>> {
  const reader = new ChunkReader(body);
  const p = new Pending(reader);
  const list: KubeList<T> = { metadata: {}, items: [] };
  try {
    await p.need(4);
    for (let i = 0; i < 4; i++) {
      if (p.buf[p.off + i] !== PROTO_MAGIC[i]) {
        throw new ProtoDecodeError("not a Kubernetes protobuf object (no k8s magic)");
      }
    }
    p.off += 4;
    // Envelope fields up to raw (2); typeMeta (1) names the list kind, which the caller already knows.
    let rawEnd = -1;
    while (rawEnd < 0) {
      if (p.avail === 0 && !(await p.fill())) throw new ProtoDecodeError("list answer without items");
      const t = await p.varint();
      if (t === 18 /* 2:len raw */) {
        const len = await p.varint();
        rawEnd = p.pos + len; // after the await: p.pos must include the length prefix
      } else await p.skip(t);
    }
    while (p.pos < rawEnd) {
      const t = await p.varint();
      if (t !== 10 /* 1:len metadata */ && t !== 18 /* 2:len items */) {
        await p.skip(t);
        continue;
      }
      const len = await p.varint();
      // Whole items only; the bytes wait in `p` until the rest has arrived.
      if (p.avail < len) await p.need(len);
      if (t === 18) {
        list.items.push(decode(new ProtoReader(p.buf, p.off, p.off + len)) as T);
      } else {
        list.metadata = readListMetaUntil(new ProtoReader(p.buf, p.off, p.off + len), p.off + len);
      }
      p.off += len;
    }
    if (p.pos !== rawEnd) throw new ProtoDecodeError("list items run past the list");
    // contentEncoding/contentType may follow; nothing in them matters for an unencoded list.
    while (await p.fill()) p.off = p.len;
    return list;
  } finally {
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
