import assert from "node:assert/strict";
import { parseRetryAfter } from "../../../lib/retry_after.ts";

Deno.test("Retry-After: delay-seconds, surrounding space allowed", () => {
  assert.equal(parseRetryAfter("7"), 7000);
  assert.equal(parseRetryAfter(" 1200 "), 1_200_000);
  assert.equal(parseRetryAfter("0"), 0);
});

Deno.test("Retry-After: an HTTP date counts from now, a past date is 0", () => {
  const now = Date.parse("2026-11-29T10:00:00Z");
  assert.equal(parseRetryAfter("Sun, 29 Nov 2026 10:00:30 GMT", now), 30_000);
  assert.equal(parseRetryAfter("Sun, 29 Nov 2026 09:00:00 GMT", now), 0);
  assert.equal(parseRetryAfter(new Date(61_000).toUTCString(), 1_000), 60_000);
});

Deno.test("Retry-After: absent, empty or unreadable values are undefined (the caller's backoff decides)", () => {
  for (const v of [null, undefined, "", "   ", "soon", "-5", "1.5"]) {
    assert.equal(parseRetryAfter(v, 0), undefined, JSON.stringify(v));
  }
});
