// The reused buffer of the protobuf watch decoder: a large message grows it, and draining it afterwards
// gives the memory back instead of keeping the largest message's size for the watch's whole life.

import assert from "node:assert/strict";
import { ByteQueue } from "../../../lib/kube/byte_queue.ts";

Deno.test("ByteQueue: grows for a large message, drain() returns to the first size and keeps offsets", () => {
  const q = new ByteQueue(16);
  q.append(new Uint8Array(10).fill(1));
  q.off = 4;
  q.append(new Uint8Array(100).fill(2));
  assert.ok(q.buf.length >= 106, "grew for the large message");
  assert.equal(q.avail, 106);
  assert.equal(q.base, 4);
  q.off = q.len;
  q.drain();
  assert.equal(q.buf.length, 16);
  assert.equal(q.avail, 0);
  assert.equal(q.base, 110, "stream offset of the next byte");
  q.append(new Uint8Array([7, 8, 9]));
  assert.deepEqual([...q.buf.subarray(q.off, q.len)], [7, 8, 9]);
});
