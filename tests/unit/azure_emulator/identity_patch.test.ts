import assert from "node:assert/strict";
import { armError } from "../../../scripts/sandbox/azure/arm_errors.ts";
import {
  type ApplyContext,
  applyIdentityPatch,
  type AttachedUserIdentity,
  emptyIdentity,
  type IdentityBlock,
  type IdentityPatch,
  identityToJson,
  parseIdentityPatch,
  parseIdentityType,
} from "../../../scripts/sandbox/azure/identity_patch.ts";
import { idKey } from "../../../scripts/sandbox/azure/ids.ts";

const SUB = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities";
const A = `${SUB}/a`;
const B = `${SUB}/b`;
const C = `${SUB}/c`;
const VM = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm";

const known = new Map<string, AttachedUserIdentity>(
  [A, B, C].map((id, i) => [idKey(id), { id, clientId: `client-${i}`, principalId: `principal-${i}` }]),
);

function ctx(overrides: Partial<ApplyContext> = {}): ApplyContext {
  let n = 0;
  return {
    resourceId: VM,
    lookup: (key) => known.get(key),
    mayAssign: () => true,
    linkedAuthorizationFailed: (ids) => armError(403, "LinkedAuthorizationFailed", ids.join(",")),
    newSystemIdentity: () => ({ principalId: `sys-${++n}`, clientId: `sysapp-${n}` }),
    ...overrides,
  };
}

function patch(body: unknown): IdentityPatch {
  const parsed = parseIdentityPatch(body);
  if (!parsed.ok) throw new Error(`unexpected parse error ${parsed.error.code}: ${parsed.error.message}`);
  if (!parsed.value) throw new Error("no patch");
  return parsed.value;
}

function apply(current: IdentityBlock, body: unknown, c = ctx()): IdentityBlock {
  const r = applyIdentityPatch(current, patch(body), c);
  if (!r.ok) throw new Error(`unexpected apply error ${r.error.code}: ${r.error.message}`);
  return r.value.next;
}

const userIds = (b: IdentityBlock) => [...b.userAssigned.values()].map((u) => u.id).sort();

Deno.test("identity type spellings are parsed the way ARM accepts them", () => {
  assert.deepEqual(parseIdentityType("userassigned"), "UserAssigned");
  assert.deepEqual(parseIdentityType("SystemAssigned,UserAssigned"), "SystemAssigned, UserAssigned");
  assert.deepEqual(parseIdentityType("SystemAssigned, UserAssigned"), "SystemAssigned, UserAssigned");
  assert.deepEqual(parseIdentityType("NONE"), "None");
  assert.deepEqual(parseIdentityType("Managed"), undefined);
  assert.deepEqual(parseIdentityType(3), undefined);
});

Deno.test("PATCH adds with {} and merges into the existing dictionary", () => {
  let block = apply(emptyIdentity(), { type: "UserAssigned", userAssignedIdentities: { [A]: {} } });
  assert.deepEqual(block.type, "UserAssigned");
  assert.deepEqual(userIds(block), [A]);
  block = apply(block, { type: "UserAssigned", userAssignedIdentities: { [B]: {} } });
  assert.deepEqual(userIds(block), [A, B]);
  assert.deepEqual(block.userAssigned.get(idKey(B))?.clientId, "client-1");
});

Deno.test("PATCH removes with null and compares ids case-insensitively", () => {
  let block = apply(emptyIdentity(), { type: "UserAssigned", userAssignedIdentities: { [A]: {}, [B]: {} } });
  block = apply(block, { type: "UserAssigned", userAssignedIdentities: { [A.toUpperCase()]: null } });
  assert.deepEqual(userIds(block), [B]);
  // Adding an id already present under another casing does not duplicate it.
  block = apply(block, {
    type: "UserAssigned",
    userAssignedIdentities: { [B.replace("resourceGroups", "RESOURCEGROUPS")]: {} },
  });
  assert.deepEqual(userIds(block), [B]);
});

