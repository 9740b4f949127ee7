import assert from "node:assert/strict";
import { normalize } from "../../../lib/api/normalize.ts";
import { toWire } from "../../../lib/api/wire.ts";
import {
  clientMetadata,
  fullAssigned,
  fullBinding,
  fullException,
  fullIdentity,
  type Json,
  serverMetadata,
} from "../../fixtures/api_objects.ts";

function meta(prefix: string): Json {
  return { ...clientMetadata("apps", prefix), ...serverMetadata(`${prefix}-x1`) };
}

Deno.test("round trip: toWire(normalize(x)) keeps every field of a full object of each kind", () => {
  const identity = fullIdentity(meta("id"));
  const binding = fullBinding(meta("b"));
  const objects = [identity, binding, fullAssigned(meta("a"), identity, binding), fullException(meta("e"))];
  for (const o of objects) {
    assert.deepEqual(toWire(normalize(o)), o, `${o.kind}`);
  }
});

Deno.test("round trip: replicas 0 is kept, absent and null replicas stay absent", () => {
  const identity = fullIdentity(meta("id")) as { spec: Json };
  const withZero = { ...identity, spec: { ...identity.spec, replicas: 0 } };
  assert.deepEqual((toWire(normalize(withZero)).spec as Json).replicas, 0);
  for (const replicas of [undefined, null]) {
    const o = { ...identity, spec: { ...identity.spec, replicas } };
    assert.equal("replicas" in (toWire(normalize(o)).spec as Json), false);
  }
});

Deno.test("round trip: legacy Replicas is read and written back as replicas", () => {
  const identity = fullIdentity(meta("id")) as { spec: Json };
  const { replicas: _r, ...spec } = identity.spec;
  const got = normalize({ ...identity, spec: { ...spec, Replicas: 5 } });
  assert.equal(got.kind === "AzureIdentity" && got.spec.replicas, 5);
});

Deno.test("round trip: a malformed owner reference is a clear error", () => {
  const o = fullException({
    name: "e",
    namespace: "apps",
    ownerReferences: [{ name: "x", controller: "yes" }],
  });
  assert.throws(
    () => normalize(o),
    /AzurePodIdentityException apps\/e: metadata\.ownerReferences\[0\]\.controller must be true or false/,
  );
  assert.throws(
    () => normalize(fullException({ name: "e", namespace: "apps", ownerReferences: {} })),
    /metadata\.ownerReferences must be a list/,
  );
});
