// The hand-written protobuf readers against bytes built here field by field (the encoding rules are the
// protobuf spec's; field numbers those of k8s.io/api and apimachinery v0.34): omitempty rules, times,
// negative numbers, maps, unknown fields, framing split at every byte, and malformed input.

import assert from "node:assert/strict";
import {
  decodeList,
  decodeNode,
  decodePod,
  projectMeta,
  projectPod,
} from "../../../lib/kube/builtin_proto.ts";
import {
  ProtoDecodeError,
  ProtoReader,
  readObjectMeta,
  readStatus,
  unwrapEnvelope,
} from "../../../lib/kube/protobuf.ts";
import { decodeProtoWatchBatches, decodeProtoWatchEvents } from "../../../lib/kube/proto_watch.ts";
import { isOlder, listFrom } from "../../../lib/kube/reflector.ts";
import { decodeListStream } from "../../../lib/kube/proto_list.ts";

// ---- a minimal encoder for the tests

function varint(v: number): number[] {
  const out: number[] = [];
  if (v < 0) {
    // Two's complement over 64 bits, exactly (a double cannot hold 2^64 - 5).
    let big = BigInt.asUintN(64, BigInt(v));
    while (big >= 128n) {
      out.push(Number(big & 0x7fn) | 0x80);
      big >>= 7n;
    }
    return [...out, Number(big)];
  }
  while (v >= 128) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}
const enc = new TextEncoder();
type Field = number[];
const str = (
  n: number,
  s: string,
): Field => [...varint((n << 3) | 2), ...varint(enc.encode(s).length), ...enc.encode(s)];
const msg = (n: number, ...fields: Field[]): Field => {
  const body = fields.flat();
  return [...varint((n << 3) | 2), ...varint(body.length), ...body];
};
const int = (n: number, v: number): Field => [...varint(n << 3), ...varint(v)];
const entry = (n: number, k: string, v: string) => msg(n, str(1, k), str(2, v));
const time = (n: number, seconds: number, nanos = 0) =>
  msg(n, int(1, seconds), ...(nanos ? [int(2, nanos)] : []));
const bytes = (...fields: Field[]) => new Uint8Array(fields.flat());
const envelope = (apiVersion: string, kind: string, raw: Uint8Array) =>
  new Uint8Array([
    0x6b,
    0x38,
    0x73,
    0x00,
    ...msg(1, str(1, apiVersion), str(2, kind)),
    ...msg(2, ...[[...raw]]),
  ]);

const T = Date.UTC(2026, 10, 29, 14, 33, 56) / 1000;

/** A pod as the apiserver writes it: empty strings and false bools present, managedFields and spec noise. */
function podBytes(name: string, rv: string, extra: Field[] = []): Field[] {
  return [
    msg(
      1,
      str(1, name),
      str(2, ""),
      str(3, "ns"),
      str(4, ""),
      str(5, `uid-${name}`),
      str(6, rv),
      int(7, 0),
      time(8, T),
      entry(11, "app", "web"),
      entry(11, "aadpodidbinding", "sel"),
      entry(12, "note", "välue ✓"),
      msg(13, str(1, "ReplicaSet"), str(3, "rs"), str(4, "u1"), str(5, "apps/v1"), int(6, 1), int(7, 0)),
      str(14, "example.com/hold"),
      msg(17, str(1, "kubectl"), str(2, "Update"), msg(7, str(1, "x".repeat(500)))),
    ),
    msg(
      2,
      msg(2, str(1, "app"), str(2, "img")), // containers: skipped
      str(8, "sa"),
      str(10, "node-1"),
      int(11, 0),
      int(21, 1), // automountServiceAccountToken: not kept
    ),
    msg(
      3,
      str(1, "Running"),
      str(5, ""),
      str(6, "10.0.0.7"),
      msg(12, str(1, "10.0.0.7")),
      msg(12, str(1, "fd00::7")),
    ),
    ...extra,
  ];
}

