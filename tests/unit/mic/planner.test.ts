import assert from "node:assert/strict";
import type { PlannerOptions } from "../../../mic/plan_types.ts";
import { plan } from "../../../mic/planner.ts";
import { binding, identity, pod, rid, state, stored } from "./fixtures.ts";

const opts: PlannerOptions = { forceNamespaced: false, immutableClientIds: [] };
const ss1 =
  "/subscriptions/sub1/resourcegroups/mc_rg/providers/microsoft.compute/virtualmachinescalesets/ss1";

Deno.test("planner: a bound pod gets a Created AzureAssignedIdentity and an add on its scale set", () => {
  const p = plan(
    state({
      pods: [pod("app", "web-0", "n1", "web")],
      identities: [identity("app", "id1")],
      bindings: [binding("app", "b1", "id1", "web")],
    }),
    opts,
  );
  assert.equal(p.create.length, 1);
  const a = p.create[0];
  assert.equal(a.metadata.name, "web-0-app-id1");
  assert.equal(a.metadata.namespace, "default");
  assert.deepEqual(a.metadata.labels, { nodename: "n1", podname: "web-0", podnamespace: "app" });
  assert.deepEqual(a.metadata.finalizers, ["azureassignedidentity.finalizers.aadpodidentity.k8s.io"]);
  assert.equal(a.status.status, "Created");
  assert.equal(a.spec.azureIdentityRef.kind, "AzureIdentity");
  assert.equal(a.spec.azureBindingRef.metadata.name, "b1");
  assert.equal(p.targets.length, 1);
  assert.equal(p.targets[0].target.key, ss1);
  assert.deepEqual(p.targets[0].add, [rid("id1")]);
  assert.deepEqual(p.targets[0].assign, [{
    key: "default/web-0-app-id1",
    resourceId: rid("id1"),
    clientId: "client-id1",
  }]);
});

Deno.test("planner: steady state (everything Assigned) plans nothing at all", () => {
  const s = state({
    pods: [pod("app", "web-0", "n1", "web"), pod("app", "web-1", "n3", "web")],
    identities: [identity("app", "id1")],
    bindings: [binding("app", "b1", "id1", "web")],
  });
  const first = plan(s, opts);
  const p = plan({ ...s, assigned: first.create.map((a) => stored(a)) }, opts);
  assert.deepEqual(p, {
    create: [],
    update: [],
    assignWithoutArm: [],
    releaseWithoutArm: [],
    targets: [],
    problems: [],
  });
});

Deno.test("planner: many pods on one scale set -> one add, sorted and case-insensitively unique", () => {
  const ids = [identity("app", "id1"), identity("app", "ID1-dup", { resourceID: rid("id1").toUpperCase() })];
  const p = plan(
    state({
      pods: ["a", "b", "c"].map((n, i) => pod("app", n, i === 2 ? "n2" : "n1", "web")),
      identities: ids,
      bindings: [binding("app", "b1", "id1", "web"), binding("app", "b2", "ID1-dup", "web")],
    }),
    opts,
  );
  assert.equal(p.create.length, 6);
  assert.equal(p.targets.length, 1);
  assert.equal(p.targets[0].add.length, 1);
  assert.equal(p.targets[0].assign.length, 6);
});

Deno.test("planner: pod deleted -> release; id detached only when no other pod on the scale set uses it", () => {
  const s = state({
    pods: [pod("app", "a", "n1", "web"), pod("app", "b", "n2", "web")],
    identities: [identity("app", "id1")],
    bindings: [binding("app", "b1", "id1", "web")],
  });
  const assigned = plan(s, opts).create.map((a) => stored(a));
  // a goes; b (same scale set, other node) still uses id1
  const p1 = plan({ ...s, pods: [s.pods[1]], assigned }, opts);
  assert.equal(p1.targets.length, 1);
  assert.deepEqual(p1.targets[0].remove, []);
  assert.deepEqual(p1.targets[0].release, [{
    key: "default/a-app-id1",
    resourceId: rid("id1"),
    detach: false,
  }]);
  // both go
  const p2 = plan({ ...s, pods: [], assigned }, opts);
  assert.deepEqual(p2.targets[0].remove, [rid("id1")]);
  assert.equal(p2.targets[0].release.length, 2);
  assert.ok(p2.targets[0].release.every((r) => r.detach));
});

