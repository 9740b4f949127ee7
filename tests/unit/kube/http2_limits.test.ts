// lib/kube's HTTP/2 client against a hostile server (tests/support/h2_peer.ts): the limits that keep a
// misbehaving or malicious peer from taking memory or time without bound. A header block that expands
// past the announced header-list limit, unread answers against the connection's window, more streams
// than our own cap, WINDOW_UPDATEs of 0 or past 2^31-1 (RFC 9113 6.9), and PING/SETTINGS floods.

import assert from "node:assert/strict";
import { Http2Transport } from "../../../lib/kube/http2/transport.ts";
import {
  ErrorCode,
  Flag,
  frame,
  FrameType,
  MAX_FRAME_SIZE,
  Setting,
  settingsFrame,
  windowUpdateFrame,
} from "../../../lib/kube/http2/frames.ts";
import type { Http2Options } from "../../../lib/kube/http2/options.ts";
import { dataFrame, type Frame, h2Server, headersFrame, type Peer } from "../../support/h2_peer.ts";

const noEnv = () => undefined;
const transport = (ca: string, options: Http2Options = {}) =>
  new Http2Transport({ caCerts: [ca] }, noEnv, options);
const u32 = (f: Frame, at = 0) => new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(at);

/** Frames from the client until `pick` says stop or it closes; undefined when it closed first. */
async function until(peer: Peer, pick: (f: Frame) => boolean): Promise<Frame | undefined> {
  while (true) {
    const f = await peer.next();
    if (!f || pick(f)) return f;
  }
}

/** Resolves when `p` does or after `ms`, whichever comes first (a peer that never sees what it waits for). */
const within = (p: Promise<unknown>, ms = 3000) => Promise.race([p, new Promise((r) => setTimeout(r, ms))]);

/** An HPACK integer (RFC 7541 5.1) with `prefix` bits in its first byte, which carries `first`. */
function hpackInt(value: number, prefix: number, first = 0): number[] {
  const max = (1 << prefix) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  for (value -= max; value >= 128; value = Math.floor(value / 128)) out.push((value % 128) | 0x80);
  return [...out, value];
}

Deno.test("http2 limits: the header-list limit is announced and enforced while decoding; 1 MiB of references to one 4 KB entry fails fast", async () => {
  let announced: number | undefined;
  let goaway: number | undefined;
  const seen = Promise.withResolvers<void>();
  const server = await h2Server(async (peer) => {
    const settings = await peer.next();
    const view = new DataView(settings!.payload.buffer, settings!.payload.byteOffset);
    for (let i = 0; i < settings!.payload.length; i += 6) {
      if (view.getUint16(i) === Setting.MAX_HEADER_LIST_SIZE) announced = view.getUint32(i + 2);
    }
    const req = await peer.request();
    // ":status: 200", then a 4,000-byte header added to the dynamic table (literal with incremental
    // indexing, new name), then 1 MiB of one-byte references to it (index 62: the newest dynamic entry).
    const name = new TextEncoder().encode("x-big");
    const head = Uint8Array.from([
      0x88,
      0x40,
      ...hpackInt(name.length, 7),
      ...name,
      ...hpackInt(4000, 7),
      ...new Uint8Array(4000).fill(0x61),
    ]);
    await peer.send(frame(FrameType.HEADERS, 0, req!.stream, head));
    // The whole block stays within the 1 MiB the client accepts for an encoded block.
    const refs = new Uint8Array((1 << 20) - head.length).fill(0xbe);
    for (let off = 0; off < refs.length; off += MAX_FRAME_SIZE) {
      const last = off + MAX_FRAME_SIZE >= refs.length ? Flag.END_HEADERS : 0;
      await peer.send(
        frame(FrameType.CONTINUATION, last, req!.stream, refs.subarray(off, off + MAX_FRAME_SIZE)),
      );
    }
    const end = await until(peer, (f) => f.type === FrameType.GOAWAY);
    goaway = end && u32(end, 4);
    seen.resolve();
  });
  const t = transport(server.ca);
  try {
    const heap = Deno.memoryUsage().heapUsed;
    const started = performance.now();
    await assert.rejects(t.request(server.url, "GET", "/", new Headers()), /header list over 1048576 octets/);
    const took = performance.now() - started;
    const grew = (Deno.memoryUsage().heapUsed - heap) / 2 ** 20;
    assert.equal(announced, 1 << 20);
    assert.ok(took < 2_000, `failed after ${took.toFixed(0)} ms`);
    assert.ok(grew < 64, `the heap grew ${grew.toFixed(0)} MiB`);
    await within(seen.promise);
  } finally {
    t.close();
    await server.close();
  }
  assert.equal(goaway, ErrorCode.COMPRESSION_ERROR);
});