Deno.test("decodePod keeps the metadata and fields MIC and NMI read, drops empties like JSON omitempty", () => {
  const pod = decodePod(new ProtoReader(bytes(...podBytes("p1", "42"))));
  assert.deepEqual(pod, {
    apiVersion: "v1",
    kind: "Pod",
    // No annotations, owner references, finalizers or creation time: nobody reads them from a pod.
    metadata: {
      name: "p1",
      namespace: "ns",
      uid: "uid-p1",
      resourceVersion: "42",
      labels: { app: "web", aadpodidbinding: "sel" },
    },
    spec: { nodeName: "node-1", serviceAccountName: "sa" },
    status: { phase: "Running", podIP: "10.0.0.7", podIPs: [{ ip: "10.0.0.7" }, { ip: "fd00::7" }] },
  });
  // The JSON projection of the same pod (as the apiserver would write it) is the same object.
  assert.deepEqual(
    projectPod({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        ...pod.metadata,
        generation: 0,
        managedFields: [{}],
        creationTimestamp: "2026-11-29T14:33:56Z",
        annotations: { note: "välue ✓" },
        ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "rs", uid: "u1" }],
        finalizers: ["example.com/hold"],
      } as never,
      spec: { ...pod.spec, containers: [{ name: "app" }], hostNetwork: false } as never,
      status: { ...pod.status, conditions: [] } as never,
    } as never),
    pod,
  );
});

Deno.test("ObjectMeta pointer fields are kept at zero; negative and large ints; unknown fields skipped", () => {
  const pod = decodePod(
    new ProtoReader(bytes(
      msg(1, str(1, "p"), int(7, 3), time(9, T + 30), int(10, 0), int(99, 5), str(98, "future")),
      [...varint((50 << 3) | 5), 1, 2, 3, 4], // a fixed32 field nobody knows yet
      [...varint((51 << 3) | 1), 1, 2, 3, 4, 5, 6, 7, 8], // and a fixed64
    )),
  );
  // A pod's generation is not kept ("identity" metadata); the whole ObjectMeta of the same bytes has it.
  assert.deepEqual(pod.metadata, {
    name: "p",
    deletionTimestamp: "2026-11-29T14:34:26Z",
    deletionGracePeriodSeconds: 0,
  });
  const whole = new ProtoReader(bytes(msg(1, str(1, "p"), int(7, 3), time(9, T + 30), int(10, 0))));
  whole.varint();
  assert.deepEqual(readObjectMeta(whole), {
    name: "p",
    generation: 3,
    deletionTimestamp: "2026-11-29T14:34:26Z",
    deletionGracePeriodSeconds: 0,
  });
  assert.deepEqual(projectMeta({ name: "p", generation: 0, deletionGracePeriodSeconds: 0, labels: {} }), {
    name: "p",
    deletionGracePeriodSeconds: 0,
  });
  const r = new ProtoReader(new Uint8Array(varint(-5)));
  assert.equal(r.int(), -5);
});

Deno.test("whole ObjectMeta (leases, written back) keeps annotations, owners, finalizers and times", () => {
  const r = new ProtoReader(bytes(podBytes("p1", "42")[0]));
  r.varint();
  const meta = readObjectMeta(r, "whole");
  assert.deepEqual(meta, {
    name: "p1",
    namespace: "ns",
    uid: "uid-p1",
    resourceVersion: "42",
    creationTimestamp: "2026-11-29T14:33:56Z",
    labels: { app: "web", aadpodidbinding: "sel" },
    annotations: { note: "välue ✓" },
    ownerReferences: [{
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      name: "rs",
      uid: "u1",
      controller: true,
      blockOwnerDeletion: false,
    }],
    finalizers: ["example.com/hold"],
  });
  assert.deepEqual(projectMeta({ ...meta, generation: 0, managedFields: [{}] } as never), meta);
});

Deno.test("decodeNode keeps providerID, unschedulable and taints with timeAdded", () => {
  const node = decodeNode(
    new ProtoReader(bytes(
      msg(1, str(1, "n1"), str(6, "7")),
      msg(
        2,
        str(1, "10.244.0.0/24"),
        str(3, "azure:///x"),
        int(4, 1),
        msg(5, str(1, "k"), str(2, ""), str(3, "NoSchedule")),
        msg(5, str(1, "k2"), str(2, "v"), str(3, "NoExecute"), time(4, T)),
      ),
      msg(3, str(1, "status is skipped")),
    )),
  );
  assert.deepEqual(node, {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: "n1", resourceVersion: "7" },
    spec: {
      providerID: "azure:///x",
      unschedulable: true,
      taints: [
        { key: "k", effect: "NoSchedule" },
        { key: "k2", value: "v", effect: "NoExecute", timeAdded: "2026-11-29T14:33:56Z" },
      ],
    },
  });
});

