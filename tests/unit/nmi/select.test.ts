import assert from "node:assert/strict";
import { grantsForPod, type IdentityCatalog } from "../../../lib/api/matching.ts";
import type { AzureIdentity, AzureIdentityBinding } from "../../../lib/api/types.ts";
import { type CallerPod, selectIdentity, type SelectInput } from "../../../nmi/select.ts";
import { assigned, binding, exception, identity } from "./fixtures.ts";

function catalog(ids: AzureIdentity[], bindings: AzureIdentityBinding[]): IdentityCatalog {
  return {
    bindingsForSelector: (s) => bindings.filter((b) => b.spec.selector === s),
    identity: (ns, name) => ids.find((i) => i.metadata.namespace === ns && i.metadata.name === name),
  };
}

const NODE = "node-a";
const MIC_SA = "aad-pod-id-mic-service-account";
const podA: CallerPod = { name: "a", namespace: "apps", labels: { aadpodidbinding: "sel-a" } };

function input(
  pod: CallerPod,
  ids: AzureIdentity[],
  bindings: AzureIdentityBinding[],
  extra: Partial<SelectInput> = {},
): SelectInput {
  const forceNamespaced = false;
  return {
    mode: "standard",
    node: NODE,
    micNamespace: "default",
    micServiceAccount: MIC_SA,
    pod,
    request: {},
    exceptions: [],
    grants: grantsForPod(pod, catalog(ids, bindings), extra.mode === "managed" || forceNamespaced),
    assigned: [],
    ...extra,
  };
}

Deno.test("no binding selects the pod: 400 at once (credential chains move on)", () => {
  const s = selectIdentity(input({ ...podA, labels: {} }, [], []));
  assert.equal(s.kind, "refuse");
  assert.ok(
    s.kind === "refuse" && s.refusal.kind === "invalid" && /no AzureIdentityBinding/.test(s.refusal.message),
  );
});

Deno.test("standard mode: served only when the assignment is Assigned (or legacy empty); else wait", () => {
  const id = identity("apps", "id-a");
  const b = binding("apps", "b-a", "id-a", "sel-a");
  for (
    const [status, kind] of [["Assigned", "identity"], ["", "identity"], ["Created", "wait"], [
      "Unassigned",
      "wait",
    ]]
  ) {
    const s = selectIdentity(input(podA, [id], [b], { assigned: [assigned(id, b, podA, NODE, status)] }));
    assert.equal(s.kind, kind, status);
  }
  const none = selectIdentity(input(podA, [id], [b]));
  assert.equal(none.kind, "wait");
});

Deno.test("an Assigned AzureAssignedIdentity without a live binding serves nothing (binding deleted)", () => {
  const id = identity("apps", "id-a");
  const b = binding("apps", "b-a", "id-a", "sel-a");
  const s = selectIdentity(input(podA, [id], [], { assigned: [assigned(id, b, podA, NODE, "Assigned")] }));
  assert.equal(s.kind, "refuse");
});

Deno.test("assignments for another pod, another node or an edited identity do not count", () => {
  const id = identity("apps", "id-a");
  const b = binding("apps", "b-a", "id-a", "sel-a");
  const other = { name: "b", namespace: "apps" };
  assert.equal(
    selectIdentity(input(podA, [id], [b], { assigned: [assigned(id, b, other, NODE, "Assigned")] })).kind,
    "wait",
  );
  assert.equal(
    selectIdentity(input(podA, [id], [b], { assigned: [assigned(id, b, podA, "node-b", "Assigned")] })).kind,
    "wait",
  );
  const edited = { ...id, spec: { ...id.spec, clientID: "11111111-1111-1111-1111-111111111111" } };
  assert.equal(
    selectIdentity(input(podA, [edited], [b], { assigned: [assigned(id, b, podA, NODE, "Assigned")] })).kind,
    "wait",
  );
});

Deno.test("asking for another pod's identity by client_id, msi_res_id or object_id is 403", () => {
  const mine = identity("apps", "id-a");
  const theirs = identity("apps", "id-b");
  const b = binding("apps", "b-a", "id-a", "sel-a");
  const base = input(podA, [mine, theirs], [b], { assigned: [assigned(mine, b, podA, NODE, "Assigned")] });
  for (
    const request of [
      { clientId: theirs.spec.clientID },
      { clientId: theirs.spec.clientID.toUpperCase() },
      { resourceId: theirs.spec.resourceID },
      { objectId: "oid-b" },
    ]
  ) {
    const s = selectIdentity({
      ...base,
      request,
      principalIdOf: (i) => i.metadata.name === "id-a" ? "oid-a" : "oid-b",
    });
    assert.ok(s.kind === "refuse" && s.refusal.kind === "forbidden", JSON.stringify(request));
  }
});

