import assert from "node:assert/strict";
import {
  DEFAULT_OPERATION_ERROR,
  drawDuration,
  OperationFaults,
  operationToJson,
  OperationTracker,
  REALISTIC_LRO_DURATION,
} from "../../../scripts/sandbox/azure/lro.ts";
import { Directory } from "../../../scripts/sandbox/azure/directory.ts";
import { ArmState } from "../../../scripts/sandbox/azure/state.ts";

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

Deno.test("a failing operation ends Failed with its error, runs its rollback and never commits", () => {
  let t = 0;
  const ops = new OperationTracker(() => t);
  const events: string[] = [];
  const op = ops.start("vm", 100, () => events.push("commit"), {
    error: { code: "X", message: "m" },
    onFailed: () => events.push("rollback"),
  });
  t = 100;
  const done = ops.get(op.id)!;
  assert.equal(done.status, "Failed");
  assert.deepEqual(operationToJson(done).error, { code: "X", message: "m" });
  assert.equal(done.endTime, 100);
  ops.settle();
  assert.deepEqual(events, ["rollback"]);
});

Deno.test("operation faults match a resource in any casing and run out after `times`", () => {
  const f = new OperationFaults();
  f.inject({ resourceId: "/Subscriptions/S/VM", code: "C", times: 1 });
  assert.equal(f.take("/subscriptions/s/other"), undefined);
  assert.deepEqual(f.take("/subscriptions/s/vm"), { code: "C", message: DEFAULT_OPERATION_ERROR.message });
  assert.equal(f.take("/subscriptions/s/vm"), undefined);
  const id = f.inject();
  assert.equal(f.take("/any")?.code, "InternalExecutionError");
  f.clear(id);
  assert.equal(f.take("/any"), undefined);
  assert.throws(() => f.inject({ times: 0 }), RangeError);
});

Deno.test("a duration range draws each operation's length from Azure's 10-60 s", () => {
  assert.deepEqual(REALISTIC_LRO_DURATION, { minMs: 10_000, maxMs: 60_000 });
  assert.equal(drawDuration(REALISTIC_LRO_DURATION, () => 0), 10_000);
  assert.equal(drawDuration(REALISTIC_LRO_DURATION, () => 0.999999999), 60_000);
  assert.equal(drawDuration(250), 250);
  for (let i = 0; i < 50; i++) {
    const d = drawDuration(REALISTIC_LRO_DURATION);
    assert.ok(d >= 10_000 && d <= 60_000, String(d));
  }
});

Deno.test("an emulator configured with REALISTIC_LRO_DURATION runs each PATCH 10-60 s", () => {
  const t = 5_000_000;
  const directory = new Directory("t");
  const state = new ArmState({
    subscriptionId: "s",
    tenantId: "t",
    location: "eastus",
    lroDurationMs: REALISTIC_LRO_DURATION,
    directory,
    now: () => t,
  });
  const vm = state.addCompute("virtualMachines", { resourceGroup: "rg", name: "vm" });
  const lengths = new Set<number>();
  for (let i = 0; i < 20; i++) {
    const started = state.patchCompute(vm, { tags: { i: String(i) } }, undefined);
    assert.ok(started.ok);
    if (!started.ok) return;
    const length = started.value.doneAt - started.value.startTime;
    assert.ok(length >= 10_000 && length <= 60_000, String(length));
    lengths.add(length);
  }
  assert.ok(lengths.size > 1, "each operation draws its own length");
});