Deno.test("planner: a pod on another scale set does not keep the id on this one", () => {
  const s = state({
    pods: [pod("app", "a", "n1", "web"), pod("app", "b", "n3", "web")],
    identities: [identity("app", "id1")],
    bindings: [binding("app", "b1", "id1", "web")],
  });
  const assigned = plan(s, opts).create.map((a) => stored(a));
  const p = plan({ ...s, pods: [s.pods[1]], assigned }, opts);
  assert.equal(p.targets.length, 1);
  assert.equal(p.targets[0].target.name, "ss1");
  assert.deepEqual(p.targets[0].remove, [rid("id1")]);
});

Deno.test("planner: immutable identities are never detached (client id, any case)", () => {
  const s = state({
    pods: [pod("app", "a", "n1", "web")],
    identities: [identity("app", "id1", { clientID: "AbC" })],
    bindings: [binding("app", "b1", "id1", "web")],
  });
  const assigned = plan(s, opts).create.map((a) => stored(a));
  const p = plan({ ...s, pods: [], assigned }, { ...opts, immutableClientIds: ["abc"] });
  assert.deepEqual(p.targets[0].remove, []);
  assert.deepEqual(p.targets[0].release, [{
    key: "default/a-app-id1",
    resourceId: rid("id1"),
    detach: false,
  }]);
});

Deno.test("planner: service principals (type 1/2) need no ARM change", () => {
  const s = state({
    pods: [pod("app", "a", "n1", "sp")],
    identities: [identity("app", "sp1", { type: 1 }), identity("app", "sp2", { type: 2 })],
    bindings: [binding("app", "b1", "sp1", "sp"), binding("app", "b2", "sp2", "sp")],
  });
  const p = plan(s, opts);
  assert.equal(p.create.length, 2);
  assert.deepEqual(p.targets, []);
  assert.deepEqual(p.assignWithoutArm, [{ key: "default/a-app-sp1" }, { key: "default/a-app-sp2" }]);
  const gone = plan({ ...s, pods: [], assigned: p.create.map((a) => stored(a)) }, opts);
  assert.deepEqual(gone.targets, []);
  assert.deepEqual(gone.releaseWithoutArm.map((r) => r.key), ["default/a-app-sp1", "default/a-app-sp2"]);
});

Deno.test("planner: namespaced by flag or annotation; AAI in the identity's namespace", () => {
  const ann = { "aadpodidentity.k8s.io/Behavior": "namespaced" };
  const s = state({
    pods: [pod("other", "a", "n1", "web"), pod("app", "b", "n1", "web")],
    identities: [identity("app", "id1")],
    bindings: [binding("app", "b1", "id1", "web")],
  });
  assert.deepEqual(plan(s, opts).create.map((a) => `${a.metadata.namespace}/${a.metadata.name}`), [
    "default/b-app-id1",
    "default/a-other-id1",
  ]);
  const forced = plan(s, { ...opts, forceNamespaced: true }).create;
  assert.deepEqual(forced.map((a) => `${a.metadata.namespace}/${a.metadata.name}`), ["app/b-app-id1"]);
  const annotated = plan({ ...s, identities: [identity("app", "id1", { annotations: ann })] }, opts).create;
  assert.deepEqual(annotated.map((a) => `${a.metadata.namespace}/${a.metadata.name}`), ["app/b-app-id1"]);
});

Deno.test("planner: same identity name in two namespaces no longer collides", () => {
  const p = plan(
    state({
      pods: [pod("app", "a", "n1", "web")],
      identities: [identity("ns1", "id"), identity("ns2", "id", { resourceID: rid("other") })],
      bindings: [binding("ns1", "b", "id", "web"), binding("ns2", "b", "id", "web")],
    }),
    opts,
  );
  assert.deepEqual(p.create.map((a) => a.metadata.name), ["a-app-id", "a-app-id-ns2"]);
  assert.deepEqual(p.targets[0].add, [rid("id"), rid("other")]);
});

Deno.test("planner: pod moves node -> update in place, old scale set released, new one added", () => {
  const s = state({
    pods: [pod("app", "a", "n1", "web")],
    identities: [identity("app", "id1")],
    bindings: [binding("app", "b1", "id1", "web")],
  });
  const assigned = plan(s, opts).create.map((a) => stored(a));
  const p = plan({ ...s, pods: [pod("app", "a", "n3", "web")], assigned }, opts);
  assert.equal(p.create.length, 0);
  assert.equal(p.update.length, 1);
  assert.equal(p.update[0].next.metadata.labels.nodename, "n3");
  assert.equal(p.update[0].next.metadata.resourceVersion, "7");
  assert.equal(p.update[0].next.status.status, "Created");
  assert.deepEqual(p.targets.map((t) => [t.target.name, t.add, t.remove]), [
    ["ss1", [], [rid("id1")]],
    ["ss2", [rid("id1")], []],
  ]);
  // moving within the same scale set needs no ARM change, only the label
  const same = plan({ ...s, pods: [pod("app", "a", "n2", "web")], assigned }, opts);
  assert.equal(same.update[0].next.status.status, "Assigned");
  assert.deepEqual(same.targets, []);
});

