import assert from "node:assert/strict";
import type { IdentityArm } from "../../../lib/azure/arm_client.ts";
import { parseRetryAfter as parseRetryAfterMs } from "../../../lib/retry_after.ts";
import type { CurrentIdentity } from "../../../lib/azure/identity_delta.ts";
import { memoryLogger } from "../../../lib/log.ts";
import { Backoffs } from "../../../mic/backoffs.ts";
import { plan } from "../../../mic/planner.ts";
import { blamedIds, type JobWriter, NotLeader, TargetJobs } from "../../../mic/target_jobs.ts";
import { binding, identity as identity_, pod, state, stored } from "./fixtures.ts";

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

// ---- one job on one scale set, against a scripted ARM and a recording writer ----------------------------

const ID =
  "/subscriptions/s/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mine";

interface Rig {
  jobs: TargetJobs;
  leader: { now: boolean };
  calls: string[];
  events: { reason: string; message: string; kind: string }[];
  run(clientId?: string): Promise<void>;
}

/** `armClientId`: the client id ARM reports for ID once attached; `onGet` runs when the GET arrives. */
function rig(armClientId: string, onGet: (r: Rig) => void = () => {}): Rig {
  const calls: string[] = [];
  const events: Rig["events"] = [];
  const leader = { now: true };
  let attached = false;
  const identity = (): CurrentIdentity => ({
    type: attached ? "UserAssigned" : "None",
    userAssigned: attached ? [{ id: ID, resolved: true, clientId: armClientId }] : [],
  });
  const arm: IdentityArm = {
    getIdentity: () => {
      calls.push("GET");
      onGet(r);
      return Promise.resolve(identity());
    },
    patchIdentity: () => {
      calls.push("PATCH");
      attached = true;
      return Promise.resolve(identity());
    },
    deadlines: () => ({ readUntil: 0, writeUntil: 0 }),
  };
  const writer: JobWriter = {
    release: () => Promise.resolve(),
    markAssigned: (a) => (calls.push(`assigned ${a?.metadata.name}`), Promise.resolve()),
    warnBindings: (
      _list,
      reason,
      message,
    ) => (events.push({ reason, message, kind: "binding" }), Promise.resolve()),
    event: (o, _type, reason, message) => (events.push({ reason, message, kind: o.kind }), Promise.resolve()),
  };
  const policy = { baseMs: 1_000, maxMs: 10_000, jitter: 0 };
  const jobs = new TargetJobs({
    arm,
    writer,
    log: memoryLogger(),
    writeConcurrency: 2,
    armConcurrency: 2,
    targetBackoff: new Backoffs(policy),
    identityBackoff: new Backoffs(policy),
    fence: () => {
      if (!leader.now) throw new NotLeader("not the leader");
    },
    signal: () => new AbortController().signal,
    wakeAt: () => {},
  });
  const r: Rig = {
    jobs,
    leader,
    calls,
    events,
    async run(clientId = "client-mine") {
      const s = state({
        pods: [pod("app", "a", "n1", "web")],
        identities: [identity_("app", "mine", { resourceID: ID, clientID: clientId })],
        bindings: [binding("app", "b1", "mine", "web")],
      });
      const p = plan(s, { forceNamespaced: false, immutableClientIds: [] });
      const objects = new Map(p.create.map((a) => [`${a.metadata.namespace}/${a.metadata.name}`, stored(a)]));
      jobs.start(p.targets[0], objects, () => {});
      await jobs.idle();
    },
  };
  return r;
}

Deno.test("target job: leadership lost between the GET and the PATCH -> no PATCH is sent", async () => {
  const lost = rig("client-mine", (r) => (r.leader.now = false));
  await lost.run();
  assert.deepEqual(lost.calls, ["GET"]);
  const kept = rig("client-mine");
  await kept.run();
  assert.deepEqual(kept.calls, ["GET", "PATCH", "assigned a-app-mine"]);
});

Deno.test("target job: a client id ARM does not report for the resource id is refused, once", async () => {
  const r = rig("client-victim");
  await r.run("client-mine");
  assert.deepEqual(r.calls, ["GET", "PATCH"]); // attached (ARM checks the resource id only), never Assigned
  assert.deepEqual(r.events.map((e) => [e.kind, e.reason]), [["AzureIdentity", "ClientIDMismatch"]]);
  assert.match(r.events[0].message, /client-mine.*mine.*client-victim/);
  await r.run("client-mine"); // the next cycle plans it again: no ARM call, no second event
  assert.deepEqual(r.calls, ["GET", "PATCH"]);
  assert.equal(r.events.length, 1);
  await r.run("client-victim"); // fixed AzureIdentity: assigned without a PATCH (already attached)
  assert.deepEqual(r.calls, ["GET", "PATCH", "GET", "assigned a-app-mine"]);
});