Deno.test("http2 limits: the connection's window is credited as the consumer reads, not as data arrives", async () => {
  const updates: number[] = [];
  const read = Promise.withResolvers<void>();
  const credited = Promise.withResolvers<void>();
  const server = await h2Server(async (peer) => {
    const req = await peer.request();
    await peer.send(headersFrame(req!.stream, [[":status", "200"]]));
    // A full stream window (128 KiB) of data the consumer has not read yet.
    for (let i = 0; i < 8; i++) await peer.send(dataFrame(req!.stream, new Uint8Array(16 << 10)));
    const seen = (f: Frame) => f.type === FrameType.WINDOW_UPDATE && f.stream === 0 && updates.push(u32(f));
    // Whatever the client credits before its consumer reads arrives within this pause.
    const pause = new Promise((r) => setTimeout(r, 300));
    const early = until(peer, (f) => (seen(f), false));
    await Promise.race([pause, early]);
    updates.push(-1); // the consumer reads from here on
    read.resolve();
    await until(peer, (f) => Boolean(seen(f)) && updates.at(-1)! > 0);
    credited.resolve();
  }, { settings: [[Setting.INITIAL_WINDOW_SIZE, 65_535]] });
  const t = transport(server.ca, { connectionWindow: 256 << 10, streamWindow: 128 << 10 });
  try {
    const res = (await t.request(server.url, "GET", "/", new Headers()))!;
    await read.promise;
    const reader = res.body!.getReader();
    let got = 0;
    while (got < 128 << 10) got += (await reader.read()).value!.length;
    await within(credited.promise);
    await reader.cancel();
  } finally {
    t.close();
    await server.close();
  }
  // (The connection-level window announced at start came before the request.) Nothing is credited for
  // 128 KiB that arrived unread; the credit comes after the read, for what was read.
  const mark = updates.indexOf(-1);
  assert.deepEqual(updates.slice(0, mark), []);
  assert.ok(updates[mark + 1] >= 64 << 10, `credited ${updates[mark + 1]} after reading 128 KiB`);
});

Deno.test("http2 limits: our own cap on concurrent streams holds although the server allows 2^31-1", async () => {
  const release = Promise.withResolvers<void>();
  const server = await h2Server(async (peer, index) => {
    // Two requests on the first connection (the cap), the third on a second one.
    const streams: number[] = [];
    for (let i = 0; i < (index === 0 ? 2 : 1); i++) streams.push((await peer.request())!.stream);
    await release.promise;
    for (const s of streams) await peer.send(headersFrame(s, [[":status", "204"]], true));
    await peer.next();
  }, { settings: [[Setting.MAX_CONCURRENT_STREAMS, 0x7fffffff]] });
  const t = transport(server.ca, { maxConcurrentStreams: 2 });
  try {
    const answers = [1, 2, 3].map(() => t.request(server.url, "GET", "/", new Headers()));
    for (const a of answers) a.catch(() => {}); // awaited below; not unhandled if an assertion fails first
    const deadline = performance.now() + 2000;
    while (server.accepted < 2 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    release.resolve();
    assert.equal(server.accepted, 2, "the third request needs a connection of its own");
    assert.deepEqual((await Promise.all(answers)).map((r) => r!.status), [204, 204, 204]);
  } finally {
    release.resolve();
    t.close();
    await server.close();
  }
});

/** A request whose answer the peer holds back while it sends `frames`; what the client did in return. */
async function windowUpdateCase(frames: (stream: number) => Uint8Array[]) {
  let reply: Frame | undefined;
  const server = await h2Server(async (peer, index) => {
    const req = await peer.request();
    if (index > 0) {
      await peer.send(headersFrame(req!.stream, [[":status", "204"]], true));
      return void await peer.next();
    }
    await peer.send(...frames(req!.stream));
    reply = await until(peer, (f) => f.type === FrameType.RST_STREAM || f.type === FrameType.GOAWAY);
    // A stream error leaves the connection usable: answer the next request on it.
    const next = await peer.request();
    if (next) await peer.send(headersFrame(next.stream, [[":status", "204"]], true));
    await peer.next();
  });
  const t = transport(server.ca);
  try {
    const failure = await t.request(server.url, "GET", "/", new Headers()).then(() => "answered", String);
    const after = (await t.request(server.url, "GET", "/", new Headers()))!.status;
    return {
      failure,
      reply: reply && { type: reply.type, code: u32(reply, reply.type === FrameType.GOAWAY ? 4 : 0) },
      after,
      connections: server.accepted,
    };
  } finally {
    t.close();
    await server.close();
  }
}

Deno.test("http2 limits: WINDOW_UPDATE of 0 or past 2^31-1 is an error of the stream or the connection (RFC 9113 6.9)", async () => {
  const streamZero = await windowUpdateCase((s) => [windowUpdateFrame(s, 0)]);
  assert.match(streamZero.failure, /WINDOW_UPDATE of 0 on the stream/);
  assert.deepEqual(streamZero.reply, { type: FrameType.RST_STREAM, code: ErrorCode.PROTOCOL_ERROR });
  assert.deepEqual([streamZero.after, streamZero.connections], [204, 1]);

  const streamOverflow = await windowUpdateCase((s) => [windowUpdateFrame(s, 0x7fffffff)]);
  assert.match(streamOverflow.failure, /WINDOW_UPDATE past 2\^31-1 on the stream/);
  assert.deepEqual(streamOverflow.reply, { type: FrameType.RST_STREAM, code: ErrorCode.FLOW_CONTROL_ERROR });
  assert.deepEqual([streamOverflow.after, streamOverflow.connections], [204, 1]);

  const connZero = await windowUpdateCase(() => [windowUpdateFrame(0, 0)]);
  assert.match(connZero.failure, /WINDOW_UPDATE of 0 on the connection/);
  assert.deepEqual(connZero.reply, { type: FrameType.GOAWAY, code: ErrorCode.PROTOCOL_ERROR });
  assert.deepEqual([connZero.after, connZero.connections], [204, 2]);

  const connOverflow = await windowUpdateCase(() => [windowUpdateFrame(0, 0x7fffffff)]);
  assert.match(connOverflow.failure, /WINDOW_UPDATE past 2\^31-1 on the connection/);
  assert.deepEqual(connOverflow.reply, { type: FrameType.GOAWAY, code: ErrorCode.FLOW_CONTROL_ERROR });

  // A new initial window that would push an open stream's send window past 2^31-1.
  const settings = await windowUpdateCase((s) => [
    windowUpdateFrame(s, 0x7fffffff - 65_535),
    settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 65_536]]),
  ]);
  assert.match(settings.failure, /overflows a stream's window/);
  assert.deepEqual(settings.reply, { type: FrameType.GOAWAY, code: ErrorCode.FLOW_CONTROL_ERROR });
});

