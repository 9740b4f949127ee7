import assert from "node:assert/strict";
import { parseRetryAfterMs } from "../../../lib/azure/arm_client.ts";
import { Backoffs } from "../../../mic/backoffs.ts";
import { blamedIds } from "../../../mic/target_jobs.ts";

Deno.test("blamedIds: the identity ids ARM names in LinkedAuthorizationFailed and FailedIdentityOperation", () => {
  const a = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/a";
  const b =
    "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/b-2";
  const linked = `The client 'x' with object id 'y' has permission to perform action 'Microsoft.Compute/` +
    `virtualMachineScaleSets/write' on scope '/subscriptions/s/resourceGroups/mc/providers/Microsoft.Compute/` +
    `virtualMachineScaleSets/pool'; however, it does not have permission to perform action 'Microsoft.` +
    `ManagedIdentity/userAssignedIdentities/assign/action' on the linked scope(s) '${a},${b}' or the linked ` +
    `scope(s) are invalid.`;
  assert.deepEqual(blamedIds(linked), [a.toLowerCase(), b.toLowerCase()]);
  const failed =
    `Identity operation for resource '/subscriptions/s/resourceGroups/mc/providers/Microsoft.Compute/` +
    `virtualMachineScaleSets/pool' failed with error '... Response: '{"error":{"code":"BadRequest","message":` +
    `"Resource '${a}' was not found."}}'.'.`;
  assert.deepEqual(blamedIds(failed), [a.toLowerCase()]);
  assert.deepEqual(blamedIds("AuthorizationFailed: no identity named"), []);
});

Deno.test("Backoffs: doubling with jitter per key, Retry-After as a floor, success resets", () => {
  let now = 1_000;
  const b = new Backoffs({ baseMs: 100, maxMs: 1_000, jitter: 0 }, () => now);
  assert.equal(b.fail("x"), 1_100);
  assert.equal(b.fail("x"), 1_200);
  assert.equal(b.fail("x"), 1_400);
  assert.ok(b.blocked("x"));
  assert.ok(!b.blocked("y"));
  assert.equal(b.fail("x", 50_000), 50_000);
  for (let i = 0; i < 10; i++) b.fail("x");
  assert.equal(b.until("x"), now + 1_000);
  now = 100_000;
  assert.ok(!b.blocked("x"));
  b.succeed("x");
  assert.equal(b.failures("x"), 0);
});

Deno.test("Retry-After: seconds or an HTTP date", () => {
  assert.equal(parseRetryAfterMs("1200"), 1_200_000);
  assert.equal(parseRetryAfterMs(new Date(61_000).toUTCString(), 1_000), 60_000);
  assert.equal(parseRetryAfterMs("soon"), undefined);
  assert.equal(parseRetryAfterMs(null), undefined);
});
