import assert from "node:assert/strict";
import {
  COMPUTE_DEFAULT_POLICIES,
  type ComputePolicy,
  ComputeThrottle,
} from "../../../scripts/sandbox/azure/compute_throttle.ts";

const policy = (over: Partial<ComputePolicy> = {}): ComputePolicy => ({
  name: "PutVM3Min",
  kind: "virtualMachines",
  operation: "write",
  windowSeconds: 180,
  allowedRequestCount: 2,
  ...over,
});

Deno.test("Compute policies count per resource and report what is left on every answer", () => {
  let t = 0;
  const th = new ComputeThrottle({
    policies: [policy(), policy({ name: "PutVM30Min", windowSeconds: 1800 })],
  }, () => t);
  const first = th.take("virtualMachines", "write", "vm1");
  assert.deepEqual(first, {
    ok: true,
    remainingHeader: "Microsoft.Compute/PutVM3Min;1,Microsoft.Compute/PutVM30Min;1",
  });
  assert.equal(th.take("virtualMachines", "write", "vm2").ok, true, "another VM has its own count");
  assert.equal(th.take("virtualMachines", "read", "vm1").remainingHeader, "", "no read policy configured");
  assert.equal(th.take("virtualMachineScaleSets", "write", "vm1").remainingHeader, "");
  assert.equal(th.take("virtualMachines", "write", "vm1").ok, true);
  t = 10_000;
  const refused = th.take("virtualMachines", "write", "vm1");
  assert.equal(refused.ok, false);
  if (refused.ok) return;
  // The window that ends last decides Retry-After: the 30-minute one, 1790 s away.
  assert.equal(refused.retryAfterSeconds, 1790);
  assert.equal(refused.error.details?.[0].target, "PutVM30Min");
  assert.deepEqual(JSON.parse(refused.error.details![0].message), {
    operationGroup: "PutVM30Min",
    startTime: new Date(0).toISOString(),
    endTime: new Date(1_800_000).toISOString(),
    allowedRequestCount: 2,
    measuredRequestCount: 3,
  });
});

Deno.test("a refused resource stays refused until Retry-After, even across a new window", () => {
  let t = 0;
  const th = new ComputeThrottle(
    { policies: [policy({ windowSeconds: 10, allowedRequestCount: 1 })], retryAfterSeconds: 60 },
    () => t,
  );
  assert.equal(th.take("virtualMachines", "write", "vm").ok, true);
  const refused = th.take("virtualMachines", "write", "vm");
  assert.equal(!refused.ok && refused.retryAfterSeconds, 60);
  t = 30_000;
  const again = th.take("virtualMachines", "write", "vm");
  assert.equal(!again.ok && again.retryAfterSeconds, 30, "the window reset, the penalty did not");
  t = 60_000;
  assert.equal(th.take("virtualMachines", "write", "vm").ok, true);
});

Deno.test("default policies carry Compute's names and counts; bad policies are refused", () => {
  const names = COMPUTE_DEFAULT_POLICIES.map((p) => p.name);
  for (const n of ["PutVM3Min", "PutVM30Min", "LowCostGet3Min", "GetVMScaleSet30Min", "PutVMScaleSet3Min"]) {
    assert.ok(names.includes(n), n);
  }
  const th = new ComputeThrottle({ policies: COMPUTE_DEFAULT_POLICIES }, () => 0);
  assert.equal(
    th.take("virtualMachineScaleSets", "read", "pool").remainingHeader,
    "Microsoft.Compute/GetVMScaleSet3Min;199,Microsoft.Compute/GetVMScaleSet30Min;1299",
  );
  assert.throws(() => new ComputeThrottle({ policies: [policy({ windowSeconds: 0 })] }), RangeError);
  assert.throws(() => new ComputeThrottle({ policies: [], retryAfterSeconds: -1 }), RangeError);
});
