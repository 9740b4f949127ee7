// The Kubernetes protobuf wire format, read by hand: a reader for the protobuf primitives, the "k8s\0" +
// runtime.Unknown envelope every protobuf answer comes in, and the apimachinery messages every kind shares
// (ObjectMeta, ListMeta, Time, Status). Field numbers are those of the published generated.proto files of
// k8s.io/apimachinery v0.34 (meta/v1 and runtime); they are part of the API's compatibility promise.
//
// Why by hand: the caches need a few dozen fields of objects that carry hundreds, and a reader that skips
// whole sub-messages by their length never touches the rest (containers, volumes, managedFields), which is
// where the time and memory of a full decode go.

import { isoTime } from "../time_text.ts";
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

/**
 * A cursor over a protobuf buffer. Decoders share one cursor and loop over `(field << 3) | wireType` tags
 * with a switch until their message's end offset: no sub-reader objects and no callbacks per message,
 * which keeps the per-event cost of a watch low even before the JIT has warmed up.
 */
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
    if (this.pos < this.end && b[this.pos] < 0x80) return b[this.pos++];
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

  /** A signed int32/int64 sent as a plain varint (two's complement: a negative one takes 10 bytes). */
  int(): number {
    const start = this.pos;
    const v = this.varint();
    if (this.pos - start < 10) return v;
    // Past 2^53 a double cannot hold the 64-bit pattern: rebuild it exactly (rare: only negatives).
    let big = 0n;
    for (let i = this.pos - 1; i >= start; i--) big = (big << 7n) | BigInt(this.buf[i] & 0x7f);
    return Number(BigInt.asIntN(64, big));
  }

  /** The end offset of a length-delimited field; the cursor is left at its first byte. */
  lenEnd(): number {
    const len = this.varint();
    const end = this.pos + len;
    if (end > this.end) throw new ProtoDecodeError("length-delimited field runs past the buffer");
    return end;
  }

  string(): string {
    const end = this.lenEnd();
    const s = decodeString(this.buf, this.pos, end);
    this.pos = end;
    return s;
  }

  /**
   * A string that many objects repeat (namespaces, label keys and values, node names, phases): decoded
   * once and shared, which saves both the decode and the memory of 10,000 copies in a cache.
   */
  interned(): string {
    const end = this.lenEnd();
    const s = internString(this.buf, this.pos, end);
    this.pos = end;
    return s;
  }

  /** A sub-reader over the next length-delimited field. */
  message(): ProtoReader {
    const end = this.lenEnd();
    const sub = new ProtoReader(this.buf, this.pos, end);
    this.pos = end;
    return sub;
  }

  /** Skips the field whose tag was just read. */
  skip(tag: number): void {
    switch (tag & 7) {
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
        throw new ProtoDecodeError(`unsupported wire type ${tag & 7}`);
    }
    if (this.pos > this.end) throw new ProtoDecodeError("fixed-size field runs past the buffer");
  }

  /** Checks a message loop ended exactly at its end (a length that lied would run into the next field). */
  closed(end: number): void {
    if (this.pos !== end) throw new ProtoDecodeError("field runs past the end of its message");
  }
}

/**
 * Most strings in Kubernetes objects are short ASCII (names, labels, IPs, UIDs): those are built from their
 * char codes in one call, which skips TextDecoder's subarray and native call (20,000 such strings: 2.7 ms
 * against 3.1). node:buffer's utf8Slice was faster still (1.4 ms) but importing it starts Deno's Node
 * compatibility layer, which costs every process megabytes of RSS.
 */
const ASCII_FAST_MAX = 64;

