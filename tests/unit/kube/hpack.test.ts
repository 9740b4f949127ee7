// The HPACK decoder against RFC 7541's own examples (Appendix C.5 and C.6: three responses on one
// connection with a 256-octet table, plain and Huffman-coded, with evictions), its encoder by round trip,
// and malformed blocks.

import assert from "node:assert/strict";
import { encodeHeaders, HpackDecoder, HpackError, huffmanDecode } from "../../../lib/kube/http2/hpack.ts";
import type { HeaderField } from "../../../lib/kube/http2/hpack.ts";
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from "../../../lib/kube/http2/hpack_tables.ts";

const hex = (s: string) => Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!.map((b) => parseInt(b, 16)));

const DATE1 = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2 = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOCATION = "https://www.example.com";
const COOKIE = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";

interface Step {
  block: Uint8Array;
  fields: HeaderField[];
  table: HeaderField[];
  size: number;
}

function series(steps: Step[]) {
  const d = new HpackDecoder(256);
  for (const [i, step] of steps.entries()) {
    assert.deepEqual(d.decode(step.block), step.fields, `response ${i + 1}`);
    assert.deepEqual(d.table, { fields: step.table, size: step.size }, `table after response ${i + 1}`);
  }
}

const afterFirst: HeaderField[] = [
  ["location", LOCATION],
  ["date", DATE1],
  ["cache-control", "private"],
  [":status", "302"],
];
const afterSecond: HeaderField[] = [
  [":status", "307"],
  ["location", LOCATION],
  ["date", DATE1],
  ["cache-control", "private"],
];
const third: HeaderField[] = [
  [":status", "200"],
  ["cache-control", "private"],
  ["date", DATE2],
  ["location", LOCATION],
  ["content-encoding", "gzip"],
  ["set-cookie", COOKIE],
];
const afterThird: HeaderField[] = [["set-cookie", COOKIE], ["content-encoding", "gzip"], ["date", DATE2]];

Deno.test("hpack: RFC 7541 C.5, responses without Huffman coding, evict in order", () => {
  series([
    {
      block: hex(`4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
        2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`),
      fields: [[":status", "302"], ["cache-control", "private"], ["date", DATE1], ["location", LOCATION]],
      table: afterFirst,
      size: 222,
    },
    {
      block: hex("4803 3330 37c1 c0bf"),
      fields: [[":status", "307"], ["cache-control", "private"], ["date", DATE1], ["location", LOCATION]],
      table: afterSecond,
      size: 222,
    },
    {
      block: hex(`88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
        54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
        5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`),
      fields: third,
      table: afterThird,
      size: 215,
    },
  ]);
});

Deno.test("hpack: RFC 7541 C.6, the same responses Huffman-coded", () => {
  series([
    {
      block: hex(`4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
        2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`),
      fields: [[":status", "302"], ["cache-control", "private"], ["date", DATE1], ["location", LOCATION]],
      table: afterFirst,
      size: 222,
    },
    {
      block: hex("4883 640e ffc1 c0bf"),
      fields: [[":status", "307"], ["cache-control", "private"], ["date", DATE1], ["location", LOCATION]],
      table: afterSecond,
      size: 222,
    },
    {
      block: hex(`88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
        77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
        9587 3160 65c0 03ed 4ee5 b106 3d50 07`),
      fields: third,
      table: afterThird,
      size: 215,
    },
  ]);
});

Deno.test("hpack: a size update shrinks the table; one above the announced limit is refused", () => {
  const d = new HpackDecoder(256);
  d.decode(hex("4882 6402")); // :status 302, indexed (42 octets)
  assert.equal(d.table.size, 42);
  d.decode(hex("20")); // size update to 0 evicts everything
  assert.deepEqual(d.table, { fields: [], size: 0 });
  assert.throws(() => d.decode(hex("3fe201")), HpackError); // 257 > 256
});

Deno.test("hpack: malformed blocks are refused, not guessed at", () => {
  const cases: [string, string][] = [
    ["80", "index 0"],
    ["be", "index past the (empty) dynamic table"],
    ["4082", "string cut short"],
    ["7f", "integer cut short"],
    ["7fffffffffff0f", "integer too large"],
    ["0081ff", "Huffman padding longer than 7 bits"],
    ["00811e", "Huffman padding that is not all ones ('a' then 110)"],
  ];
  for (const [block, why] of cases) {
    assert.throws(() => new HpackDecoder().decode(hex(block)), HpackError, why);
  }
  // EOS (30 ones) inside a string.
  assert.throws(() => huffmanDecode(hex("ffffffff")), HpackError);
});

/** Huffman-codes bytes with the table, padding with ones. */
function huffmanEncode(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  let acc = 0n, bits = 0n;
  for (const b of bytes) {
    acc = (acc << BigInt(HUFFMAN_LENGTHS[b])) | BigInt(HUFFMAN_CODES[b]);
    bits += BigInt(HUFFMAN_LENGTHS[b]);
    while (bits >= 8n) out.push(Number((acc >> (bits -= 8n)) & 0xffn));
  }
  if (bits > 0n) out.push(Number(((acc << (8n - bits)) | ((1n << (8n - bits)) - 1n)) & 0xffn));
  return Uint8Array.from(out);
}

Deno.test("hpack: Huffman decoding gives back every byte value, and RFC 7541 C.4's strings", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(huffmanDecode(huffmanEncode(all)), all);
  assert.deepEqual(huffmanDecode(huffmanEncode(all.toReversed())), all.toReversed());
  const text = (s: string) => new TextDecoder().decode(huffmanDecode(hex(s)));
  assert.equal(text("f1e3 c2e5 f23a 6ba0 ab90 f4ff"), "www.example.com");
  assert.equal(text("a8eb 1064 9cbf"), "no-cache");
  assert.equal(text("25a8 49e9 5bb8 e8b4 bf"), "custom-value");
});

Deno.test("hpack: what the encoder writes decodes back, including long and non-ASCII values", () => {
  const fields: HeaderField[] = [
    [":method", "GET"],
    [":path", `/api/v1/pods?watch=1&fieldSelector=${"x".repeat(300)}`],
    ["authorization", `Bearer ${"t".repeat(1500)}`],
    ["user-agent", "nmi/ünïcode"],
    ["x-empty", ""],
  ];
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(encodeHeaders(fields)), fields);
  // Literals without indexing leave the peer's table alone.
  assert.deepEqual(d.table, { fields: [], size: 0 });
});

Deno.test("hpack: the header-list limit counts name + value + 32 per field (RFC 9113 6.5.2) and stops at once", () => {
  // Indexed fields of the static table: 2 = ":method: GET" (7 + 3 + 32 = 42 octets each).
  const block = new Uint8Array(100_000).fill(0x82);
  assert.equal(new HpackDecoder().decode(block.subarray(0, 2), 84).length, 2);
  assert.throws(() => new HpackDecoder().decode(block.subarray(0, 3), 84), /header list over 84 octets/);
  // A large block of references fails after the limit, not after decoding all of it.
  const started = performance.now();
  assert.throws(() => new HpackDecoder().decode(block, 4200), /header list over 4200 octets/);
  assert.ok(performance.now() - started < 50);
  assert.equal(new HpackDecoder().decode(block).length, 100_000);
});