Deno.test("planner: identity resourceID edited -> old id released, new id added; label edit -> no write", () => {
  const s = state({
    pods: [pod("app", "a", "vm1", "web")],
    identities: [identity("app", "id1")],
    bindings: [binding("app", "b1", "id1", "web")],
  });
  const assigned = plan(s, opts).create.map((a) => stored(a));
  const p = plan({ ...s, identities: [identity("app", "id1", { resourceID: rid("id9") })], assigned }, opts);
  assert.equal(p.update.length, 1);
  assert.equal(p.targets[0].target.kind, "vm");
  assert.deepEqual(p.targets[0].add, [rid("id9")]);
  assert.deepEqual(p.targets[0].remove, [rid("id1")]);
  const relabelled = identity("app", "id1");
  relabelled.metadata.labels = { team: "x" };
  relabelled.metadata.resourceVersion = "99";
  assert.deepEqual(plan({ ...s, identities: [relabelled], assigned }, opts).update, []);
});

Deno.test("planner: binding deleted or pointed elsewhere", () => {
  const s = state({
    pods: [pod("app", "a", "n1", "web")],
    identities: [identity("app", "id1"), identity("app", "id2")],
    bindings: [binding("app", "b1", "id1", "web")],
  });
  const assigned = plan(s, opts).create.map((a) => stored(a));
  const gone = plan({ ...s, bindings: [], assigned }, opts);
  assert.deepEqual(gone.targets[0].remove, [rid("id1")]);
  const moved = plan({ ...s, bindings: [binding("app", "b1", "id2", "web")], assigned }, opts);
  assert.deepEqual(moved.create.map((a) => a.metadata.name), ["a-app-id2"]);
  assert.deepEqual(moved.targets[0].add, [rid("id2")]);
  assert.deepEqual(moved.targets[0].remove, [rid("id1")]);
});

Deno.test("planner: node gone -> released on the remembered scale set; unknown machine -> no ARM", () => {
  const s = state({
    pods: [pod("app", "a", "n1", "web")],
    identities: [identity("app", "id1")],
    bindings: [binding("app", "b1", "id1", "web")],
  });
  const assigned = plan(s, opts).create.map((a) => stored(a));
  const nodes = new Map(s.nodes);
  const remembered = nodes.get("n1")!;
  nodes.delete("n1");
  const p = plan({ ...s, nodes, pods: [], assigned, goneNodes: new Map([["n1", remembered]]) }, opts);
  assert.deepEqual(p.targets[0].remove, [rid("id1")]);
  const q = plan({ ...s, nodes, pods: [], assigned }, opts);
  assert.deepEqual(q.targets, []);
  assert.deepEqual(q.releaseWithoutArm, [{ key: "default/a-app-id1" }]);
  // a pod still listed on a node MIC has never seen gets nothing yet
  assert.deepEqual(plan({ ...s, nodes }, opts).create, []);
});

Deno.test("planner: Created objects are retried; Created objects never detach", () => {
  const s = state({
    pods: [pod("app", "a", "n1", "web")],
    identities: [identity("app", "id1")],
    bindings: [binding("app", "b1", "id1", "web")],
  });
  const created = plan(s, opts).create.map((a) => stored(a, "Created"));
  const retry = plan({ ...s, assigned: created }, opts);
  assert.deepEqual(retry.create, []);
  assert.deepEqual(retry.targets[0].add, [rid("id1")]);
  const gone = plan({ ...s, pods: [], assigned: created }, opts);
  assert.deepEqual(gone.targets, []);
  assert.equal(gone.releaseWithoutArm.length, 1);
  // legacy "" status counts as Assigned
  const legacy = plan({ ...s, assigned: plan(s, opts).create.map((a) => stored(a, "")) }, opts);
  assert.deepEqual(legacy.targets, []);
});

