import assert from "node:assert/strict";
import {
  ASSIGNED_SPEC_ALIASES,
  BINDING_SPEC_ALIASES,
  EXCEPTION_SPEC_ALIASES,
  IDENTITY_SPEC_ALIASES,
  SECRET_REF_ALIASES,
} from "../../../lib/api/casing.ts";
import {
  InvalidObjectError,
  normalize,
  normalizeAzureAssignedIdentity,
  normalizeAzureIdentity,
  normalizeAzureIdentityBinding,
  normalizeAzurePodIdentityException,
} from "../../../lib/api/normalize.ts";
import { toWire } from "../../../lib/api/wire.ts";
import { IDENTITY_SPEC_VALUES } from "../../fixtures/api_objects.ts";

const API = "aadpodidentity.k8s.io/v1";
const RID =
  "/subscriptions/0000/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1";
const CID = "6f2a1c3e-1111-4222-8333-944445555666";

function rename(values: Record<string, unknown>, aliases: Record<string, string>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [aliases[k] ?? k, v]));
}

const meta = (name: string) => ({ name, namespace: "apps", labels: { a: "b" }, resourceVersion: "7" });

Deno.test("AzureIdentity: every spec field reads the same in camelCase and PascalCase", () => {
  const camel = { apiVersion: API, kind: "AzureIdentity", metadata: meta("id"), spec: IDENTITY_SPEC_VALUES };
  const pascal = {
    ...camel,
    spec: {
      ...rename(IDENTITY_SPEC_VALUES, IDENTITY_SPEC_ALIASES),
      ClientPassword: rename(IDENTITY_SPEC_VALUES.clientPassword, SECRET_REF_ALIASES),
    },
  };
  const a = normalizeAzureIdentity(camel);
  assert.deepEqual(normalizeAzureIdentity(pascal), a);
  assert.deepEqual(a.spec, IDENTITY_SPEC_VALUES);
  assert.deepEqual(a.metadata, {
    name: "id",
    namespace: "apps",
    labels: { a: "b" },
    annotations: {},
    finalizers: [],
    resourceVersion: "7",
  });
});

Deno.test("AzureIdentity: each field alone in legacy spelling, the rest camelCase (mixed objects)", () => {
  const expected = normalizeAzureIdentity({
    apiVersion: API,
    kind: "AzureIdentity",
    metadata: meta("id"),
    spec: IDENTITY_SPEC_VALUES,
  });
  for (const [camel, legacy] of Object.entries(IDENTITY_SPEC_ALIASES)) {
    const spec: Record<string, unknown> = { ...IDENTITY_SPEC_VALUES };
    spec[legacy] = spec[camel];
    delete spec[camel];
    const got = normalizeAzureIdentity({
      apiVersion: API,
      kind: "AzureIdentity",
      metadata: meta("id"),
      spec,
    });
    assert.deepEqual(got, expected, `field ${legacy}`);
  }
});

Deno.test("AzureIdentity: the original README's PascalCase example", () => {
  const got = normalizeAzureIdentity({
    apiVersion: API,
    kind: "AzureIdentity",
    metadata: { name: "demo", namespace: "default" },
    spec: { type: 0, ResourceID: RID, ClientID: CID },
  });
  assert.equal(got.spec.type, 0);
  assert.equal(got.spec.resourceID, RID);
  assert.equal(got.spec.clientID, CID);
  assert.equal(got.spec.clientPassword, undefined);
  assert.deepEqual(got.spec.auxiliaryTenantIDs, []);
});

Deno.test("AzureIdentity: camelCase wins when both spellings are present, as in the original", () => {
  const got = normalizeAzureIdentity({
    apiVersion: API,
    kind: "AzureIdentity",
    metadata: meta("id"),
    spec: { type: 0, clientID: CID, ClientID: "00000000-0000-0000-0000-000000000000" },
  });
  assert.equal(got.spec.clientID, CID);
});

Deno.test("AzureIdentity: defaults (type 0, empty strings) when the spec is sparse", () => {
  const got = normalizeAzureIdentity({ apiVersion: API, kind: "AzureIdentity", metadata: meta("id") });
  assert.equal(got.spec.type, 0);
  assert.equal(got.spec.clientID, "");
  assert.equal(got.spec.tenantID, "");
});

