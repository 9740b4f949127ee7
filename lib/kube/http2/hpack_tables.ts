// HPACK's fixed tables (RFC 7541, https://www.rfc-editor.org/rfc/rfc7541): the static header table
// (Appendix A) and the Huffman code (Appendix B), written compactly from the RFC's tables (as Go's
// golang.org/x/net/http2/hpack carries them) and unpacked once at load. tests/unit/kube/hpack_tables.test.ts
// checks the unpacked tables against the RFC's.

// Appendix A in index order, one entry a line: the name, then after one space the value (if any).
const STATIC_ENTRIES = `
:authority
:method GET
:method POST
:path /
:path /index.html
:scheme http
:scheme https
:status 200
:status 204
:status 206
:status 304
:status 400
:status 404
:status 500
accept-charset
accept-encoding gzip, deflate
accept-language
accept-ranges
accept
access-control-allow-origin
age
allow
authorization
cache-control
content-disposition
content-encoding
content-language
content-length
content-location
content-range
content-type
cookie
date
etag
expect
expires
from
host
if-match
if-modified-since
if-none-match
if-range
if-unmodified-since
last-modified
link
location
max-forwards
proxy-authenticate
proxy-authorization
range
referer
refresh
retry-after
server
set-cookie
strict-transport-security
transfer-encoding
user-agent
vary
via
www-authenticate
`;

/** Appendix A: index 1..61 is STATIC_TABLE[index - 1], as [name, value]. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = STATIC_ENTRIES.trim().split("\n").map(
  (line) => {
    const space = line.indexOf(" ");
    return space < 0 ? [line, ""] : [line.slice(0, space), line.slice(space + 1)];
  },
);

// Appendix B's code lengths in bits (5..30), one base-32 digit a symbol: symbols 0..63, 64..127, 128..191,
// 192..255, and 256 (EOS).
const CODE_LENGTHS = "dnsssssssoussussssssssusssssssss6aacd68baa8b8666555666666678f6ca" +
  "d67777777777777777777777878djde6f56565666577666567655677777fbeds" +
  "kmkkmmmnmnnnnnonoomnonnnnlmnmnnomlkmmnnlnmmolmnnllmlnmnnkmmmnmmn" +
  "qqkjmnmpqqqrrqopjlqrrqrollqqsrrrkoklmllnmmppooqnqrqqrrrrrsrrrrrq" +
  "u";

/** Appendix B: the bit length of symbol i's code (256 is EOS). */
export const HUFFMAN_LENGTHS: Uint8Array = Uint8Array.from(CODE_LENGTHS, (digit) => parseInt(digit, 32));

/**
 * Appendix B: symbol i's code, in the low HUFFMAN_LENGTHS[i] bits (256 is EOS). The RFC's code is canonical,
 * so its lengths determine it: taken by (length, symbol), each code is the previous one plus one, shifted
 * left by however much longer it is.
 */
export const HUFFMAN_CODES: Uint32Array = (() => {
  const codes = new Uint32Array(HUFFMAN_LENGTHS.length);
  const order = [...HUFFMAN_LENGTHS.keys()].sort((a, b) => HUFFMAN_LENGTHS[a] - HUFFMAN_LENGTHS[b] || a - b);
  let code = 0, length = HUFFMAN_LENGTHS[order[0]];
  for (const symbol of order) {
    code <<= HUFFMAN_LENGTHS[symbol] - length;
    length = HUFFMAN_LENGTHS[symbol];
    codes[symbol] = code++;
  }
  return codes;
})();
