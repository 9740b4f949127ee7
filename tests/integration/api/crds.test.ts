// The CRDs on a real apiserver: both field casings are stored and read back as one internal object,
// invalid objects are refused with a message naming the field, kubectl shows the printer columns.

import assert from "node:assert/strict";
import { normalize } from "../../../lib/api/normalize.ts";
import { sharedCluster, type TestCluster } from "../../support/cluster.ts";

const API = "aadpodidentity.k8s.io/v1";
const RID = "/subscriptions/2b4f1c1e-0000-4000-8000-000000000001/resourcegroups/rg-demo/providers/" +
  "Microsoft.ManagedIdentity/userAssignedIdentities/demo-id";
const CID = "8c6a1f0e-1d2b-4c3d-9e4f-5a6b7c8d9e0f";

async function apply(cluster: TestCluster, obj: unknown) {
  return await cluster.kubectl(["create", "-f", "-", "-o", "json"], JSON.stringify(obj));
}

async function readBack(cluster: TestCluster, kind: string, ns: string, name: string): Promise<unknown> {
  const r = await cluster.kubectl(["get", kind, name, "-n", ns, "-o", "json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** Drops what the server adds per object, so two objects written differently can be compared. */
function comparable(o: ReturnType<typeof normalize>) {
  const { name: _n, uid: _u, resourceVersion: _r, creationTimestamp: _c, generation: _g, ...rest } =
    o.metadata;
  return { ...o, metadata: rest };
}

Deno.test("CRDs: installed, established, with short names", async () => {
  const cluster = await sharedCluster();
  const r = await cluster.kubectl([
    "get",
    "crd",
    "-o",
    "jsonpath={range .items[*]}{.metadata.name}{' '}{end}",
  ]);
  assert.equal(r.code, 0, r.stderr);
  for (
    const plural of [
      "azureidentities",
      "azureidentitybindings",
      "azureassignedidentities",
      "azurepodidentityexceptions",
    ]
  ) {
    assert.match(r.stdout, new RegExp(`${plural}\\.aadpodidentity\\.k8s\\.io`));
  }
  const ns = await cluster.namespace("crd-short");
  for (const short of ["azid", "azidb", "azaid", "azpie"]) {
    const got = await cluster.kubectl(["get", short, "-n", ns]);
    assert.equal(got.code, 0, `${short}: ${got.stderr}`);
  }
});

Deno.test("CRDs: the original README's PascalCase objects and camelCase objects read back as the same object", async () => {
  const cluster = await sharedCluster();
  const ns = await cluster.namespace("crd-casing");
  const identity = (name: string, spec: Record<string, unknown>) => ({
    apiVersion: API,
    kind: "AzureIdentity",
    metadata: { name, namespace: ns },
    spec,
  });
  const pairs: [unknown, unknown, string][] = [
    [
      identity("msi-pascal", { type: 0, ResourceID: RID, ClientID: CID }),
      identity("msi-camel", { type: 0, resourceID: RID, clientID: CID }),
      "azureidentity",
    ],
    [
      identity("sp-pascal", {
        type: 1,
        TenantID: "contoso.onmicrosoft.com",
        ClientID: CID,
        ClientPassword: { Name: "sp-secret", Namespace: ns },
        AuxiliaryTenantIDs: ["fabrikam.onmicrosoft.com"],
        ADEndpoint: "https://login.example.test/",
      }),
      identity("sp-camel", {
        type: 1,
        tenantID: "contoso.onmicrosoft.com",
        clientID: CID,
        clientPassword: { name: "sp-secret", namespace: ns },
        auxiliaryTenantIDs: ["fabrikam.onmicrosoft.com"],
        adEndpoint: "https://login.example.test/",
      }),
      "azureidentity",
    ],
    [
      {
        apiVersion: API,
        kind: "AzureIdentityBinding",
        metadata: { name: "b-pascal", namespace: ns },
        spec: { AzureIdentity: "msi", Selector: "web" },
      },
      {
        apiVersion: API,
        kind: "AzureIdentityBinding",
        metadata: { name: "b-camel", namespace: ns },
        spec: { azureIdentity: "msi", selector: "web" },
      },
      "azureidentitybinding",
    ],
    [
      {
        apiVersion: API,
        kind: "AzurePodIdentityException",
        metadata: { name: "e-pascal", namespace: ns },
        spec: { PodLabels: { app: "mic" } },
      },
      {
        apiVersion: API,
        kind: "AzurePodIdentityException",
        metadata: { name: "e-camel", namespace: ns },
        spec: { podLabels: { app: "mic" } },
      },
      "azurepodidentityexception",
    ],
  ];
  for (const [legacy, current, kind] of pairs) {
    for (const obj of [legacy, current]) {
      const r = await apply(cluster, obj);
      assert.equal(r.code, 0, `create ${JSON.stringify(obj)}: ${r.stderr}`);
    }
    const name = (o: unknown) => (o as { metadata: { name: string } }).metadata.name;
    const storedLegacy = await readBack(cluster, kind, ns, name(legacy));
    // The apiserver kept the legacy field names as written (nothing pruned) ...
    assert.deepEqual(
      (storedLegacy as { spec: unknown }).spec,
      (legacy as { spec: unknown }).spec,
      `${kind}: legacy fields were pruned`,
    );
    // ... and lib/api reads both as the same object.
    const a = normalize(storedLegacy);
    const b = normalize(await readBack(cluster, kind, ns, name(current)));
    assert.deepEqual(comparable(a), comparable(b));
  }
});

Deno.test("CRDs: an assigned identity with embedded refs is stored whole, in either casing", async () => {
  const cluster = await sharedCluster();
  const ns = await cluster.namespace("crd-aai");
  const ref = {
    apiVersion: API,
    kind: "AzureIdentity",
    metadata: { name: "msi", namespace: ns },
    spec: { type: 0, ResourceID: RID, ClientID: CID },
  };
  const binding = {
    apiVersion: API,
    kind: "AzureIdentityBinding",
    metadata: { name: "b", namespace: ns },
    spec: { AzureIdentity: "msi", Selector: "web" },
  };
  const r = await apply(cluster, {
    apiVersion: API,
    kind: "AzureAssignedIdentity",
    metadata: { name: `web-${ns}-msi`, namespace: ns, labels: { nodename: "node-a" } },
    spec: {
      azureIdentityRef: ref,
      azureBindingRef: binding,
      pod: "web",
      podNamespace: ns,
      nodename: "node-a",
    },
    status: { status: "Assigned", availableReplicas: 1 },
  });
  assert.equal(r.code, 0, r.stderr);
  const got = normalize(await readBack(cluster, "azureassignedidentity", ns, `web-${ns}-msi`));
  assert.equal(got.kind, "AzureAssignedIdentity");
  if (got.kind !== "AzureAssignedIdentity") return;
  assert.equal(got.spec.azureIdentityRef.spec.resourceID, RID);
  assert.equal(got.spec.azureBindingRef.spec.selector, "web");
  assert.equal(got.spec.nodeName, "node-a");
  assert.equal(got.status.status, "Assigned");
});

Deno.test("CRDs: invalid objects are refused with a message naming the field, and nothing is stored", async () => {
  const cluster = await sharedCluster();
  const ns = await cluster.namespace("crd-invalid");
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    // A type number, resource id or client id the original stored is accepted (upstream_objects.test.ts):
    // its schema checked types only; MIC and NMI report unusable identities in Events.
    ["type-string", { type: "zero" }, "AzureIdentity", /spec\.type: Invalid value: "string"/],
    [
      "aux-not-list",
      { type: 1, auxiliaryTenantIDs: "t1" },
      "AzureIdentity",
      /spec\.auxiliaryTenantIDs: Invalid value: "string"/,
    ],
    [
      "selector-number",
      { azureIdentity: "x", selector: 5 },
      "AzureIdentityBinding",
      /spec\.selector: Invalid value: "integer"/,
    ],
    [
      "labels-list",
      { podLabels: ["app=mic"] },
      "AzurePodIdentityException",
      /spec\.podLabels: Invalid value: "array"/,
    ],
  ];
  for (const [name, spec, kind, expected] of cases) {
    const r = await apply(cluster, { apiVersion: API, kind, metadata: { name, namespace: ns }, spec });
    assert.notEqual(r.code, 0, `${name} was accepted`);
    assert.match(r.stderr, expected, `${name}: ${r.stderr}`);
  }
  // Upper-case letters in a resource id are fine (ARM ids are case-insensitive), as are the original's ids.
  const ok = await apply(cluster, {
    apiVersion: API,
    kind: "AzureIdentity",
    metadata: { name: "mixed-case", namespace: ns },
    spec: {
      type: 0,
      resourceID: RID.replace("resourcegroups", "resourceGroups"),
      clientID: CID.toUpperCase(),
    },
  });
  assert.equal(ok.code, 0, ok.stderr);
  const left = await cluster.kubectl(["get", "azureidentities", "-n", ns, "-o", "name"]);
  assert.equal(left.stdout.trim(), "azureidentity.aadpodidentity.k8s.io/mixed-case");
});

Deno.test("kubectl get azureidentities shows the printer columns", async () => {
  const cluster = await sharedCluster();
  const ns = await cluster.namespace("crd-columns");
  assert.equal(
    (await apply(cluster, {
      apiVersion: API,
      kind: "AzureIdentity",
      metadata: { name: "web-id", namespace: ns },
      spec: { type: 0, resourceID: RID, clientID: CID },
    })).code,
    0,
  );
  assert.equal(
    (await apply(cluster, {
      apiVersion: API,
      kind: "AzureIdentityBinding",
      metadata: { name: "web-binding", namespace: ns },
      spec: { azureIdentity: "web-id", selector: "web" },
    })).code,
    0,
  );
  const ids = await cluster.kubectl(["get", "azureidentities", "-n", ns]);
  assert.equal(ids.code, 0, ids.stderr);
  const [header, row] = ids.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/));
  assert.deepEqual(header, ["NAME", "TYPE", "CLIENTID", "AGE"]);
  assert.deepEqual(row.slice(0, 3), ["web-id", "0", CID]);
  const wide = await cluster.kubectl(["get", "azid", "-n", ns, "-o", "wide"]);
  assert.match(wide.stdout.split("\n")[0], /RESOURCEID/);
  assert.ok(wide.stdout.includes(RID));
  const bindings = await cluster.kubectl(["get", "azureidentitybindings", "-n", ns]);
  const [bh, br] = bindings.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/));
  assert.deepEqual(bh, ["NAME", "AZUREIDENTITY", "SELECTOR", "AGE"]);
  assert.deepEqual(br.slice(0, 3), ["web-binding", "web-id", "web"]);
});
