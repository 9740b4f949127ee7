// The Kubernetes protobuf wire format, read by hand: a reader for the protobuf primitives, the "k8s\0" +
// runtime.Unknown envelope every protobuf answer comes in, and the apimachinery messages every kind shares
// (ObjectMeta, ListMeta, Time, Status). Field numbers are those of the published generated.proto files of
// k8s.io/apimachinery v0.34 (meta/v1 and runtime); they are part of the API's compatibility promise.
//
// Why by hand: the caches need a few dozen fields of objects that carry hundreds, and a reader that skips
// whole sub-messages by their length never touches the rest (containers, volumes, managedFields), which is
// where the time and memory of a full decode go.

import type { KubeStatus, ListMeta, ObjectMeta, OwnerReference } from "./types.ts";

export class ProtoDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtoDecodeError";
  }
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

const utf8 = new TextDecoder("utf-8", { fatal: false });

/** A cursor over one protobuf message (or a slice of one). */
export class ProtoReader {
  pos: number;
  constructor(readonly buf: Uint8Array, pos = 0, readonly end = buf.length) {
    this.pos = pos;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** Varints up to 2^53 (every int64 Kubernetes sends fits: seconds, generations, grace periods). */
  varint(): number {
    const b = this.buf;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoDecodeError("truncated varint");
      const byte = b[this.pos++];
      result += (byte & 0x7f) * mul;
      if (byte < 0x80) return result;
      mul *= 128;
    }
    throw new ProtoDecodeError("varint longer than 10 bytes");
  }

  /** A signed int32/int64 sent as a plain varint (two's complement for negatives). */
  int(): number {
    const v = this.varint();
    // Negative int32/int64 values come as 10-byte varints near 2^64.
    return v >= 2 ** 63 ? v - 2 ** 64 : v;
  }

  /** The end offset of a length-delimited field; the cursor is left at its first byte. */
  lenEnd(): number {
    const len = this.varint();
    const end = this.pos + len;
    if (end > this.end) throw new ProtoDecodeError("length-delimited field runs past its message");
    return end;
  }

  string(): string {
    const end = this.lenEnd();
    const s = decodeString(this.buf, this.pos, end);
    this.pos = end;
    return s;
  }

  bytes(): Uint8Array {
    const end = this.lenEnd();
    const out = this.buf.subarray(this.pos, end);
    this.pos = end;
    return out;
  }