Deno.test("removing the last user identity needs type None or SystemAssigned, as Compute requires", () => {
  const block = apply(emptyIdentity(), { type: "UserAssigned", userAssignedIdentities: { [A]: {} } });
  const r = applyIdentityPatch(
    block,
    patch({ type: "UserAssigned", userAssignedIdentities: { [A]: null } }),
    ctx(),
  );
  assert.ok(!r.ok);
  assert.deepEqual(r.error.status, 400);
  assert.deepEqual(r.error.code, "InvalidParameter");
  const none = apply(block, { type: "None" });
  assert.deepEqual(none.type, "None");
  assert.deepEqual(none.userAssigned.size, 0);
});

Deno.test("type UserAssigned without any identity is rejected with InvalidParameter", () => {
  const r = applyIdentityPatch(emptyIdentity(), patch({ type: "UserAssigned" }), ctx());
  assert.ok(!r.ok);
  assert.deepEqual([r.error.status, r.error.code], [400, "InvalidParameter"]);
});

Deno.test("a non-UserAssigned type with identity ids is rejected, nulls included (aad-pod-identity #214)", () => {
  for (const type of ["SystemAssigned", "None"]) {
    const parsed = parseIdentityPatch({ type, userAssignedIdentities: { [A]: null } });
    assert.ok(!parsed.ok);
    assert.deepEqual([parsed.error.status, parsed.error.code], [400, "InvalidParameter"]);
    assert.ok(parsed.error.message.includes(type));
  }
});

Deno.test("the system-assigned identity survives user changes and the last removal", () => {
  const c = ctx();
  let block = apply(emptyIdentity(), { type: "SystemAssigned" }, c);
  const system = block.system;
  assert.deepEqual(system, { principalId: "sys-1", clientId: "sysapp-1" });
  block = apply(block, { type: "SystemAssigned, UserAssigned", userAssignedIdentities: { [A]: {} } }, c);
  assert.equal(block.system, system);
  block = apply(block, { type: "SystemAssigned" }, c);
  assert.deepEqual(block.type, "SystemAssigned");
  assert.equal(block.system, system);
  assert.deepEqual(block.userAssigned.size, 0);
});

Deno.test("sending UserAssigned to a VM with a system identity drops it, as Azure does", () => {
  const c = ctx();
  let block = apply(emptyIdentity(), { type: "SystemAssigned" }, c);
  block = apply(block, { type: "UserAssigned", userAssignedIdentities: { [A]: {} } }, c);
  assert.deepEqual(block.system, undefined);
  block = apply(block, { type: "SystemAssigned, UserAssigned" }, c);
  assert.deepEqual(block.system?.principalId, "sys-2");
  assert.deepEqual(userIds(block), [A]);
});

Deno.test("identities the caller may not assign fail with LinkedAuthorizationFailed naming them", () => {
  const r = applyIdentityPatch(
    emptyIdentity(),
    patch({ type: "UserAssigned", userAssignedIdentities: { [A]: {}, [B]: {}, [C]: {} } }),
    ctx({ mayAssign: (id) => id === A }),
  );
  assert.ok(!r.ok);
  assert.deepEqual([r.error.status, r.error.code, r.error.message], [
    403,
    "LinkedAuthorizationFailed",
    `${B},${C}`,
  ]);
});

Deno.test("identities that do not exist fail with FailedIdentityOperation naming them", () => {
  const missing = `${SUB}/ghost`;
  const r = applyIdentityPatch(
    emptyIdentity(),
    patch({ type: "UserAssigned", userAssignedIdentities: { [A]: {}, [missing]: {} } }),
    ctx(),
  );
  assert.ok(!r.ok);
  assert.deepEqual([r.error.status, r.error.code], [400, "FailedIdentityOperation"]);
  assert.ok(r.error.message.includes(missing));
  assert.ok(r.error.message.includes(VM));
  assert.ok(!r.error.message.includes(`'${A}'`));
});

