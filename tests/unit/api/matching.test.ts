import assert from "node:assert/strict";
import {
  assignedIdentityName,
  assignedIdentityNamespace,
  grantsForPod,
  type IdentityCatalog,
  identityMatchesRequest,
  isFederatedIdentity,
  isPodExcepted,
  needsArmAssignment,
  parseUserAssignedId,
  type PodRef,
  sameId,
} from "../../../lib/api/matching.ts";
import {
  normalizeAzureIdentity,
  normalizeAzureIdentityBinding,
  normalizeAzurePodIdentityException,
} from "../../../lib/api/normalize.ts";
import type { AzureIdentity, AzureIdentityBinding } from "../../../lib/api/types.ts";

const API = "aadpodidentity.k8s.io/v1";
const rid = (name: string) =>
  `/subscriptions/s1/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;

function identity(ns: string, name: string, extra: Record<string, unknown> = {}): AzureIdentity {
  return normalizeAzureIdentity({
    apiVersion: API,
    kind: "AzureIdentity",
    metadata: { name, namespace: ns, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: {
      type: extra.type ?? 0,
      resourceID: rid(name),
      clientID: `00000000-0000-4000-8000-${name.padStart(12, "0")}`,
    },
  });
}

function binding(ns: string, name: string, idName: string, selector: string): AzureIdentityBinding {
  return normalizeAzureIdentityBinding({
    apiVersion: API,
    kind: "AzureIdentityBinding",
    metadata: { name, namespace: ns },
    spec: { azureIdentity: idName, selector },
  });
}

function catalog(ids: AzureIdentity[], bindings: AzureIdentityBinding[]): IdentityCatalog {
  return {
    bindingsForSelector: (s) => bindings.filter((b) => b.spec.selector === s),
    identity: (ns, n) => ids.find((i) => i.metadata.namespace === ns && i.metadata.name === n),
  };
}

const pod = (ns: string, label?: string): PodRef => ({
  name: "p",
  namespace: ns,
  labels: label ? { aadpodidbinding: label } : {},
});

Deno.test("matching: selector equality, identity in the binding's namespace, stable order", () => {
  const ids = [identity("a", "id1"), identity("b", "id2"), identity("a", "other")];
  const bs = [
    binding("b", "zb", "id2", "app"),
    binding("a", "ab", "id1", "app"),
    binding("a", "wrong-ns", "id2", "app"), // names an identity that lives in b, not a
    binding("a", "other-sel", "other", "App"), // selectors compare exactly
  ];
  const grants = grantsForPod(pod("c", "app"), catalog(ids, bs), false);
  assert.deepEqual(grants.map((g) => `${g.binding.metadata.name}->${g.identity.metadata.name}`), [
    "ab->id1",
    "zb->id2",
  ]);
  assert.deepEqual(grantsForPod(pod("c"), catalog(ids, bs), false), []);
});

Deno.test("matching: namespaced by flag or by the Behavior annotation", () => {
  const ids = [
    identity("a", "id1"),
    identity("b", "id2", { annotations: { "aadpodidentity.k8s.io/Behavior": "namespaced" } }),
  ];
  const bs = [binding("a", "b1", "id1", "app"), binding("b", "b2", "id2", "app")];
  const names = (ns: string, force: boolean) =>
    grantsForPod(pod(ns, "app"), catalog(ids, bs), force).map((g) => g.identity.metadata.name);
  assert.deepEqual(names("a", false), ["id1"]); // id2 is namespaced to b
  assert.deepEqual(names("b", false), ["id1", "id2"]);
  assert.deepEqual(names("a", true), ["id1"]);
  assert.deepEqual(names("c", true), []);
  assert.equal(assignedIdentityNamespace(ids[0], false), "default");
  assert.equal(assignedIdentityNamespace(ids[0], true), "a");
  assert.equal(assignedIdentityNamespace(ids[1], false), "b");
  assert.equal(assignedIdentityName("web-1", "apps", "id1"), "web-1-apps-id1");
});

Deno.test("matching: an exception matches only when all its labels match, values case-insensitively", () => {
  const ex = normalizeAzurePodIdentityException({
    apiVersion: API,
    kind: "AzurePodIdentityException",
    metadata: { name: "mic-exception", namespace: "default" },
    spec: { podLabels: { app: "mic", component: "mic" } },
  });
  assert.equal(isPodExcepted({ app: "MIC", component: "mic" }, [ex]), true);
  assert.equal(isPodExcepted({ app: "mic", component: "Mic", other: "x" }, [ex]), true);
  // One label of two is not enough (issue 19: a pod labelled app=mic posed as MIC).
  assert.equal(isPodExcepted({ app: "mic" }, [ex]), false);
  assert.equal(isPodExcepted({ component: "mic", other: "x" }, [ex]), false);
  const empty = normalizeAzurePodIdentityException({
    apiVersion: API,
    kind: "AzurePodIdentityException",
    metadata: { name: "empty", namespace: "default" },
    spec: { podLabels: {} },
  });
  assert.equal(isPodExcepted({ app: "x" }, [empty]), false);
  assert.equal(isPodExcepted({ app: "nmi" }, [ex]), false);
  assert.equal(isPodExcepted({ app: "mic" }, []), false);
});

Deno.test("matching: requested ids compare case-insensitively; only type 0 needs ARM", () => {
  const id = identity("a", "id1");
  assert.equal(identityMatchesRequest(id, { clientId: id.spec.clientID.toUpperCase() }), true);
  assert.equal(
    identityMatchesRequest(id, {
      resourceId: id.spec.resourceID.replace("resourcegroups", "resourceGroups"),
    }),
    true,
  );
  assert.equal(identityMatchesRequest(id, { clientId: "00000000-0000-4000-8000-000000000000" }), false);
  assert.equal(identityMatchesRequest(id, { objectId: "oid" }), false);
  assert.equal(identityMatchesRequest(id, { objectId: "OID" }, "oid"), true);
  assert.equal(identityMatchesRequest(id, {}), false);
  assert.equal(sameId("", ""), false);
  assert.equal(needsArmAssignment(id), true);
  assert.equal(needsArmAssignment(identity("a", "sp", { type: 1 })), false);
  assert.deepEqual(parseUserAssignedId(rid("x")), { subscription: "s1", resourceGroup: "rg", name: "x" });
  assert.equal(parseUserAssignedId("/subscriptions/s1/resourceGroups/rg/providers/Other/x/y"), undefined);
});

Deno.test("federated: the annotation wins over the cluster default; service principals never are", () => {
  const plain = identity("a", "plain");
  const on = identity("a", "on", { annotations: { "aadpodidentity.k8s.io/federated": "true" } });
  const off = identity("a", "off", { annotations: { "aadpodidentity.k8s.io/federated": "false" } });
  const odd = identity("a", "odd", { annotations: { "aadpodidentity.k8s.io/federated": "True" } });
  const sp = identity("a", "sp", { type: 1, annotations: { "aadpodidentity.k8s.io/federated": "true" } });
  assert.deepEqual([plain, on, off, odd, sp].map((i) => isFederatedIdentity(i, false)), [
    false,
    true,
    false,
    false,
    false,
  ]);
  assert.deepEqual([plain, on, off, odd, sp].map((i) => isFederatedIdentity(i, true)), [
    true,
    true,
    false,
    true,
    false,
  ]);
});
