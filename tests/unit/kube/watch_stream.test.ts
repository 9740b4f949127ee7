import assert from "node:assert/strict";
import { decodeWatchEvents, parseWatchLine, WatchDecodeError } from "../../../lib/kube/watch_stream.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(ch);
      c.close();
    },
  });
}

async function collect(chunks: Uint8Array[]) {
  const out = [];
  for await (const ev of decodeWatchEvents<KubeObject>(streamOf(chunks))) out.push(ev);
  return out;
}

const events = [
  { type: "ADDED", object: { metadata: { name: "a", resourceVersion: "1" }, data: { k: "héllo ✓" } } },
  { type: "MODIFIED", object: { metadata: { name: "a", resourceVersion: "2" } } },
  { type: "BOOKMARK", object: { metadata: { resourceVersion: "7" } } },
  { type: "DELETED", object: { metadata: { name: "a", resourceVersion: "8" } } },
];
const wire = new TextEncoder().encode(events.map((e) => JSON.stringify(e) + "\n").join(""));

Deno.test("watch stream: decodes the same events however the bytes are split", async () => {
  // Every split point, including inside the multi-byte characters, must give the same events.
  for (let cut = 0; cut <= wire.length; cut += 3) {
    assert.deepEqual(await collect([wire.slice(0, cut), wire.slice(cut)]), events);
  }
  assert.deepEqual(await collect([...wire].map((b) => new Uint8Array([b]))), events);
  assert.deepEqual(await collect([wire]), events);
});

Deno.test("watch stream: blank lines are skipped; a cut-off final event is an error", async () => {
  const enc = new TextEncoder();
  assert.deepEqual((await collect([enc.encode("\n\n"), wire, enc.encode("\r\n")])).length, 4);
  await assert.rejects(() => collect([wire, enc.encode('{"type":"ADDED","obj')]), /inside an event/);
});

Deno.test("watch stream: non-events are rejected with the offending line", () => {
  for (const line of ["not json", "[]", '{"type":"NOPE","object":{}}', '{"type":"ADDED"}']) {
    let caught: unknown;
    try {
      parseWatchLine(line);
    } catch (e) {
      caught = e;
    }
    assert.deepEqual(caught instanceof WatchDecodeError && caught.line, line);
  }
});

Deno.test("watch stream: stopping early cancels the body", async () => {
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      c.enqueue(wire);
    },
    cancel() {
      cancelled = true;
    },
  });
  for await (const _ of decodeWatchEvents(body)) break;
  assert.deepEqual(cancelled, true);
});

Deno.test("watch stream: aborting ends a read that would otherwise wait forever", async () => {
  let cancelled = false;
  // A body that delivers one event and then never delivers more nor closes: an idle watch.
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (!sent) {
        sent = true;
        c.enqueue(wire.slice(0, wire.indexOf(10) + 1));
        return;
      }
      return new Promise(() => {});
    },
    cancel() {
      cancelled = true;
    },
  });
  const ctrl = new AbortController();
  const seen: string[] = [];
  const done = (async () => {
    for await (const ev of decodeWatchEvents(body, ctrl.signal)) {
      seen.push(ev.type);
      setTimeout(() => ctrl.abort(), 10);
    }
  })();
  await done;
  assert.deepEqual(seen, ["ADDED"]);
  assert.equal(cancelled, true);
});
