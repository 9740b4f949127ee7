// HPACK's fixed tables as lib/kube/http2/hpack_tables.ts unpacks them, against RFC 7541's Appendix A and B
// (https://www.rfc-editor.org/rfc/rfc7541). The digests are of the RFC's tables as golang.org/x/net
// v0.61.0 http2/hpack carries them (static_table.go, tables.go plus EOS), in the text form below; the
// spot checks are lines of the RFC's own tables.

import assert from "node:assert/strict";
import { HUFFMAN_CODES, HUFFMAN_LENGTHS, STATIC_TABLE } from "../../../lib/kube/http2/hpack_tables.ts";

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("hpack tables: the static table is Appendix A's, 61 entries in index order", async () => {
  assert.equal(STATIC_TABLE.length, 61);
  assert.deepEqual(STATIC_TABLE[0], [":authority", ""]);
  assert.deepEqual(STATIC_TABLE[1], [":method", "GET"]);
  assert.deepEqual(STATIC_TABLE[15], ["accept-encoding", "gzip, deflate"]);
  assert.deepEqual(STATIC_TABLE[60], ["www-authenticate", ""]);
  assert.equal(
    await sha256(STATIC_TABLE.map(([name, value]) => `${name}: ${value}\n`).join("")),
    "e068ed84a5a3d28824dc910d55e700af8236a5744b77f384fb67b7f06b72fbb3",
  );
});

Deno.test("hpack tables: the Huffman code is Appendix B's, EOS included", async () => {
  assert.equal(HUFFMAN_CODES.length, 257);
  assert.equal(HUFFMAN_LENGTHS.length, 257);
  // (symbol, code, bits) as Appendix B prints them.
  const rows: [number, number, number][] = [
    [0, 0x1ff8, 13],
    [32, 0x14, 6], // ' '
    [48, 0x0, 5], // '0'
    [97, 0x3, 5], // 'a'
    [255, 0x3ffffee, 26],
    [256, 0x3fffffff, 30], // EOS
  ];
  for (const [symbol, code, bits] of rows) {
    assert.deepEqual([HUFFMAN_CODES[symbol], HUFFMAN_LENGTHS[symbol]], [code, bits], `symbol ${symbol}`);
  }
  const text = Array.from(HUFFMAN_CODES, (code, i) => `${i} ${code.toString(16)} ${HUFFMAN_LENGTHS[i]}\n`);
  assert.equal(
    await sha256(text.join("")),
    "83d3e71d59b887a6b1329636bb3230aea58e89cc668aefbde9139061f5a0fc9c",
  );
});
