// HPACK (RFC 7541), the header compression of HTTP/2: a decoder for the server's response headers, which
// Go's server writes with its dynamic table and Huffman-coded strings, and an encoder for our few request
// headers that uses neither (literals "without indexing" keep the server's table for us empty).

import { HUFFMAN_CODES, HUFFMAN_LENGTHS, STATIC_TABLE } from "./hpack_tables.ts";

/** A header block that cannot be decoded: a connection error (COMPRESSION_ERROR) in HTTP/2. */
export class HpackError extends Error {
  override name = "HpackError";
}

export type HeaderField = [name: string, value: string];

/** Section 4.1: an entry's size is its name and value in octets plus 32. */
const ENTRY_OVERHEAD = 32;

// The Huffman code as a binary tree: node n's children are TREE[2n] (bit 0) and TREE[2n + 1] (bit 1); a
// child >= 0 is a node, a child < 0 is the leaf of symbol ~child (256 is EOS).
const TREE = (() => {
  const tree = new Int32Array(2 * 512).fill(0);
  let nodes = 1;
  const add = (symbol: number, code: number, length: number) => {
    let node = 0;
    for (let i = length - 1; i > 0; i--) {
      const slot = 2 * node + ((code >>> i) & 1);
      if (tree[slot] === 0) tree[slot] = nodes++;
      node = tree[slot];
    }
    tree[2 * node + (code & 1)] = ~symbol;
  };
  for (let s = 0; s < HUFFMAN_CODES.length; s++) add(s, HUFFMAN_CODES[s], HUFFMAN_LENGTHS[s]);
  return tree;
})();

/** Section 5.2: a Huffman-coded string; padding must be fewer than 8 bits, all ones, and EOS never appears. */
export function huffmanDecode(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil((src.length * 8) / 5));
  let n = 0, node = 0, depth = 0, ones = true;
  for (const byte of src) {
    for (let i = 7; i >= 0; i--) {
      const bit = (byte >>> i) & 1;
      const next = TREE[2 * node + bit];
      depth++;
      ones &&= bit === 1;
      if (next < 0) {
        if (~next === 256) throw new HpackError("Huffman-coded string contains EOS");
        out[n++] = ~next;
        node = 0, depth = 0, ones = true;
      } else node = next;
    }
  }
  if (depth > 7 || !ones) throw new HpackError("Huffman-coded string has invalid padding");
  return out.subarray(0, n);
}

const utf8 = new TextDecoder();

/** Decodes header blocks of one connection, in order: every block changes the shared dynamic table. */
/** A header list over the size this side announced (SETTINGS_MAX_HEADER_LIST_SIZE). */
class HeaderListTooLarge extends HpackError {
  constructor(readonly limit: number) {
    super(`header list over ${limit} octets`);
  }
}

export class HpackDecoder {
  /** Newest first. */
  #table: { name: string; value: string; nameOctets: number; size: number }[] = [];
  #size = 0;
  #maxSize: number;
  /** The SETTINGS_HEADER_TABLE_SIZE we announced: the most a size update may ask for. */
  readonly #limit: number;

  constructor(limit = 4096) {
    this.#limit = limit;
    this.#maxSize = limit;
  }