/** The peer floods the client with `flood` frames; how many answers it got before the GOAWAY. */
async function floodCase(flood: Uint8Array, ackType: number) {
  let acks = 0;
  let goaway: number | undefined;
  const seen = Promise.withResolvers<void>();
  const server = await h2Server(async (peer) => {
    await peer.request();
    const burst = new Uint8Array(flood.length * 5000);
    for (let i = 0; i < 5000; i++) burst.set(flood, i * flood.length);
    // The client may end the connection before the burst is written: read its answers meanwhile.
    const sending = peer.send(burst).catch(() => {});
    const end = await until(peer, (f) => {
      if (f.type === ackType && f.flags & Flag.ACK) acks++;
      return f.type === FrameType.GOAWAY;
    });
    goaway = end && u32(end, 4);
    seen.resolve();
    await sending;
  });
  const t = transport(server.ca);
  try {
    const failure = await t.request(server.url, "GET", "/", new Headers()).then(() => "answered", String);
    await within(seen.promise);
    return { failure, acks, goaway };
  } finally {
    t.close();
    await server.close();
  }
}

Deno.test("http2 limits: PING and SETTINGS floods are answered up to a budget, then the connection ends", async () => {
  const ping = await floodCase(frame(FrameType.PING, 0, 0, new Uint8Array(8)), FrameType.PING);
  assert.match(ping.failure, /flood of PING or SETTINGS/);
  assert.ok(ping.acks <= 1000, `${ping.acks} PINGs answered`);
  assert.equal(ping.goaway, ErrorCode.ENHANCE_YOUR_CALM);

  const settings = await floodCase(settingsFrame([]), FrameType.SETTINGS);
  assert.match(settings.failure, /flood of PING or SETTINGS/);
  // The client's own SETTINGS ACK for the server's first SETTINGS is counted too.
  assert.ok(settings.acks <= 1001, `${settings.acks} SETTINGS answered`);
  assert.equal(settings.goaway, ErrorCode.ENHANCE_YOUR_CALM);
});

Deno.test("http2 limits: a cancelled body gives its unread share of the connection's window back", async () => {
  const credited = Promise.withResolvers<number>();
  const server = await h2Server(async (peer) => {
    const first = await peer.request();
    await peer.send(headersFrame(first!.stream, [[":status", "200"]]));
    // The whole connection window (128 KiB) on a body nobody reads.
    for (let i = 0; i < 8; i++) await peer.send(dataFrame(first!.stream, new Uint8Array(16 << 10)));
    const update = await until(peer, (f) => f.type === FrameType.WINDOW_UPDATE && f.stream === 0);
    credited.resolve(update ? u32(update) : 0);
    const second = await peer.request();
    await peer.send(
      headersFrame(second!.stream, [[":status", "200"]]),
      dataFrame(second!.stream, "more", true),
    );
    await peer.next();
  });
  const t = transport(server.ca, { connectionWindow: 128 << 10, streamWindow: 128 << 10 });
  try {
    const res = (await t.request(server.url, "GET", "/", new Headers()))!;
    await new Promise((r) => setTimeout(r, 100)); // the 128 KiB arrive, unread
    await res.body!.cancel();
    assert.equal(await within(credited.promise), 128 << 10);
    assert.equal(await (await t.request(server.url, "GET", "/", new Headers()))!.text(), "more");
    assert.equal(server.accepted, 1);
  } finally {
    t.close();
    await server.close();
  }
});
