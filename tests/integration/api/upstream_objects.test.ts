// Objects that v1.8.17 stored are accepted by these CRDs (issue 20): the original's example objects (its
// deploy/demo, examples/ and docs, placeholders as users applied them), identities with a type number,
// resource id or client id its schema let through, and an AzureAssignedIdentity as its MIC wrote it.

import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { sharedCluster } from "../../support/cluster.ts";
import { UPSTREAM_DIR } from "../../support/upstream.ts";

const API = "aadpodidentity.k8s.io/v1";
type Obj = { apiVersion: string; kind: string; metadata: Record<string, unknown>; spec?: unknown };

/** An AzureAssignedIdentity as the v1.8.17 MIC stored it (pkg/mic/mic.go makeAssignedIDs). */
function storedAssignment(ns: string): Obj {
  const meta = (name: string) => ({ name, namespace: ns, resourceVersion: "123", creationTimestamp: null });
  return {
    apiVersion: API,
    kind: "AzureAssignedIdentity",
    metadata: {
      name: `app-${ns}-id`,
      labels: { nodename: "node-a" },
      finalizers: ["azureassignedidentity.finalizers.aadpodidentity.k8s.io"],
    },
    spec: {
      metadata: { creationTimestamp: null },
      // The original's schema marks both refs x-kubernetes-embedded-resource: kind and apiVersion were there.
      azureIdentityRef: {
        apiVersion: API,
        kind: "AzureIdentity",
        metadata: meta("id"),
        spec: {
          metadata: { creationTimestamp: null },
          type: 0,
          resourceID: "RESOURCE_ID",
          clientID: "CLIENT_ID",
        },
        status: { metadata: { creationTimestamp: null }, availableReplicas: 0 },
      },
      azureBindingRef: {
        apiVersion: API,
        kind: "AzureIdentityBinding",
        metadata: meta("b"),
        spec: { metadata: { creationTimestamp: null }, azureIdentity: "id", selector: "demo", weight: 0 },
        status: { metadata: { creationTimestamp: null }, availableReplicas: 0 },
      },
      pod: "app",
      podNamespace: ns,
      nodename: "node-a",
    },
    status: { metadata: { creationTimestamp: null }, status: "Assigned", availableReplicas: 1 },
  } as Obj;
}

Deno.test("CRDs accept what v1.8.17 stored: its example objects, any ids, any type number, its assignments", async () => {
  const cluster = await sharedCluster();
  const ns = await cluster.namespace("upstream-objects");
  const examples = parseAllDocuments(await Deno.readTextFile(`${UPSTREAM_DIR}examples.yaml`))
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
  assert.ok(examples.length >= 12);
  const extra: Obj[] = [
    {
      apiVersion: API,
      kind: "AzureIdentity",
      metadata: {},
      spec: { type: 3, resourceID: "", clientID: "msi" },
    },
    {
      apiVersion: API,
      kind: "AzureIdentity",
      metadata: {},
      spec: { type: 1, ResourceID: "x", ClientID: "1234" },
    },
    storedAssignment(ns),
  ];
  let i = 0;
  for (const o of [...examples, ...extra]) {
    // Names are not what is tested (the docs' are placeholders); the specs are, as written.
    const obj = { ...o, metadata: { ...o.metadata, name: o.metadata.name ?? `x-${i}`, namespace: ns } };
    if (!/^[a-z0-9.-]+$/.test(String(obj.metadata.name))) obj.metadata.name = `doc-${i}`;
    obj.metadata.name = `${obj.metadata.name}-${i++}`;
    const r = await cluster.kubectl(["create", "-f", "-", "-o", "json"], JSON.stringify(obj));
    assert.equal(r.code, 0, `${o.kind} ${JSON.stringify(o.spec)}: ${r.stderr}`);
    const stored = JSON.parse(r.stdout) as Obj;
    // Stored as written: nothing pruned from the spec (the apiserver normalizes embedded refs' metadata).
    const written = o.spec as Record<string, Record<string, unknown>>;
    const got = stored.spec as Record<string, Record<string, unknown>>;
    if (o.kind !== "AzureAssignedIdentity") assert.deepEqual(got, written, `${o.kind} ${obj.metadata.name}`);
    else {
      for (const ref of ["azureIdentityRef", "azureBindingRef"]) {
        assert.deepEqual(got[ref].spec, written[ref].spec);
      }
    }
  }
});