function decodeString(b: Uint8Array, start: number, end: number): string {
  if (start === end) return "";
  if (end - start <= ASCII_FAST_MAX) {
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

const INTERN_MAX_LEN = 48;
const INTERN_SLOTS = 4096;
const internTable: (string | undefined)[] = new Array(INTERN_SLOTS);

/** A direct-mapped cache by a hash of the bytes; a collision just decodes (and replaces the slot). */
function internString(b: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n === 0) return "";
  if (n > INTERN_MAX_LEN) return decodeString(b, start, end);
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ b[i], 0x01000193);
  const slot = (h >>> 0) & (INTERN_SLOTS - 1);
  const hit = internTable[slot];
  if (hit !== undefined && hit.length === n) {
    let same = true;
    for (let i = 0; i < n; i++) {
      if (hit.charCodeAt(i) !== b[start + i]) {
        same = false;
        break;
      }
    }
    if (same) return hit;
  }
  const s = decodeString(b, start, end);
  // Only ASCII strings can be compared byte by char code above.
  if (s.length === n) internTable[slot] = s;
  return s;
}

/** The 4 bytes before every protobuf-encoded Kubernetes object: "k8s" and a zero byte. */
export const PROTO_MAGIC = new Uint8Array([0x6b, 0x38, 0x73, 0x00]);

interface Unknown {
  apiVersion: string;
  kind: string;
  raw: Uint8Array;
}

/** Unwraps "k8s\0" + runtime.Unknown{typeMeta{apiVersion, kind}, raw, contentEncoding, contentType}. */
export function unwrapEnvelope(buf: Uint8Array): Unknown {
  const out: Unknown = { apiVersion: "", kind: "", raw: new Uint8Array(0) };
  const raw = scanEnvelope(buf, 0, buf.length, out);
  out.raw = buf.subarray(raw.pos, raw.end);
  return out;
}

/**
 * A reader over the object inside the envelope at buf[start, end), without copying or decoding the type
 * (a watch event's object is of the kind watched): the per-event path.
 */
export function envelopeReader(buf: Uint8Array, start: number, end: number): ProtoReader {
  return scanEnvelope(buf, start, end, undefined);
}

function scanEnvelope(
  buf: Uint8Array,
  start: number,
  end: number,
  typeMeta: Unknown | undefined,
): ProtoReader {
  if (end - start < 4) throw new ProtoDecodeError("not a Kubernetes protobuf object (no k8s magic)");
  for (let i = 0; i < 4; i++) {
    if (buf[start + i] !== PROTO_MAGIC[i]) {
      throw new ProtoDecodeError("not a Kubernetes protobuf object (no k8s magic)");
    }
  }
  const r = new ProtoReader(buf, start + 4, end);
  let raw = new ProtoReader(buf, r.pos, r.pos);
  while (!r.done) {
    const tag = r.varint();
    switch (tag) {
      case 10 /* 1:len typeMeta */: {
        const tmEnd = r.lenEnd();
        if (!typeMeta) {
          r.pos = tmEnd;
          break;
        }
        while (r.pos < tmEnd) {
          const t = r.varint();
          if (t === 10 /* 1:len */) typeMeta.apiVersion = r.string();
          else if (t === 18 /* 2:len */) typeMeta.kind = r.string();
          else r.skip(t);
        }
        r.closed(tmEnd);
        break;
      }
      case 18 /* 2:len raw */:
        raw = r.message();
        break;
      case 26 /* 3:len contentEncoding */: {
        const enc = r.string();
        if (enc !== "") throw new ProtoDecodeError(`unsupported content encoding ${enc}`);
        break;
      }
      default:
        r.skip(tag);
    }
  }
  return raw;
}

// Tags below are literal `(field << 3) | wireType` values, commented `field:wiretype`: a case label that
// calls a function would be evaluated on every switch.

/** meta/v1 Time as the JSON API writes it: RFC 3339, whole seconds, UTC. */
export function readTime(r: ProtoReader): string {
  return formatTime(r, false);
}

/** meta/v1 MicroTime as the JSON API writes it: RFC 3339 with 6 fractional digits, UTC. */
export function readMicroTime(r: ProtoReader): string {
  return formatTime(r, true);
}

/** google.protobuf.Timestamp's fields, read into one reused object (times are read one at a time). */
const TIMESTAMP: FieldTable<{ seconds: number; nanos: number }> = {
  8 /* 1:varint */: (r, t) => t.seconds = r.int(),
  16 /* 2:varint */: (r, t) => t.nanos = r.int(),
};
const timestamp = { seconds: 0, nanos: 0 };