Deno.test("planner: bad input is reported and grants nothing, the rest is unaffected", () => {
  const p = plan(
    state({
      pods: [pod("app", "a", "n1", "web"), pod("app", "b", "n1", "x".repeat(60))],
      identities: [identity("app", "good"), identity("app", "bad", { resourceID: "not-an-id" })],
      bindings: [
        binding("app", "b-good", "good", "web"),
        binding("app", "b-bad", "bad", "web"),
        binding("app", "b-missing", "nope", "web"),
        binding("app", "b-long", "good", "x".repeat(10_000)),
      ],
    }),
    opts,
  );
  assert.deepEqual(p.create.map((a) => a.metadata.name), ["a-app-good"]);
  assert.deepEqual(p.problems.map((x) => `${x.object.kind} ${x.object.name} ${x.reason}`), [
    "AzureIdentity bad InvalidIdentity",
    "AzureIdentityBinding b-missing IdentityNotFound",
    "AzureIdentityBinding b-long InvalidBinding",
  ]);
  assert.ok(p.problems.every((x) => x.message.length < 600));
});

Deno.test("planner: very long names are cut to 253 characters, stably", () => {
  const long = "p".repeat(240);
  const p = plan(
    state({
      pods: [pod("app", long, "n1", "web")],
      identities: [identity("app", "id1")],
      bindings: [binding("app", "b1", "id1", "web")],
    }),
    opts,
  );
  const name = p.create[0].metadata.name;
  assert.ok(name.length <= 253);
  assert.equal(
    name,
    plan(
      state({
        ...p,
        pods: [pod("app", long, "n1", "web")],
        identities: [identity("app", "id1")],
        bindings: [binding("app", "b1", "id1", "web")],
      }),
      opts,
    ).create[0].metadata.name,
  );
});

Deno.test("planner: an id another Assigned object vouches for on the same scale set needs no ARM call", () => {
  const s = state({
    pods: [pod("app", "a", "n1", "web")],
    identities: [identity("app", "id1")],
    bindings: [binding("app", "b1", "id1", "web")],
  });
  const assigned = plan(s, opts).create.map((a) => stored(a));
  const more = {
    ...s,
    pods: [...s.pods, pod("app", "b", "n2", "web"), pod("app", "c", "n3", "web")],
    assigned,
  };
  const p = plan(more, opts);
  assert.deepEqual(p.assignWithoutArm, [{ key: "default/b-app-id1", targetKey: ss1 }]); // n2 is on ss1 like a
  assert.deepEqual(p.targets.map((t) => [t.target.name, t.add]), [["ss2", [rid("id1")]]]); // n3 is not
});

Deno.test("planner: drift repair re-asks ARM for vouched ids only when asked", () => {
  const s = state({
    pods: [pod("app", "a", "n1", "web")],
    identities: [identity("app", "id1")],
    bindings: [binding("app", "b1", "id1", "web")],
  });
  const assigned = plan(s, opts).create.map((a) => stored(a));
  assert.deepEqual(plan({ ...s, assigned }, opts).targets, []);
  const r = plan({ ...s, assigned }, { ...opts, repairDrift: true });
  assert.deepEqual(r.targets.map((t) => [t.target.name, t.add, t.assign]), [["ss1", [rid("id1")], []]]);
});

Deno.test("planner: an Assigned object vouches only for its own client id; another goes to ARM to be checked", () => {
  const s = state({
    pods: [pod("app", "a", "n1", "web")],
    identities: [identity("app", "id1")],
    bindings: [binding("app", "b1", "id1", "web")],
  });
  const assigned = plan(s, opts).create.map((a) => stored(a));
  // Another team's identity: the same resource id with someone else's client id.
  const theirs = {
    ...s,
    pods: [...s.pods, pod("team", "b", "n2", "steal")],
    identities: [
      ...s.identities,
      identity("team", "thief", { resourceID: rid("id1"), clientID: "client-victim" }),
    ],
    bindings: [...s.bindings, binding("team", "b2", "thief", "steal")],
    assigned,
  };
  const p = plan(theirs, opts);
  assert.deepEqual(p.assignWithoutArm, []);
  assert.deepEqual(p.targets.map((t) => [t.target.name, t.assign]), [[
    "ss1",
    [{ key: "default/b-team-thief", resourceId: rid("id1"), clientId: "client-victim" }],
  ]]);
});

Deno.test("planner: a re-check asked for one scale set re-asks ARM there only", () => {
  const s = state({
    pods: [pod("app", "a", "n1", "web"), pod("app", "c", "n3", "web")],
    identities: [identity("app", "id1")],
    bindings: [binding("app", "b1", "id1", "web")],
  });
  const assigned = plan(s, opts).create.map((a) => stored(a));
  const ss2 = plan({ ...s, assigned }, { ...opts, repairDrift: true }).targets.map((t) => t.target.key);
  assert.equal(ss2.length, 2);
  const r = plan({ ...s, assigned }, { ...opts, recheckTargets: new Set([ss1]) });
  assert.deepEqual(r.targets.map((t) => [t.target.key, t.add, t.assign]), [[ss1, [rid("id1")], []]]);
});
