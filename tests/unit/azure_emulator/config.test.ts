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

Deno.test("the Azure-reality options parse from the config file", () => {
  const c = parseEmulatorConfig({
    lroDurationMs: { minMs: 10000, maxMs: 60000 },
    imdsPropagationDelayMs: 0,
    computeThrottle: {
      policies: [{
        name: "PutVM3Min",
        kind: "vm",
        operation: "write",
        windowSeconds: 180,
        allowedRequestCount: 3,
      }],
      retryAfterSeconds: 5,
    },
    maxIdentitiesPerPatch: 150,
    knownResources: ["https://custom.example"],
    strictResources: true,
    imdsMetadataHeader: "case-insensitive",
    identities: [{ resourceGroup: "rg", name: "id1", writeScopes: ["/subscriptions/s/resourceGroups/MC"] }],
    servicePrincipals: [{ secret: "s", writeScopes: [] }],
  });
  assert.deepEqual(c.lroDurationMs, { minMs: 10000, maxMs: 60000 });
  assert.equal(c.imdsPropagationDelayMs, 0);
  assert.deepEqual(c.computeThrottle, {
    policies: [{
      name: "PutVM3Min",
      kind: "virtualMachines",
      operation: "write",
      windowSeconds: 180,
      allowedRequestCount: 3,
    }],
    retryAfterSeconds: 5,
  });
  assert.equal(c.imdsMetadataHeader, "case-insensitive");
  assert.deepEqual(c.servicePrincipals[0].writeScopes, []);
  assert.deepEqual(c.identities[0].writeScopes, ["/subscriptions/s/resourceGroups/MC"]);
  assert.equal(parseEmulatorConfig({ computeThrottle: false }).computeThrottle, false);

  const bad: [unknown, RegExp][] = [
    [{ lroDurationMs: { minMs: 5, maxMs: 1 } }, /lroDurationMs: must be a number or \{minMs, maxMs\}/],
    [
      { computeThrottle: { policies: [{ name: "p", kind: "disk", operation: "write" }] } },
      /kind: must be vm or vmss/,
    ],
    [{ imdsMetadataHeader: "loose" }, /imdsMetadataHeader: must be exact or case-insensitive/],
    [{ maxIdentitiesPerPatch: 0 }, /maxIdentitiesPerPatch: must be a number >= 1/],
    [{ imdsPropagationDelayMs: -5 }, /imdsPropagationDelayMs: must be a number >= 0/],
  ];
  for (const [raw, pattern] of bad) assert.throws(() => parseEmulatorConfig(raw), pattern);
});