function formatTime(r: ProtoReader, micro: boolean): string {
  timestamp.seconds = 0;
  timestamp.nanos = 0;
  const { seconds, nanos } = readFields(r, timestamp, TIMESTAMP);
  // Objects listed together were mostly created in the same seconds: reuse the last formatted second.
  if (seconds !== lastSeconds) {
    lastSeconds = seconds;
    lastIso = isoTime(seconds * 1000).slice(0, 19); // 2026-11-29T14:33:56
    lastTime = `${lastIso}Z`;
  }
  if (!micro) return lastTime;
  return `${lastIso}.${String(Math.floor(nanos / 1000)).padStart(6, "0")}Z`;
}
let lastSeconds = NaN;
let lastIso = "";
let lastTime = "";

/** One map<string,string> entry, added to `map` (created on the first entry). */
function readMapEntry(
  r: ProtoReader,
  map: Record<string, string> | undefined,
): Record<string, string> {
  const end = r.lenEnd();
  let k = "";
  let v = "";
  while (r.pos < end) {
    const t = r.varint();
    if (t === 10 /* 1:len */) k = r.interned();
    else if (t === 18 /* 2:len */) v = r.interned();
    else r.skip(t);
  }
  r.closed(end);
  const m = map ?? {};
  m[k] = v;
  return m;
}

/** How to read each field of a message into `T`, by tag (field << 3 | wire type). */
export type FieldTable<T> = Readonly<Record<number, (r: ProtoReader, into: T) => void>>;

/**
 * Reads a length-delimited message into `into`, field by field from `fields`; unknown fields are skipped.
 * For messages read rarely (owner references, lease specs, error details): the hot ones (ObjectMeta, pod
 * and node specs) keep their switches, which the JIT turns into jump tables without a call per field.
 */
export function readFields<T>(r: ProtoReader, into: T, fields: FieldTable<T>, end = r.lenEnd()): T {
  while (r.pos < end) {
    const t = r.varint();
    const read = fields[t];
    if (read) read(r, into);
    else r.skip(t);
  }
  r.closed(end);
  return into;
}

/** A string field kept only when not empty, as JSON's omitempty would. */
export function nonEmpty<T>(set: (into: T, s: string) => void): (r: ProtoReader, into: T) => void {
  return (r, into) => {
    const s = r.string();
    if (s !== "") set(into, s);
  };
}

const OWNER_REFERENCE: FieldTable<OwnerReference> = {
  42 /* 5:len */: (r, o) => o.apiVersion = r.interned(),
  10 /* 1:len */: (r, o) => o.kind = r.interned(),
  26 /* 3:len */: (r, o) => o.name = r.string(),
  34 /* 4:len */: (r, o) => o.uid = r.string(),
  48 /* 6:varint */: (r, o) => o.controller = r.varint() !== 0,
  56 /* 7:varint */: (r, o) => o.blockOwnerDeletion = r.varint() !== 0,
};

/**
 * Which ObjectMeta fields a decoder keeps. "whole": all but selfLink and managedFields (an object that is
 * written back, such as a Lease, must keep its annotations and owners). "identity": name, namespace, uid,
 * resourceVersion, labels and the deletion fields, all that MIC's and NMI's pod and node readers use; a
 * pod's annotations (a kubectl-applied pod carries its whole manifest in one), owner references, finalizers
 * and timestamps are skipped unread, so NMI's cache of its node's pods does not hold them.
 */
export type MetaFields = "whole" | "identity";

/** The tags (field << 3 | wire type) of ObjectMeta that "identity" skips: 2, 7, 8, 12, 13, 14. */
const NOT_IDENTITY = new Set([18, 56, 66, 98, 106, 114]);

/** ObjectMeta's plain string fields by tag (one case of the switch below reads them all). */
const META_STRINGS: Record<number, "name" | "generateName" | "uid" | "resourceVersion"> = {
  10: "name",
  18: "generateName",
  42: "uid",
  50: "resourceVersion",
};