Deno.test("AzureIdentityBinding: both spellings, mixed, and camelCase precedence", () => {
  const values = { azureIdentity: "id", selector: "web", weight: 3 };
  const base = { apiVersion: API, kind: "AzureIdentityBinding", metadata: meta("b") };
  const expected = normalizeAzureIdentityBinding({ ...base, spec: values });
  assert.deepEqual(expected.spec, values);
  assert.deepEqual(
    normalizeAzureIdentityBinding({ ...base, spec: rename(values, BINDING_SPEC_ALIASES) }),
    expected,
  );
  assert.deepEqual(
    normalizeAzureIdentityBinding({ ...base, spec: { AzureIdentity: "id", selector: "web", Weight: 3 } }),
    expected,
  );
  assert.equal(
    normalizeAzureIdentityBinding({ ...base, spec: { Selector: "old", selector: "new" } }).spec.selector,
    "new",
  );
});

Deno.test("AzurePodIdentityException: podLabels and PodLabels", () => {
  const base = { apiVersion: API, kind: "AzurePodIdentityException", metadata: meta("e") };
  const labels = { app: "mic", component: "mic" };
  const a = normalizeAzurePodIdentityException({ ...base, spec: { podLabels: labels } });
  const b = normalizeAzurePodIdentityException({
    ...base,
    spec: rename({ podLabels: labels }, EXCEPTION_SPEC_ALIASES),
  });
  assert.deepEqual(a, b);
  assert.deepEqual(a.spec.podLabels, labels);
});

const assignedSpec = {
  azureIdentityRef: {
    metadata: { name: "id", namespace: "apps" },
    spec: { type: 0, resourceID: RID, clientID: CID },
  },
  azureBindingRef: {
    metadata: { name: "b", namespace: "apps" },
    spec: { azureIdentity: "id", selector: "web" },
  },
  pod: "web-1",
  podNamespace: "apps",
  nodename: "node-a",
};

Deno.test("AzureAssignedIdentity: both spellings, legacy refs without kind/apiVersion, legacy ref casing", () => {
  const base = { apiVersion: API, kind: "AzureAssignedIdentity", metadata: meta("web-1-apps-id") };
  const a = normalizeAzureAssignedIdentity({
    ...base,
    spec: assignedSpec,
    status: { status: "Assigned", availableReplicas: 1 },
  });
  const b = normalizeAzureAssignedIdentity({
    ...base,
    spec: {
      ...rename(assignedSpec, ASSIGNED_SPEC_ALIASES),
      // The same refs with their specs in PascalCase.
      AzureIdentityRef: {
        ...assignedSpec.azureIdentityRef,
        spec: { type: 0, ResourceID: RID, ClientID: CID },
      },
      AzureBindingRef: { ...assignedSpec.azureBindingRef, spec: { AzureIdentity: "id", Selector: "web" } },
    },
    Status: { Status: "Assigned", AvailableReplicas: 1 },
  });
  assert.deepEqual(b, a);
  assert.equal(a.spec.nodeName, "node-a");
  assert.equal(a.spec.azureIdentityRef.kind, "AzureIdentity");
  assert.equal(a.spec.azureIdentityRef.spec.clientID, CID);
  assert.equal(a.spec.azureBindingRef.spec.selector, "web");
  assert.equal(a.status.status, "Assigned");
});

Deno.test("AzureAssignedIdentity: empty status (written before v1.5) is kept as empty", () => {
  const got = normalizeAzureAssignedIdentity({
    apiVersion: API,
    kind: "AzureAssignedIdentity",
    metadata: meta("x"),
    spec: assignedSpec,
  });
  assert.equal(got.status.status, "");
});