Deno.test("malformed identity bodies are rejected with Compute's error codes", () => {
  const cases: [unknown, number, string][] = [
    ["UserAssigned", 400, "InvalidRequestContent"],
    [{ userAssignedIdentities: { [A]: {} } }, 400, "InvalidParameter"],
    [{ type: "Bogus" }, 400, "InvalidRequestContent"],
    [{ type: "UserAssigned", userAssignedIdentities: [A] }, 400, "InvalidRequestContent"],
    [{ type: "UserAssigned", userAssignedIdentities: { [A]: "yes" } }, 400, "InvalidRequestContent"],
    [{ type: "UserAssigned", userAssignedIdentities: { "not-an-id": {} } }, 400, "InvalidParameter"],
    [{ type: "UserAssigned", userAssignedIdentities: { [VM]: {} } }, 400, "InvalidParameter"],
    [
      { type: "UserAssigned", userAssignedIdentities: { [A]: {}, [A.toLowerCase()]: null } },
      400,
      "InvalidParameter",
    ],
  ];
  for (const [body, status, code] of cases) {
    const parsed = parseIdentityPatch(body);
    assert.ok(!parsed.ok, `accepted ${JSON.stringify(body)}`);
    assert.deepEqual([parsed.error.status, parsed.error.code], [status, code], JSON.stringify(body));
  }
  const absent = parseIdentityPatch(undefined);
  assert.ok(absent.ok && absent.value === undefined);
});

Deno.test("the GET shape echoes ids with lower-case resourcegroups and omits a None identity", () => {
  assert.deepEqual(identityToJson(emptyIdentity(), "t1"), undefined);
  const c = ctx();
  const block = apply(emptyIdentity(), {
    type: "SystemAssigned, UserAssigned",
    userAssignedIdentities: { [A]: {} },
  }, c);
  assert.deepEqual(identityToJson(block, "t1"), {
    type: "SystemAssigned, UserAssigned",
    principalId: "sys-1",
    tenantId: "t1",
    userAssignedIdentities: {
      [A.replace("resourceGroups", "resourcegroups")]: { principalId: "principal-0", clientId: "client-0" },
    },
  });
});

Deno.test("one id twice in one PATCH, in any casing or with opposite ops, is InvalidParameter", () => {
  for (const second of [A.toUpperCase(), A.replace("/resourceGroups/", "/resourcegroups/")]) {
    for (const value of [{}, null]) {
      const parsed = parseIdentityPatch({
        type: "UserAssigned",
        userAssignedIdentities: { [A]: {}, [second]: value },
      });
      assert.equal(parsed.ok, false);
      if (parsed.ok) continue;
      assert.equal(parsed.error.code, "InvalidParameter");
      assert.equal(parsed.error.target, "resourceIdentity.identityIds");
      assert.match(parsed.error.message, /cannot be duplicated in the provided identityIds list/);
    }
  }
});

Deno.test("more ids in one PATCH than the limit is FailedIdentityOperation naming the count and the limit", () => {
  const body = { type: "UserAssigned", userAssignedIdentities: { [A]: {}, [B]: {}, [C]: null } };
  const over = applyIdentityPatch(emptyIdentity(), patch(body), ctx({ maxIdentitiesPerRequest: 2 }));
  assert.equal(over.ok, false);
  if (!over.ok) {
    assert.equal(over.error.code, "FailedIdentityOperation");
    assert.match(
      over.error.message,
      /User Assigned Identities Number '3' Assign exceed limit '2' in one request\./,
    );
  }
  assert.ok(applyIdentityPatch(emptyIdentity(), patch(body), ctx({ maxIdentitiesPerRequest: 3 })).ok);
});

Deno.test("an attached identity whose principal is gone renders with null ids", () => {
  const block: IdentityBlock = {
    type: "UserAssigned",
    userAssigned: new Map([[idKey(A), known.get(idKey(A))!], [idKey(B), known.get(idKey(B))!]]),
  };
  const json = identityToJson(block, "t", (u) => u.id !== A)!;
  const values = Object.values(json.userAssignedIdentities!);
  assert.deepEqual(values, [{ principalId: null, clientId: null }, {
    principalId: "principal-1",
    clientId: "client-1",
  }]);
});
