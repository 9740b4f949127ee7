// parseTokenQuery keeps a bounded memo: an SDK sends the same query string on every call, and decoding it
// again was 4-7 µs of a cached token's ~50 µs in NMI. Results are shared, so they must be frozen.

import assert from "node:assert/strict";
import { parseTokenQuery } from "../../../nmi/request.ts";

const RAW = "api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F";

Deno.test("parseTokenQuery: a repeated query string is answered from the memo, frozen", () => {
  const a = parseTokenQuery(RAW);
  const b = parseTokenQuery(RAW);
  assert.equal(a, b);
  assert.ok(a.ok);
  assert.equal(a.value.resource, "https://management.azure.com/");
  assert.throws(() => {
    (a.value as { resource: string }).resource = "https://vault.azure.net";
  }, TypeError);
  const again = parseTokenQuery(RAW);
  assert.ok(again.ok && again.value.resource === "https://management.azure.com/");
});

Deno.test("parseTokenQuery: refusals are memoised too and stay refusals", () => {
  const raw = "resource=r&client_id=a&msi_res_id=b";
  const first = parseTokenQuery(raw);
  assert.equal(first.ok, false);
  assert.equal(parseTokenQuery(raw), first);
  assert.ok(!first.ok && first.error.status === 400);
});

Deno.test("parseTokenQuery: the memo is bounded (distinct queries do not grow it without end)", () => {
  const first = parseTokenQuery("resource=bounded-0");
  for (let i = 1; i <= 64; i++) parseTokenQuery(`resource=bounded-${i}`);
  const again = parseTokenQuery("resource=bounded-0");
  assert.notEqual(again, first);
  assert.deepEqual(again, first);
});