Deno.test("selector forms match case-insensitively; object_id matches only a known principal id", () => {
  const mine = identity("apps", "id-a");
  const b = binding("apps", "b-a", "id-a", "sel-a");
  const base = input(podA, [mine], [b], { assigned: [assigned(mine, b, podA, NODE, "Assigned")] });
  for (
    const request of [
      { clientId: mine.spec.clientID.toUpperCase() },
      { resourceId: mine.spec.resourceID.toLowerCase() },
    ]
  ) assert.equal(selectIdentity({ ...base, request }).kind, "identity");
  // The token flow learns principal ids before selecting (TokenService.learnPrincipals); unknown is no match.
  const unknown = selectIdentity({ ...base, request: { objectId: "OID-A" } });
  assert.ok(unknown.kind === "refuse" && unknown.refusal.kind === "forbidden");
  const known = selectIdentity({ ...base, request: { objectId: "OID-A" }, principalIdOf: () => "oid-a" });
  assert.equal(known.kind, "identity");
});

Deno.test("several identities, none named: highest weight, then namespace/name; waits for that one", () => {
  const x = identity("apps", "x");
  const y = identity("apps", "y");
  const bx = binding("apps", "bx", "x", "sel-a");
  const by = binding("apps", "by", "y", "sel-a");
  const both = [assigned(x, bx, podA, NODE, "Assigned"), assigned(y, by, podA, NODE, "Assigned")];
  const s1 = selectIdentity(input(podA, [y, x], [by, bx], { assigned: both }));
  assert.ok(s1.kind === "identity" && s1.identity.metadata.name === "x");
  const heavy = binding("apps", "by", "y", "sel-a", 10);
  const s2 = selectIdentity(input(podA, [x, y], [bx, heavy], { assigned: both }));
  assert.ok(s2.kind === "identity" && s2.identity.metadata.name === "y");
  // x is first but only y is assigned: wait for x rather than answer with whichever came first.
  const s3 = selectIdentity(input(podA, [x, y], [bx, by], { assigned: [both[1]] }));
  assert.ok(s3.kind === "wait" && s3.identity.metadata.name === "x");
});

Deno.test("namespaced: by flag or annotation, identities of other namespaces are not granted", () => {
  const foreign = identity("other", "id-f");
  const annotated = identity("other", "id-n", {}, { "aadpodidentity.k8s.io/Behavior": "namespaced" });
  const bf = binding("other", "bf", "id-f", "sel-a");
  const bn = binding("other", "bn", "id-n", "sel-a");
  const open = input(podA, [foreign], [bf]);
  assert.equal(open.grants.length, 1);
  const forced = { ...open, grants: grantsForPod(podA, catalog([foreign], [bf]), true) };
  assert.equal(selectIdentity(forced).kind, "refuse");
  assert.equal(selectIdentity(input(podA, [annotated], [bn])).kind, "refuse");
});

Deno.test("managed mode: bindings alone decide, no waiting", () => {
  const id = identity("apps", "id-a");
  const b = binding("apps", "b-a", "id-a", "sel-a");
  const s = selectIdentity(input(podA, [id], [b], { mode: "managed" }));
  assert.ok(s.kind === "identity" && s.identity.metadata.name === "id-a");
});

Deno.test("exceptions (all labels, value case-insensitive) and MIC's pods get the node identity", () => {
  const ex = exception("apps", { app: "Ingress", tier: "edge" });
  const pod = { ...podA, labels: { app: "ingress", tier: "edge" } };
  const s = selectIdentity(input(pod, [], [], { exceptions: [ex] }));
  assert.deepEqual(s, { kind: "node", reason: "exception" });
  const partial = { ...podA, labels: { app: "ingress" } };
  assert.equal(selectIdentity(input(partial, [], [], { exceptions: [ex] })).kind, "refuse");
  const mic: CallerPod = {
    name: "mic-7c-x",
    namespace: "kube-system",
    labels: {},
    serviceAccountName: MIC_SA,
  };
  assert.deepEqual(selectIdentity(input(mic, [], [], { micNamespace: "kube-system" })), {
    kind: "node",
    reason: "mic",
  });
  // MIC's service account name in another namespace is an ordinary pod.
  assert.equal(
    selectIdentity(input({ ...mic, namespace: "apps" }, [], [], { micNamespace: "kube-system" })).kind,
    "refuse",
  );
});

Deno.test("the MIC impostor: label app=mic and a ReplicaSet mic-* in MIC's namespace get nothing", () => {
  // Issue 19 item 3: the original recognised MIC by its owner's name (and the default mic-exception by any
  // one of its labels); only MIC's service account counts now.
  const impostor: CallerPod = {
    name: "mic-6d9f-abcde",
    namespace: "default",
    labels: { app: "mic" },
    serviceAccountName: "default",
  };
  const micException = exception("default", { app: "mic", component: "mic" });
  const s = selectIdentity(input(impostor, [], [], { exceptions: [micException] }));
  assert.equal(s.kind, "refuse");
});