/**
 * ObjectMeta without selfLink and managedFields (skipped unread). Empty strings and zero generations are
 * left out, as the JSON API's `omitempty` leaves them out; pointer fields (deletionTimestamp,
 * deletionGracePeriodSeconds) are kept whenever they are on the wire, zero included.
 */
export function readObjectMeta(r: ProtoReader, fields: MetaFields = "whole"): ObjectMeta {
  const end = r.lenEnd();
  const m: ObjectMeta = {};
  const identity = fields === "identity";
  let s: string;
  while (r.pos < end) {
    const t = r.varint();
    if (identity && NOT_IDENTITY.has(t)) {
      r.skip(t);
      continue;
    }
    switch (t) {
      case 10 /* 1:len name */:
      case 18 /* 2:len generateName */:
      case 42 /* 5:len uid */:
      case 50 /* 6:len resourceVersion */:
        if ((s = r.string()) !== "") m[META_STRINGS[t]] = s;
        break;
      case 26 /* 3:len */:
        if ((s = r.interned()) !== "") m.namespace = s;
        break;
      case 56 /* 7:varint */: {
        const g = r.int();
        if (g !== 0) m.generation = g;
        break;
      }
      case 66 /* 8:len */:
        m.creationTimestamp = readTime(r);
        break;
      case 74 /* 9:len */:
        m.deletionTimestamp = readTime(r);
        break;
      case 80 /* 10:varint */:
        m.deletionGracePeriodSeconds = r.int();
        break;
      case 90 /* 11:len */:
        m.labels = readMapEntry(r, m.labels);
        break;
      case 98 /* 12:len */:
        m.annotations = readMapEntry(r, m.annotations);
        break;
      case 106 /* 13:len */:
        (m.ownerReferences ??= []).push(
          readFields(r, { apiVersion: "", kind: "", name: "", uid: "" }, OWNER_REFERENCE),
        );
        break;
      case 114 /* 14:len */:
        (m.finalizers ??= []).push(r.string());
        break;
      default:
        r.skip(t);
    }
  }
  r.closed(end);
  return m;
}

export function readListMeta(r: ProtoReader): ListMeta {
  return readListMetaUntil(r, r.lenEnd());
}

const LIST_META: FieldTable<ListMeta> = {
  18 /* 2:len */: nonEmpty((m, s) => m.resourceVersion = s),
  26 /* 3:len */: nonEmpty((m, s) => m.continue = s),
  32 /* 4:varint */: (r, m) => m.remainingItemCount = r.int(),
};

/** ListMeta's fields from the cursor up to `end` (the length prefix already read). */
export function readListMetaUntil(r: ProtoReader, end: number): ListMeta {
  return readFields(r, {}, LIST_META, end);
}

type StatusDetails = NonNullable<KubeStatus["details"]>;

const STATUS_DETAILS: FieldTable<StatusDetails> = {
  10 /* 1:len */: nonEmpty((d, s) => d.name = s),
  18 /* 2:len */: nonEmpty((d, s) => d.group = s),
  26 /* 3:len */: nonEmpty((d, s) => d.kind = s),
  50 /* 6:len */: nonEmpty((d, s) => d.uid = s),
  40 /* 5:varint */: (r, d) => d.retryAfterSeconds = r.int(),
};

const STATUS: FieldTable<KubeStatus> = {
  18 /* 2:len */: (r, s) => s.status = r.string() as KubeStatus["status"],
  26 /* 3:len */: (r, s) => s.message = r.string(),
  34 /* 4:len */: (r, s) => s.reason = r.string(),
  48 /* 6:varint */: (r, s) => s.code = r.int(),
  42 /* 5:len */: (r, s) => s.details = readFields(r, {}, STATUS_DETAILS),
};

/** meta/v1 Status: what the apiserver answers errors (and watch ERROR events) with. */
export function readStatus(buf: Uint8Array): KubeStatus {
  return readFields(new ProtoReader(buf), { apiVersion: "v1", kind: "Status" }, STATUS, buf.length);
}
