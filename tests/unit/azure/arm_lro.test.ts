// The LRO state machine of lib/azure/arm_lro.ts with scripted ARM answers and a fake clock: which URLs it
// reads, how long it waits before each, what it returns or throws.

import assert from "node:assert/strict";
import { ArmError } from "../../../lib/azure/arm_error.ts";
import type { ArmAnswer } from "../../../lib/azure/arm_http.ts";
import { followOperation, type LroDeps } from "../../../lib/azure/arm_lro.ts";
import { DurationEstimate } from "../../../lib/azure/lro_timing.ts";

const ORIGIN = "https://management.example";
const PATCH_URL =
  `${ORIGIN}/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/a?api-version=2026-04-01`;
const OP_URL =
  `${ORIGIN}/subscriptions/s/providers/Microsoft.Compute/locations/x/operations/1?api-version=2026-04-01`;

const answer = (status: number, body: unknown, headers: Record<string, string> = {}): ArmAnswer => ({
  status,
  headers: new Headers(headers),
  body,
});

/** Deps whose GETs answer from `script` (by URL, in order) and whose clock moves only by waits. */
function fake(script: Record<string, ArmAnswer[]>, estimate = new DurationEstimate()) {
  let clock = 1_000_000;
  const log: string[] = [];
  const deps: LroDeps = {
    op: "vmss_update",
    kind: "vmss",
    get: (url) => {
      log.push(`GET ${url.replace(ORIGIN, "")} @${clock - 1_000_000}`);
      const next = script[url]?.shift();
      if (!next) throw new Error(`unscripted GET ${url}`);
      return Promise.resolve(next);
    },
    wait: (ms) => {
      clock += ms;
      return Promise.resolve();
    },
    now: () => clock,
    estimate,
    origin: ORIGIN,
    apiVersion: "2026-04-01",
  };
  return { deps, log, estimate };
}

const status = (s: string, extra: Record<string, unknown> = {}) => answer(200, { status: s, ...extra });
const vmss = { identity: { type: "UserAssigned" }, properties: { provisioningState: "Succeeded" } };

Deno.test("LRO: Azure-AsyncOperation polled to Succeeded, then the PATCHed resource read (as the SDK does)", async () => {
  const { deps, log, estimate } = fake({
    [OP_URL]: [
      status("InProgress"),
      status("Succeeded", { startTime: "2026-01-01T00:00:00.000Z", endTime: "2026-01-01T00:00:01.800Z" }),
    ],
    [PATCH_URL]: [answer(200, vmss)],
  });
  const initial = answer(200, { stale: true }, { "azure-asyncoperation": OP_URL });
  assert.deepEqual(await followOperation(initial, PATCH_URL, deps), vmss);
  assert.deepEqual(log, [
    `GET ${OP_URL.replace(ORIGIN, "")} @100`,
    `GET ${OP_URL.replace(ORIGIN, "")} @2100`,
    `GET ${PATCH_URL.replace(ORIGIN, "")} @2100`,
  ]);
  assert.equal(estimate.get("vmss"), 1_800, "the operation's own start/end times, not our polling");

  // The next operation of this kind is polled once, when such operations were done.
  const again = fake({ [OP_URL]: [status("Succeeded")], [PATCH_URL]: [answer(200, vmss)] }, estimate);
  await followOperation(initial, PATCH_URL, again.deps);
  assert.deepEqual(again.log.map((l) => l.split(" @")[1]), ["1800", "1800"]);
});

Deno.test("LRO: the operation's Retry-After is waited, the final GET goes to Location when given", async () => {
  const loc = `${ORIGIN}/final?x=1`;
  const { deps, log } = fake({
    [OP_URL]: [status("InProgress", {}), status("Succeeded")],
    [`${loc}&api-version=2026-04-01`]: [answer(200, vmss)],
  });
  deps.get = ((inner) => async (url: string) => {
    const a = await inner(url);
    return url === OP_URL && (a.body as { status: string }).status === "InProgress"
      ? { ...a, headers: new Headers({ "retry-after": "7" }) }
      : a;
  })(deps.get);
  const initial = answer(202, undefined, {
    "azure-asyncoperation": OP_URL,
    location: loc,
    "retry-after": "3",
  });
  assert.deepEqual(await followOperation(initial, PATCH_URL, deps), vmss);
  assert.deepEqual(log.map((l) => l.split(" @")[1]), ["3000", "10000", "10000"]);
});

Deno.test("LRO: Failed and Canceled end with ArmError carrying the operation's error", async () => {
  const failed = fake({
    [OP_URL]: [status("Failed", { error: { code: "InternalExecutionError", message: "boom" } })],
  });
  const initial = answer(200, {}, { "azure-asyncoperation": OP_URL });
  await assert.rejects(
    followOperation(initial, PATCH_URL, failed.deps),
    (e) =>
      e instanceof ArmError && e.code === "InternalExecutionError" && e.message === "boom" && e.status === 0,
  );
  assert.equal(failed.estimate.get("vmss"), undefined, "a failure teaches nothing about durations");
  const canceled = fake({ [OP_URL]: [status("Canceled")] });
  await assert.rejects(
    followOperation(initial, PATCH_URL, canceled.deps),
    (e) => e instanceof ArmError && e.code === "OperationCanceled",
  );
  const junk = fake({ [OP_URL]: [answer(200, { nothing: 1 })] });
  await assert.rejects(
    followOperation(initial, PATCH_URL, junk.deps),
    (e) => e instanceof ArmError && e.code === "InvalidOperationStatus",
  );
});

Deno.test("LRO: Location only -> polled while 202, its final body is the result; no header -> the PATCH's body", async () => {
  const loc = `${ORIGIN}/op?api-version=2026-04-01`;
  const { deps } = fake({ [loc]: [answer(202, undefined), answer(202, undefined), answer(200, vmss)] });
  assert.deepEqual(await followOperation(answer(202, undefined, { location: loc }), PATCH_URL, deps), vmss);
  const none = fake({});
  assert.deepEqual(await followOperation(answer(200, vmss), PATCH_URL, none.deps), vmss);
  assert.deepEqual(none.log, []);
});

Deno.test("LRO: an operation URL on another host is refused, the token is not sent there", async () => {
  const { deps, log } = fake({});
  const initial = answer(200, {}, { "azure-asyncoperation": "https://attacker.example/op" });
  await assert.rejects(
    followOperation(initial, PATCH_URL, deps),
    (e) => e instanceof ArmError && e.code === "InvalidOperationUrl",
  );
  assert.deepEqual(log, []);
});
