// The observed state built from MIC's caches, without a server: objects go into the informers' stores
// through the same transform the watch applies.

import assert from "node:assert/strict";
import type { Pod, PodPhase } from "../../../lib/kube/core.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { memoryLogger } from "../../../lib/log.ts";
import { ObservedCache } from "../../../mic/observed_cache.ts";
import { offlineClient } from "./fixtures.ts";

const API = "aadpodidentity.k8s.io/v1";

function offlineCache(): ObservedCache {
  return new ObservedCache({ client: offlineClient(), log: memoryLogger() });
}

type Raw = KubeObject & Record<string, unknown>;

Deno.test("snapshot: a malformed object is reported (named, with the field) and left out of the state", () => {
  const cache = offlineCache();
  const bad = {
    apiVersion: API,
    kind: "AzureIdentity",
    metadata: { name: "bad", namespace: "app", uid: "u1", resourceVersion: "3", managedFields: [{}] },
    spec: { type: 9, clientID: "x" },
  } as Raw;
  const good = {
    apiVersion: API,
    kind: "AzureIdentity",
    metadata: { name: "good", namespace: "app", uid: "u2", resourceVersion: "4" },
    spec: { Type: 1, ClientID: "c" },
  } as Raw;
  cache.identities.store.upsert(cache.normalizeForCache(bad));
  cache.identities.store.upsert(cache.normalizeForCache(good));
  const { state, problems } = cache.observe();
  assert.deepEqual(state.identities.map((i) => [i.metadata.name, i.spec.type, i.spec.clientID]), [[
    "good",
    1,
    "c",
  ]]);
  assert.equal(problems.length, 1);
  assert.deepEqual(problems[0].object, {
    kind: "AzureIdentity",
    namespace: "app",
    name: "bad",
    uid: "u1",
    resourceVersion: "3",
  });
  assert.equal(problems[0].reason, "InvalidObject");
  assert.match(problems[0].message, /AzureIdentity app\/bad: spec\.type must be 0 .* got 9/);
  assert.ok(!("managedFields" in cache.identities.store.get("app/bad")!.metadata));
});

Deno.test("snapshot: assigned identities share one embedded copy per identity version; finished pods left out", () => {
  const cache = offlineCache();
  const aai = (name: string) =>
    ({
      apiVersion: API,
      kind: "AzureAssignedIdentity",
      metadata: { name, namespace: "default", uid: name, resourceVersion: "5" },
      spec: {
        azureIdentityRef: { metadata: { name: "id", namespace: "app" }, spec: { type: 1, clientID: "c" } },
        azureBindingRef: {
          metadata: { name: "b", namespace: "app" },
          spec: { azureIdentity: "id", selector: "s" },
        },
        pod: name,
        podNamespace: "app",
        nodename: "n1",
      },
      status: { status: "Assigned" },
    }) as unknown as Raw;
  cache.assigned.store.upsert(cache.normalizeForCache(aai("a")));
  cache.assigned.store.upsert(cache.normalizeForCache(aai("b")));
  const [a, b] = cache.observe().state.assigned;
  assert.equal(a.spec.azureIdentityRef, b.spec.azureIdentityRef);
  assert.equal(a.spec.azureBindingRef, b.spec.azureBindingRef);

  const pod = (name: string, phase: PodPhase): Pod => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: "app",
      uid: name,
      resourceVersion: "1",
      labels: { aadpodidbinding: "s", x: "y" },
    },
    spec: { nodeName: "n1" },
    status: { phase, podIP: "10.0.0.1" },
  });
  cache.pods.store.upsert(pod("run", "Running"));
  cache.pods.store.upsert(pod("done", "Succeeded"));
  assert.deepEqual(cache.observe().state.pods.map((p) => p.name), ["run"]);
});