Deno.test("toWire writes camelCase only and normalises back to the same object", () => {
  const objects = [
    normalizeAzureIdentity({
      apiVersion: API,
      kind: "AzureIdentity",
      metadata: meta("id"),
      spec: rename(IDENTITY_SPEC_VALUES, IDENTITY_SPEC_ALIASES),
    }),
    normalizeAzureIdentityBinding({
      apiVersion: API,
      kind: "AzureIdentityBinding",
      metadata: meta("b"),
      spec: { AzureIdentity: "id", Selector: "s" },
    }),
    normalizeAzureAssignedIdentity({
      apiVersion: API,
      kind: "AzureAssignedIdentity",
      metadata: meta("a"),
      spec: assignedSpec,
      status: { status: "Created" },
    }),
    normalizeAzurePodIdentityException({
      apiVersion: API,
      kind: "AzurePodIdentityException",
      metadata: meta("e"),
      spec: { PodLabels: { x: "y" } },
    }),
  ];
  const legacyNames = new Set<string>([
    ...Object.values(IDENTITY_SPEC_ALIASES),
    ...Object.values(BINDING_SPEC_ALIASES),
    ...Object.values(ASSIGNED_SPEC_ALIASES),
    ...Object.values(EXCEPTION_SPEC_ALIASES),
    ...Object.values(SECRET_REF_ALIASES),
  ]);
  for (const o of objects) {
    const wire = toWire(o);
    const keys: string[] = [];
    JSON.stringify(wire, (k, v) => (keys.push(k), v));
    const legacy = keys.filter((k) => legacyNames.has(k));
    assert.deepEqual(legacy, [], `${o.kind} wrote legacy keys`);
    assert.deepEqual(normalize(wire), o);
  }
});

Deno.test("bad input: a clear error naming the object and the field", () => {
  const cases: [unknown, string][] = [
    [
      { apiVersion: API, kind: "AzureIdentity", metadata: meta("x"), spec: { type: 3 } },
      "AzureIdentity apps/x: spec.type must be 0",
    ],
    [
      { apiVersion: API, kind: "AzureIdentity", metadata: meta("x"), spec: { Type: "0" } },
      "AzureIdentity apps/x: spec.Type must be an integer",
    ],
    [
      { apiVersion: API, kind: "AzureIdentity", metadata: meta("x"), spec: { ClientID: 5 } },
      "spec.ClientID must be a string",
    ],
    [
      { apiVersion: API, kind: "AzureIdentity", metadata: meta("x"), spec: { auxiliaryTenantIDs: "t" } },
      "spec.auxiliaryTenantIDs must be a list of strings",
    ],
    [
      { apiVersion: API, kind: "AzureIdentity", metadata: meta("x"), spec: { clientPassword: "s" } },
      "spec.clientPassword must be an object",
    ],
    [{ apiVersion: API, kind: "AzureIdentity", metadata: meta("x"), spec: [] }, "spec must be an object"],
    [
      { apiVersion: "v1", kind: "AzureIdentity", metadata: meta("x") },
      "apiVersion must be aadpodidentity.k8s.io/v1",
    ],
    [
      { apiVersion: API, kind: "AzureIdentityBinding", metadata: meta("x"), spec: { Selector: ["a"] } },
      "spec.Selector must be a string",
    ],
    [{
      apiVersion: API,
      kind: "AzurePodIdentityException",
      metadata: meta("x"),
      spec: { podLabels: { a: 1 } },
    }, "spec.podLabels.a must be a string"],
    [{
      apiVersion: API,
      kind: "AzureAssignedIdentity",
      metadata: meta("x"),
      spec: assignedSpec,
      status: { status: "Done" },
    }, "status.status must be one of"],
    [
      {
        apiVersion: API,
        kind: "AzureAssignedIdentity",
        metadata: meta("x"),
        spec: { ...assignedSpec, azureIdentityRef: { spec: { type: 7 } } },
      },
      "AzureAssignedIdentity apps/x: spec.azureIdentityRef.spec.type must be 0",
    ],
    [{ apiVersion: API, kind: "Pod" }, "kind is not an aadpodidentity.k8s.io/v1 kind"],
    ["text", "kind is not an aadpodidentity.k8s.io/v1 kind"],
  ];
  for (const [input, message] of cases) {
    assert.throws(
      () => normalize(input),
      (e: unknown) => e instanceof InvalidObjectError && e.message.includes(message),
      `${JSON.stringify(input)} should fail with "${message}"`,
    );
  }
});
