// Read-modify-write through lib/api on the real apiserver: a full object of each kind (every field the
// original's Go types carry, server-managed metadata included: it is being deleted behind a finalizer)
// comes back from toWire(normalize(x)) unchanged, and PUTting that back changes nothing on the server.

import assert from "node:assert/strict";
import { normalize } from "../../../lib/api/normalize.ts";
import { toWire } from "../../../lib/api/wire.ts";
import { sharedCluster, type TestCluster } from "../../support/cluster.ts";
import {
  clientMetadata,
  fullAssigned,
  fullBinding,
  fullException,
  fullIdentity,
  type Json,
} from "../../fixtures/api_objects.ts";

async function kubectlJson(cluster: TestCluster, args: string[], stdin?: string): Promise<Json> {
  const r = await cluster.kubectl([...args, "-o", "json"], stdin);
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function withoutManagedFields(o: Json): Json {
  const { managedFields: _m, ...metadata } = o.metadata as Json;
  return { ...o, metadata };
}

/** A PUT by a new field manager records itself in managedFields, which takes a new resourceVersion. */
function withoutWriteRecord(o: Json): Json {
  const { managedFields: _m, resourceVersion: _r, ...metadata } = o.metadata as Json;
  return { ...o, metadata };
}

function nameOf(o: Json): string {
  return (o.metadata as Json).name as string;
}

/** Creates the object (generateName), then deletes it so it stays behind its finalizer with deletionTimestamp. */
async function createDeleting(cluster: TestCluster, obj: Json): Promise<Json> {
  const created = await kubectlJson(cluster, ["create", "-f", "-"], JSON.stringify(obj));
  // Everything sent is stored: the CRD schema prunes none of the fields.
  for (const part of ["spec", "status"] as const) {
    assert.deepEqual(created[part], obj[part], `${obj.kind}.${part}`);
  }
  const ns = (created.metadata as Json).namespace as string;
  const del = await cluster.kubectl([
    "delete",
    obj.kind as string,
    nameOf(created),
    "-n",
    ns,
    "--wait=false",
  ]);
  assert.equal(del.code, 0, del.stderr);
  const got = await kubectlJson(cluster, ["get", obj.kind as string, nameOf(created), "-n", ns]);
  const meta = got.metadata as Json;
  assert.ok(meta.deletionTimestamp, `${obj.kind} has no deletionTimestamp`);
  for (const [k, v] of Object.entries(obj.metadata as Json)) assert.deepEqual(meta[k], v, `metadata.${k}`);
  return got;
}

async function release(cluster: TestCluster, o: Json): Promise<void> {
  const meta = o.metadata as Json;
  await cluster.kubectl([
    "patch",
    o.kind as string,
    meta.name as string,
    "-n",
    meta.namespace as string,
    "--type=merge",
    "-p",
    '{"metadata":{"finalizers":null}}',
  ]);
}

Deno.test("round trip: a full object of each kind survives normalize+toWire and a PUT back unchanged", async () => {
  const cluster = await sharedCluster();
  const ns = await cluster.namespace("round-trip");
  const stored: Json[] = [];
  try {
    const identity = await createDeleting(cluster, fullIdentity(clientMetadata(ns, "id")));
    stored.push(identity);
    const binding = await createDeleting(cluster, fullBinding(clientMetadata(ns, "b")));
    stored.push(binding);
    // The refs are the stored objects as read, server-managed metadata and all.
    stored.push(
      await createDeleting(
        cluster,
        fullAssigned(clientMetadata(ns, "a"), withoutManagedFields(identity), withoutManagedFields(binding)),
      ),
    );
    stored.push(await createDeleting(cluster, fullException(clientMetadata(ns, "e"))));

    for (const original of stored) {
      const written = toWire(normalize(original));
      assert.deepEqual(written, withoutManagedFields(original), `${original.kind} lost or changed a field`);

      const replaced = await kubectlJson(cluster, ["replace", "-f", "-"], JSON.stringify(written));
      assert.deepEqual(
        withoutWriteRecord(replaced),
        withoutWriteRecord(original),
        `${original.kind}: the PUT changed the stored object`,
      );
    }
  } finally {
    for (const o of stored) await release(cluster, o);
  }
});