  /**
   * The fields of one header block, in order. `maxListSize` bounds the decoded list as RFC 9113 6.5.2
   * counts it (name + value octets + 32 per field) and is checked field by field, so a small block of
   * references to one large table entry fails after the limit, not after expanding all of them.
   */
  decode(block: Uint8Array, maxListSize = Infinity): HeaderField[] {
    const fields: HeaderField[] = [];
    let pos = 0;
    let listSize = 0;
    const emit = (name: string, value: string, size: number) => {
      listSize += size;
      if (listSize > maxListSize) throw new HeaderListTooLarge(maxListSize);
      fields.push([name, value]);
    };
    const integer = (prefixBits: number): number => {
      if (pos >= block.length) throw new HpackError("header block ends inside an integer");
      const max = (1 << prefixBits) - 1;
      let value = block[pos++] & max;
      if (value < max) return value;
      for (let shift = 0;; shift += 7) {
        if (pos >= block.length) throw new HpackError("header block ends inside an integer");
        if (shift > 28) throw new HpackError("integer too large");
        const b = block[pos++];
        value += (b & 0x7f) * 2 ** shift;
        if ((b & 0x80) === 0) return value;
      }
    };
    const string = (): { text: string; octets: number } => {
      if (pos >= block.length) throw new HpackError("header block ends before a string");
      const huffman = (block[pos] & 0x80) !== 0;
      const length = integer(7);
      if (pos + length > block.length) throw new HpackError("string longer than the header block");
      const raw = block.subarray(pos, pos + length);
      pos += length;
      const bytes = huffman ? huffmanDecode(raw) : raw;
      return { text: utf8.decode(bytes), octets: bytes.length };
    };
    const entry = (index: number): { name: string; value: string; nameOctets: number; size: number } => {
      if (index === 0) throw new HpackError("index 0");
      if (index <= STATIC_TABLE.length) {
        // The static table is ASCII: characters are octets.
        const [name, value] = STATIC_TABLE[index - 1];
        return { name, value, nameOctets: name.length, size: name.length + value.length + ENTRY_OVERHEAD };
      }
      const dyn = this.#table[index - STATIC_TABLE.length - 1];
      if (!dyn) throw new HpackError(`index ${index} is past the dynamic table`);
      return dyn;
    };
    while (pos < block.length) {
      const b = block[pos];
      if (b & 0x80) { // 6.1 indexed field
        const { name, value, size } = entry(integer(7));
        emit(name, value, size);
      } else if ((b & 0xe0) === 0x20) { // 6.3 dynamic table size update
        const size = integer(5);
        if (size > this.#limit) throw new HpackError(`table size update to ${size} exceeds ${this.#limit}`);
        this.#maxSize = size;
        this.#evict(0);
      } else {
        // 6.2.1 with incremental indexing (01), 6.2.2 without (0000), 6.2.3 never indexed (0001).
        const indexing = (b & 0xc0) === 0x40;
        const index = integer(indexing ? 6 : 4);
        let name: string, nameOctets: number;
        if (index === 0) {
          const s = string();
          name = s.text, nameOctets = s.octets;
        } else {
          const e = entry(index);
          name = e.name, nameOctets = e.nameOctets;
        }
        const value = string();
        const size = nameOctets + value.octets + ENTRY_OVERHEAD;
        emit(name, value.text, size);
        if (indexing) this.#add({ name, value: value.text, nameOctets, size });
      }
    }
    return fields;
  }

  /** The dynamic table, newest first, and its size in octets (for tests). */
  get table(): { fields: HeaderField[]; size: number } {
    return { fields: this.#table.map((e) => [e.name, e.value]), size: this.#size };
  }

  #add(entry: { name: string; value: string; nameOctets: number; size: number }): void {
    // 4.4: an entry larger than the table empties it and is not added.
    this.#evict(entry.size);
    if (entry.size <= this.#maxSize) {
      this.#table.unshift(entry);
      this.#size += entry.size;
    }
  }

  /** Evicts oldest entries until `room` more octets fit. */
  #evict(room: number): void {
    while (this.#table.length && this.#size + room > this.#maxSize) this.#size -= this.#table.pop()!.size;
  }
}

const encoder = new TextEncoder();

function writeInteger(out: number[], value: number, prefixBits: number, first: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(first | value);
    return;
  }
  out.push(first | max);
  value -= max;
  while (value >= 128) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
}

/**
 * A request's header block: every field a literal without indexing with a literal name, no Huffman.
 * Names must already be lowercase (HTTP/2 refuses others).
 */
export function encodeHeaders(fields: readonly HeaderField[]): Uint8Array {
  const out: number[] = [];
  for (const [name, value] of fields) {
    out.push(0x00);
    for (const s of [name, value]) {
      const bytes = encoder.encode(s);
      writeInteger(out, bytes.length, 7, 0x00);
      for (const x of bytes) out.push(x);
    }
  }
  return Uint8Array.from(out);
}
