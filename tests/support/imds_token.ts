// The fields of an IMDS token answer as the emulated IMDS and NMI both write them: docs/protocols.md
// ("Success") plus the original NMI's `refresh_token`, always "" (docs/upstream.md). Every field a string.

import assert from "node:assert/strict";

/** Sorted. */
const IMDS_TOKEN_FIELDS = [
  "access_token",
  "client_id",
  "expires_in",
  "expires_on",
  "ext_expires_in",
  "not_before",
  "refresh_token",
  "resource",
  "token_type",
] as const;

/** Fails unless `body` has exactly IMDS_TOKEN_FIELDS, each a string. */
export function assertImdsTokenFields(body: object): void {
  assert.deepEqual(Object.keys(body).sort(), IMDS_TOKEN_FIELDS);
  for (const [k, v] of Object.entries(body)) assert.equal(typeof v, "string", k);
}
