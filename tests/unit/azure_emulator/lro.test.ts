import assert from "node:assert/strict";
import { operationToJson, OperationTracker } from "../../../scripts/sandbox/azure/lro.ts";

Deno.test("an operation runs for its duration, then succeeds and commits exactly once", () => {
  let t = 1_000_000;
  const ops = new OperationTracker(() => t);
  let commits = 0;
  const op = ops.start("vm1", 500, () => commits++);
  assert.equal(ops.get(op.id)?.status, "InProgress");
  assert.equal(ops.running("vm1")?.id, op.id);
  t += 499;
  assert.equal(ops.get(op.id)?.status, "InProgress");
  assert.equal(commits, 0);
  t += 1;
  const done = ops.get(op.id)!;
  assert.equal(done.status, "Succeeded");
  assert.equal(done.endTime, 1_000_500);
  ops.settle();
  assert.equal(commits, 1);
  assert.equal(ops.running("vm1"), undefined);
});

Deno.test("a newer operation preempts the running one on the same resource only", () => {
  let t = 0;
  const ops = new OperationTracker(() => t);
  const committed: string[] = [];
  const first = ops.start("vmss", 1000, () => committed.push("first"));
  const other = ops.start("vm", 1000, () => committed.push("other"));
  t = 100;
  const second = ops.start("vmss", 1000, () => committed.push("second"));
  const preempted = ops.get(first.id)!;
  assert.equal(preempted.status, "Canceled");
  assert.deepEqual(operationToJson(preempted).error?.code, "OperationPreempted");
  t = 1100;
  ops.settle();
  assert.deepEqual(committed, ["other", "second"]);
  assert.equal(ops.get(second.id)?.status, "Succeeded");
  assert.equal(ops.get(other.id)?.status, "Succeeded");
});

Deno.test("the operation body carries ISO times and no end time while running", () => {
  const ops = new OperationTracker(() => Date.UTC(2026, 0, 1));
  const op = ops.start("r", 10, () => {});
  const json = operationToJson(op);
  assert.deepEqual(json, { name: op.id, status: "InProgress", startTime: "2026-01-01T00:00:00.000Z" });
  assert.equal(ops.get("no-such-op"), undefined);
});