Deno.test("a list envelope decodes to items and list metadata; a bad envelope is refused", () => {
  const raw = bytes(
    msg(1, str(1, ""), str(2, "100"), str(3, "")),
    msg(2, ...podBytes("a", "98")),
    msg(2, ...podBytes("b", "99")),
  );
  const list = decodeList(unwrapEnvelope(envelope("v1", "PodList", raw)).raw, decodePod);
  assert.deepEqual(list.metadata, { resourceVersion: "100" });
  assert.deepEqual(list.items.map((p) => p.metadata.name), ["a", "b"]);
  assert.throws(() => unwrapEnvelope(new Uint8Array([1, 2, 3, 4, 5])), ProtoDecodeError);
  // A length running past its message is an error, not a silent misread.
  const lying = bytes(msg(1, str(1, "a")));
  lying[1] += 3;
  assert.throws(() => decodePod(new ProtoReader(lying)), ProtoDecodeError);
  assert.throws(() => new ProtoReader(new Uint8Array([0x80, 0x80])).varint(), ProtoDecodeError);
});

Deno.test("a protobuf Status decodes with code, reason and retryAfterSeconds", () => {
  const status = readStatus(bytes(
    msg(1, str(2, "5")),
    str(2, "Failure"),
    str(3, "too old resource version: 1 (5)"),
    str(4, "Expired"),
    msg(5, str(1, "x"), int(5, 3)),
    int(6, 410),
  ));
  assert.deepEqual(status, {
    apiVersion: "v1",
    kind: "Status",
    status: "Failure",
    message: "too old resource version: 1 (5)",
    reason: "Expired",
    details: { name: "x", retryAfterSeconds: 3 },
    code: 410,
  });
});

function frame(type: string, object: Uint8Array): Uint8Array {
  const ev = bytes(str(1, type), msg(2, [...msg(1, [...object])]));
  return new Uint8Array([
    (ev.length >>> 24) & 255,
    (ev.length >>> 16) & 255,
    (ev.length >>> 8) & 255,
    ev.length & 255,
    ...ev,
  ]);
}

function streamOf(data: Uint8Array, chunk: number): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (let i = 0; i < data.length; i += chunk) c.enqueue(data.slice(i, i + chunk));
      c.close();
    },
  });
}

Deno.test("watch frames decode the same however the bytes are split, ERROR carries a Status", async () => {
  const pod = (name: string, rv: string) => envelope("v1", "Pod", bytes(...podBytes(name, rv)));
  const status = envelope("v1", "Status", bytes(str(3, "gone"), str(4, "Expired"), int(6, 410)));
  const all = new Uint8Array([
    ...frame("ADDED", pod("a", "1")),
    ...frame("MODIFIED", pod("a", "2")),
    ...frame("BOOKMARK", envelope("v1", "Pod", bytes(msg(1, str(6, "3"))))),
    ...frame("DELETED", pod("a", "4")),
    ...frame("ERROR", status),
  ]);
  const expected = ["ADDED a 1", "MODIFIED a 2", "BOOKMARK undefined 3", "DELETED a 4", "ERROR Expired 410"];
  for (const chunk of [1, 3, 7, 64, all.length]) {
    const seen: string[] = [];
    for await (const ev of decodeProtoWatchEvents(streamOf(all, chunk), decodePod)) {
      seen.push(
        ev.type === "ERROR"
          ? `ERROR ${ev.object.reason} ${ev.object.code}`
          : `${ev.type} ${ev.object.metadata.name} ${ev.object.metadata.resourceVersion}`,
      );
    }
    assert.deepEqual(seen, expected, `chunks of ${chunk}`);
  }
  // In one chunk, all five come as one batch.
  const batches: number[] = [];
  for await (const b of decodeProtoWatchBatches(streamOf(all, all.length), decodePod)) batches.push(b.length);
  assert.deepEqual(batches, [5]);
});

