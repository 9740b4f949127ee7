import assert from "node:assert/strict";
import { parseEmulatorConfig } from "../../../scripts/sandbox/azure/config.ts";

Deno.test("a full config parses, with defaults for omitted lists", () => {
  const c = parseEmulatorConfig({
    lroDurationMs: 0,
    throttle: { reads: { capacity: 5, refillPerSec: 1 } },
    identities: [{ resourceGroup: "rg", name: "id1" }],
    vmss: [{ resourceGroup: "MC", name: "pool", userAssignedIdentities: ["rg/id1"], capacity: 3 }],
    servicePrincipals: [{ secret: "s" }],
    imds: [{ vmss: "MC/pool", instance: 1, port: 0 }],
  });
  assert.equal(c.lroDurationMs, 0);
  assert.deepEqual(c.throttle, { reads: { capacity: 5, refillPerSec: 1 }, writes: undefined });
  assert.deepEqual(c.vms, []);
  assert.equal(c.vmss[0].capacity, 3);
  assert.equal(c.imds[0].instance, 1);
});

Deno.test("config mistakes are reported with their path", () => {
  const cases: [unknown, RegExp][] = [
    [[], /config \$: must be an object/],
    [{ identitys: [] }, /\$\.identitys: unknown key/],
    [{ identities: [{ name: "x" }] }, /\$\.identities\[0\]\.resourceGroup: must be a non-empty string/],
    [
      { vms: [{ resourceGroup: "rg", name: "vm", systemAssigned: "yes" }] },
      /systemAssigned: must be true or false/,
    ],
    [
      { servicePrincipals: [{ clientId: "c" }] },
      /servicePrincipals\[0\]: needs a secret or a certificateFile/,
    ],
    [{ imds: [{ vm: "rg/a", vmss: "rg/b" }] }, /imds\[0\]: needs exactly one of vm, vmss/],
    [{ lroDurationMs: -1 }, /lroDurationMs: must be a number >= 0/],
    [{ throttle: { reads: { capacity: 0, refillPerSec: 1 } } }, /capacity: must be a number >= 1/],
  ];
  for (const [raw, pattern] of cases) assert.throws(() => parseEmulatorConfig(raw), pattern);
});