  /** A sub-reader over the next length-delimited field. */
  message(): ProtoReader {
    const end = this.lenEnd();
    const sub = new ProtoReader(this.buf, this.pos, end);
    this.pos = end;
    return sub;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        this.pos += 8;
        break;
      case WIRE_LEN:
        this.pos = this.lenEnd();
        return;
      case WIRE_I32:
        this.pos += 4;
        break;
      default:
        throw new ProtoDecodeError(`unsupported wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new ProtoDecodeError("fixed-size field runs past its message");
  }
}

/** Short ASCII strings (names, uids, resourceVersions) are most of what we read: no decoder call for them. */
function decodeString(b: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n === 0) return "";
  if (n <= 64) {
    let ascii = true;
    for (let i = start; i < end; i++) {
      if (b[i] >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, b.subarray(start, end) as unknown as number[]);
  }
  return utf8.decode(b.subarray(start, end));
}

/** The 4 bytes before every protobuf-encoded Kubernetes object: "k8s" and a zero byte. */
export const PROTO_MAGIC = new Uint8Array([0x6b, 0x38, 0x73, 0x00]);

export interface Unknown {
  apiVersion: string;
  kind: string;
  raw: Uint8Array;
}

/** Unwraps "k8s\0" + runtime.Unknown{typeMeta{apiVersion, kind}, raw, contentEncoding, contentType}. */
export function unwrapEnvelope(buf: Uint8Array): Unknown {
  for (let i = 0; i < 4; i++) {
    if (buf[i] !== PROTO_MAGIC[i]) {
      throw new ProtoDecodeError("not a Kubernetes protobuf object (no k8s magic)");
    }
  }
  const r = new ProtoReader(buf, 4);
  const out: Unknown = { apiVersion: "", kind: "", raw: new Uint8Array(0) };
  while (!r.done) {
    const tag = r.varint();
    switch (tag) {
      case (1 << 3) | WIRE_LEN: {
        const tm = r.message();
        while (!tm.done) {
          const t = tm.varint();
          if (t === ((1 << 3) | WIRE_LEN)) out.apiVersion = tm.string();
          else if (t === ((2 << 3) | WIRE_LEN)) out.kind = tm.string();
          else tm.skip(t & 7);
        }
        break;
      }
      case (2 << 3) | WIRE_LEN:
        out.raw = r.bytes();
        break;
      case (3 << 3) | WIRE_LEN: {
        const enc = r.string();
        if (enc !== "") throw new ProtoDecodeError(`unsupported content encoding ${enc}`);
        break;
      }
      default:
        r.skip(tag & 7);
    }
  }
  return out;
}

/** Calls `field(fieldNumber, wireType)` for each field; the callback must consume or skip it. */
export function eachField(r: ProtoReader, field: (n: number, wire: number) => void): void {
  while (!r.done) {
    const tag = r.varint();
    field(tag >>> 3, tag & 7);
  }
}

/** meta/v1 Time as the JSON API writes it: RFC 3339, whole seconds, UTC. */
export function readTime(r: ProtoReader): string {
  return formatTime(r, false);
}

/** meta/v1 MicroTime as the JSON API writes it: RFC 3339 with 6 fractional digits, UTC. */
export function readMicroTime(r: ProtoReader): string {
  return formatTime(r, true);
}

function formatTime(outer: ProtoReader, micro: boolean): string {
  const r = outer.message();
  let seconds = 0;
  let nanos = 0;
  eachField(r, (n, w) => {
    if (n === 1 && w === WIRE_VARINT) seconds = r.int();
    else if (n === 2 && w === WIRE_VARINT) nanos = r.int();
    else r.skip(w);
  });
  const iso = new Date(seconds * 1000).toISOString(); // 2026-11-29T14:33:56.000Z
  if (!micro) return `${iso.slice(0, 19)}Z`;
  return `${iso.slice(0, 19)}.${String(Math.floor(nanos / 1000)).padStart(6, "0")}Z`;
}

function readStringMapEntry(r: ProtoReader, into: Record<string, string>): void {
  const e = r.message();
  let k = "";
  let v = "";
  eachField(e, (n, w) => {
    if (n === 1 && w === WIRE_LEN) k = e.string();
    else if (n === 2 && w === WIRE_LEN) v = e.string();
    else e.skip(w);
  });
  into[k] = v;
}

/** map<string,string> entry appended to `map` (created on first entry). */
export function readMapEntry(
  r: ProtoReader,
  map: Record<string, string> | undefined,
): Record<string, string> {
  const m = map ?? {};
  readStringMapEntry(r, m);
  return m;
}

function readOwnerReference(outer: ProtoReader): OwnerReference {
  const r = outer.message();
  const o: OwnerReference = { apiVersion: "", kind: "", name: "", uid: "" };
  eachField(r, (n, w) => {
    if (w === WIRE_LEN) {
      if (n === 5) o.apiVersion = r.string();
      else if (n === 1) o.kind = r.string();
      else if (n === 3) o.name = r.string();
      else if (n === 4) o.uid = r.string();
      else r.skip(w);
    } else if (w === WIRE_VARINT && n === 6) o.controller = r.varint() !== 0;
    else if (w === WIRE_VARINT && n === 7) o.blockOwnerDeletion = r.varint() !== 0;
    else r.skip(w);
  });
  return o;
}

/**
 * ObjectMeta without selfLink and managedFields (skipped unread). Empty strings and zero generations are
 * left out, as the JSON API's `omitempty` leaves them out; pointer fields (deletionTimestamp,
 * deletionGracePeriodSeconds) are kept whenever they are on the wire, zero included.
 */
export function readObjectMeta(outer: ProtoReader): ObjectMeta {
  const r = outer.message();
  const m: ObjectMeta = {};
  eachField(r, (n, w) => {
    if (w === WIRE_LEN) {
      switch (n) {
        case 1:
          setString(m, "name", r.string());
          return;
        case 2:
          setString(m, "generateName", r.string());
          return;
        case 3:
          setString(m, "namespace", r.string());
          return;
        case 5:
          setString(m, "uid", r.string());
          return;
        case 6:
          setString(m, "resourceVersion", r.string());
          return;
        case 8:
          m.creationTimestamp = readTime(r);
          return;
        case 9:
          m.deletionTimestamp = readTime(r);
          return;
        case 11:
          m.labels = readMapEntry(r, m.labels);
          return;
        case 12:
          m.annotations = readMapEntry(r, m.annotations);
          return;
        case 13:
          (m.ownerReferences ??= []).push(readOwnerReference(r));
          return;
        case 14:
          (m.finalizers ??= []).push(r.string());
          return;
      }
    } else if (w === WIRE_VARINT) {
      if (n === 7) {
        const g = r.int();
        if (g !== 0) m.generation = g;
        return;
      }
      if (n === 10) {
        m.deletionGracePeriodSeconds = r.int();
        return;
      }
    }
    r.skip(w);
  });
  return m;
}

export function setString<O extends object, K extends keyof O>(o: O, k: K, v: string): void {
  if (v !== "") (o as Record<K, string>)[k] = v;
}

export function readListMeta(outer: ProtoReader): ListMeta {
  const r = outer.message();
  const m: ListMeta = {};
  eachField(r, (n, w) => {
    if (n === 2 && w === WIRE_LEN) setString(m, "resourceVersion", r.string());
    else if (n === 3 && w === WIRE_LEN) setString(m, "continue", r.string());
    else if (n === 4 && w === WIRE_VARINT) m.remainingItemCount = r.int();
    else r.skip(w);
  });
  return m;
}

/** meta/v1 Status: what the apiserver answers errors (and watch ERROR events) with. */
export function readStatus(buf: Uint8Array): KubeStatus {
  const r = new ProtoReader(buf);
  const s: KubeStatus = { apiVersion: "v1", kind: "Status" };
  eachField(r, (n, w) => {
    if (w === WIRE_LEN && n === 2) s.status = r.string() as KubeStatus["status"];
    else if (w === WIRE_LEN && n === 3) s.message = r.string();
    else if (w === WIRE_LEN && n === 4) s.reason = r.string();
    else if (w === WIRE_VARINT && n === 6) s.code = r.int();
    else if (w === WIRE_LEN && n === 5) s.details = readStatusDetails(r);
    else r.skip(w);
  });
  return s;
}

function readStatusDetails(outer: ProtoReader): NonNullable<KubeStatus["details"]> {
  const r = outer.message();
  const d: NonNullable<KubeStatus["details"]> = {};
  eachField(r, (n, w) => {
    if (w === WIRE_LEN && n === 1) setString(d, "name", r.string());
    else if (w === WIRE_LEN && n === 2) setString(d, "group", r.string());
    else if (w === WIRE_LEN && n === 3) setString(d, "kind", r.string());
    else if (w === WIRE_LEN && n === 6) setString(d, "uid", r.string());
    else if (w === WIRE_VARINT && n === 5) d.retryAfterSeconds = r.int();
    else r.skip(w);
  });
  return d;
}

export const Wire = { VARINT: WIRE_VARINT, LEN: WIRE_LEN } as const;