Deno.test("a watch stream cut inside a frame, or a bad event type, is an error after the good events", async () => {
  const good = frame("ADDED", envelope("v1", "Pod", bytes(...podBytes("a", "1"))));
  const cut = new Uint8Array([...good, ...good.slice(0, 10)]);
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const ev of decodeProtoWatchEvents(streamOf(cut, 1000), decodePod)) seen.push(ev.type);
  }, /ended inside a frame/);
  assert.deepEqual(seen, ["ADDED"]);
  const bad = new Uint8Array([...good, ...frame("RESYNC", envelope("v1", "Pod", bytes()))]);
  seen.length = 0;
  await assert.rejects(async () => {
    for await (const ev of decodeProtoWatchEvents(streamOf(bad, bad.length), decodePod)) seen.push(ev.type);
  }, /unexpected watch event type "RESYNC"/);
  assert.deepEqual(seen, ["ADDED"]);
});

Deno.test("listFrom: watch cache first, not-older-than on re-list, quorum after a refusal", () => {
  assert.deepEqual(listFrom(undefined, false), { resourceVersion: "0" });
  assert.deepEqual(listFrom("120", false), { resourceVersion: "120", resourceVersionMatch: "NotOlderThan" });
  assert.deepEqual(listFrom("120", true), {});
  assert.deepEqual(listFrom(undefined, true), {});
  assert.equal(isOlder("99", "100"), true);
  assert.equal(isOlder("100", "100"), false);
  assert.equal(isOlder("18446744073709551615", "18446744073709551614"), false);
  // Resource versions that are not integers are never compared.
  assert.equal(isOlder("abc", "100"), false);
  assert.equal(isOlder(undefined, "100"), false);
});

Deno.test("a list decoded while it streams in equals the list decoded whole, however it is split", async () => {
  const raw = bytes(
    msg(1, str(1, ""), str(2, "100"), str(3, "")),
    ...Array.from({ length: 40 }, (_, i) => msg(2, ...podBytes(`p${i}`, String(i + 1)))),
  );
  const body = envelope("v1", "PodList", raw);
  const whole = decodeList(unwrapEnvelope(body).raw, decodePod);
  for (const chunk of [1, 2, 5, 64, 1000, body.length]) {
    assert.deepEqual(await decodeListStream(streamOf(body, chunk), decodePod), whole, `chunks of ${chunk}`);
  }
  await assert.rejects(
    decodeListStream(streamOf(body.slice(0, body.length - 3), 64), decodePod),
    ProtoDecodeError,
  );
});

Deno.test("a streamed list larger than the decoder's buffer, with an item larger than it, decodes whole", async () => {
  // 400 items of ~2 KiB make the reused buffer wrap many times; one ~600 KiB item makes it grow.
  const items = Array.from(
    { length: 400 },
    (_, i) =>
      msg(
        2,
        ...podBytes(`p${i}`, String(i + 1), [
          msg(1, entry(11, "pad", `${i}`.repeat(2000 / String(i).length))),
        ]),
      ),
  );
  items.splice(
    200,
    0,
    msg(2, ...podBytes("huge", "999", [msg(1, entry(11, "big", "z".repeat(600 * 1024)))])),
  );
  const body = envelope("v1", "PodList", bytes(msg(1, str(2, "1000")), ...items));
  const whole = decodeList(unwrapEnvelope(body).raw, decodePod);
  assert.equal(whole.items.length, 401);
  assert.equal(whole.items[200].metadata.labels?.big?.length, 600 * 1024);
  for (const chunk of [1000, 64 * 1024, 300 * 1024, body.length]) {
    assert.deepEqual(await decodeListStream(streamOf(body, chunk), decodePod), whole, `chunks of ${chunk}`);
  }
});

Deno.test("strings with invalid UTF-8 decode to the replacement characters TextDecoder gives", () => {
  const bad = [0x61, 0xff, 0xc3, 0x28, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80, 0xed, 0xa0, 0x80, 0x62];
  const pod = decodePod(new ProtoReader(bytes(msg(1, [10, bad.length, ...bad], str(3, "日本")))));
  assert.equal(pod.metadata.name, new TextDecoder().decode(new Uint8Array(bad)));
  assert.ok(pod.metadata.name!.includes("\uFFFD") && pod.metadata.name!.includes("€😀"));
  assert.equal(pod.metadata.namespace, "日本");
});
