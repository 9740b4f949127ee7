// lib/kube's HTTP/2 client against a scripted server (tests/support/h2_peer.ts) that sends exactly the
// frames each case needs: HPACK's dynamic table across answers, padding and CONTINUATION, GOAWAY and
// RST_STREAM mid-request, PING both ways, a peer that goes silent, request bodies held back by small
// windows, an oversized frame, and a server that does not offer h2.

import assert from "node:assert/strict";
import { Http2Transport, proxied } from "../../../lib/kube/http2/transport.ts";
import {
  ErrorCode,
  Flag,
  frame,
  FrameType,
  goawayFrame,
  rstStreamFrame,
  Setting,
  windowUpdateFrame,
} from "../../../lib/kube/http2/frames.ts";
import { dataFrame, h2Server, headersFrame, type Peer } from "../../support/h2_peer.ts";

const hex = (s: string) => Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!.map((b) => parseInt(b, 16)));
const noEnv = () => undefined;

function transport(ca: string, timing = {}) {
  return new Http2Transport({ caCerts: [ca] }, noEnv, timing);
}

async function ok(peer: Peer, body: string) {
  const req = await peer.request();
  await peer.send(headersFrame(req!.stream, [[":status", "200"]]), dataFrame(req!.stream, body, true));
  return req!;
}

Deno.test("http2: answers decode through HPACK's dynamic table across streams, from padded and split frames", async () => {
  const server = await h2Server(async (peer) => {
    const first = await peer.request();
    // RFC 7541 C.6.1: Huffman-coded, every field added to the dynamic table.
    const block1 = hex(`4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
      2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`);
    await peer.send(
      frame(FrameType.HEADERS, Flag.END_HEADERS, first!.stream, block1),
      dataFrame(first!.stream, "hello ", false, 7),
      dataFrame(first!.stream, "world", true),
    );
    const second = await peer.request();
    // C.6.2 refers to the entries C.6.1 added; sent as HEADERS + CONTINUATION.
    const block2 = hex("4883 640e ffc1 c0bf");
    await peer.send(
      frame(FrameType.HEADERS, 0, second!.stream, block2.subarray(0, 3)),
      frame(FrameType.CONTINUATION, Flag.END_HEADERS, second!.stream, block2.subarray(3)),
      dataFrame(second!.stream, "again", true),
    );
    await peer.next();
  });
  const t = transport(server.ca);
  try {
    const a = (await t.request(server.url, "GET", "/a", new Headers()))!;
    assert.equal(a.status, 302);
    assert.equal(a.headers.get("location"), "https://www.example.com");
    assert.equal(await a.text(), "hello world");
    const b = (await t.request(server.url, "GET", "/b", new Headers()))!;
    assert.equal(b.status, 307);
    assert.equal(b.headers.get("date"), "Mon, 21 Oct 2013 20:13:21 GMT");
    assert.equal(await b.text(), "again");
    assert.equal(server.accepted, 1);
  } finally {
    t.close();
    await server.close();
  }
});

Deno.test("http2: frames cut at every byte across socket reads are read whole", async () => {
  const server = await h2Server(async (peer) => {
    const req = await peer.request();
    const bytes = [
      headersFrame(req!.stream, [[":status", "200"], ["x-cut", "yes"]]),
      dataFrame(req!.stream, "split ", false, 3),
      dataFrame(req!.stream, "x".repeat(20_000).slice(0, 16_000)),
      dataFrame(req!.stream, " end", true),
    ];
    // One byte per write: each its own TLS record, so the client's reads end inside every frame header
    // and payload.
    for (const f of bytes) for (let i = 0; i < f.length; i++) await peer.send(f.subarray(i, i + 1));
    await peer.next();
  });
  const t = transport(server.ca);
  try {
    const res = (await t.request(server.url, "GET", "/", new Headers()))!;
    assert.equal(res.headers.get("x-cut"), "yes");
    assert.equal(await res.text(), `split ${"x".repeat(16_000)} end`);
  } finally {
    t.close();
    await server.close();
  }
});

Deno.test("http2: requests carry method, path, authority and headers; GET has no body", async () => {
  let seen: [string, string][] = [];
  const server = await h2Server(async (peer) => {
    const req = await peer.request();
    seen = req!.fields;
    await peer.send(headersFrame(req!.stream, [[":status", "204"]], true));
    await peer.next();
  });
  const t = transport(server.ca);
  try {
    const res = (await t.request(server.url, "GET", "/api/v1/pods?watch=1", new Headers({ Accept: "x/y" })))!;
    assert.equal(res.status, 204);
    assert.equal(res.body, null);
    const port = new URL(server.url).port;
    assert.deepEqual(seen, [
      [":method", "GET"],
      [":scheme", "https"],
      [":authority", `127.0.0.1:${port}`],
      [":path", "/api/v1/pods?watch=1"],
      ["accept", "x/y"],
    ]);
  } finally {
    t.close();
    await server.close();
  }
});

Deno.test("http2: a GOAWAY that leaves out an in-flight request sends it again on a new connection", async () => {
  const server = await h2Server(async (peer, index) => {
    if (index === 0) {
      await ok(peer, "first");
      const second = await peer.request();
      // Processed up to the first stream only: the second was never seen by the "application".
      await peer.send(goawayFrame(second!.stream - 2, ErrorCode.NO_ERROR));
      await peer.next();
    } else {
      await ok(peer, "retried");
      await peer.next();
    }
  });
  const t = transport(server.ca);
  try {
    assert.equal(await (await t.request(server.url, "GET", "/1", new Headers()))!.text(), "first");
    assert.equal(await (await t.request(server.url, "GET", "/2", new Headers()))!.text(), "retried");
    assert.equal(server.accepted, 2);
  } finally {
    t.close();
    await server.close();
  }
});

Deno.test("http2: a reset stream fails its request (REFUSED_STREAM is sent again); the connection carries on", async () => {
  const server = await h2Server(async (peer) => {
    const a = await peer.request();
    await peer.send(rstStreamFrame(a!.stream, ErrorCode.PROTOCOL_ERROR));
    const b = await peer.request();
    await peer.send(rstStreamFrame(b!.stream, ErrorCode.REFUSED_STREAM));
    await ok(peer, "after refusal");
    await peer.next();
  });
  const t = transport(server.ca);
  try {
    await assert.rejects(
      t.request(server.url, "GET", "/a", new Headers()),
      /reset the stream \(error code 1\)/,
    );
    assert.equal(await (await t.request(server.url, "GET", "/b", new Headers()))!.text(), "after refusal");
    assert.equal(server.accepted, 1);
  } finally {
    t.close();
    await server.close();
  }
});

Deno.test("http2: an abort resets the stream with CANCEL and fails the body with the abort reason", async () => {
  let reset: { stream: number; code: number } | undefined;
  let requested = 0;
  const server = await h2Server(async (peer) => {
    const req = await peer.request();
    requested = req!.stream;
    await peer.send(headersFrame(req!.stream, [[":status", "200"]]), dataFrame(req!.stream, "partial"));
    const rst = await peer.nextOf(FrameType.RST_STREAM);
    reset = { stream: rst!.stream, code: new DataView(rst!.payload.buffer).getUint32(0) };
    await peer.next();
  });
  const t = transport(server.ca);
  const ctrl = new AbortController();
  try {
    const res = (await t.request(server.url, "GET", "/watch", new Headers(), undefined, ctrl.signal))!;
    const reader = res.body!.getReader();
    assert.equal(new TextDecoder().decode((await reader.read()).value), "partial");
    const reason = new Error("caller gave up");
    ctrl.abort(reason);
    await assert.rejects(reader.read(), (e) => e === reason);
    for (let i = 0; i < 100 && !reset; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(reset, { stream: requested, code: ErrorCode.CANCEL });
  } finally {
    t.close();
    await server.close();
  }
});

Deno.test("http2: a server PING is answered with its payload", async () => {
  let ack: { flags: number; payload: number[] } | undefined;
  const server = await h2Server(async (peer) => {
    const req = await peer.request();
    await peer.send(frame(FrameType.PING, 0, 0, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)));
    const pong = await peer.nextOf(FrameType.PING);
    ack = { flags: pong!.flags, payload: [...pong!.payload] };
    await peer.send(headersFrame(req!.stream, [[":status", "200"]]), dataFrame(req!.stream, "done", true));
    await peer.next();
  });
  const t = transport(server.ca);
  try {
    assert.equal(await (await t.request(server.url, "GET", "/", new Headers()))!.text(), "done");
    assert.deepEqual(ack, { flags: Flag.ACK, payload: [1, 2, 3, 4, 5, 6, 7, 8] });
  } finally {
    t.close();
    await server.close();
  }
});

Deno.test("http2: a connection that stops answering is found dead by an unanswered PING", async () => {
  let pinged = false;
  const server = await h2Server(async (peer) => {
    const req = await peer.request();
    await peer.send(headersFrame(req!.stream, [[":status", "200"]]), dataFrame(req!.stream, "then silence"));
    pinged = (await peer.nextOf(FrameType.PING)) !== undefined;
    await peer.next(); // never answers
  });
  const t = transport(server.ca, { pingAfterMs: 200, pingTimeoutMs: 300 });
  try {
    const res = (await t.request(server.url, "GET", "/watch", new Headers()))!;
    const reader = res.body!.getReader();
    await reader.read();
    const started = performance.now();
    await assert.rejects(reader.read(), /no answer to a PING in 300 ms/);
    assert.ok(pinged, "the server saw a PING");
    assert.ok(performance.now() - started < 2_000);
  } finally {
    t.close();
    await server.close();
  }
});

Deno.test("http2: a request body waits for the server's windows (stream and connection)", async () => {
  const WINDOW = 1_000;
  const size = 200_000;
  let overrun = 0;
  let received = 0;
  const server = await h2Server(async (peer) => {
    // A first request, so the client has the server's SETTINGS (a 1,000-byte stream window) before the
    // upload; until then it may use the protocol's default window (RFC 9113 6.9.2).
    await ok(peer, "warm");
    const req = await peer.request();
    let streamWindow = WINDOW, connWindow = 65_535;
    while (true) {
      const f = await peer.nextOf(FrameType.DATA);
      if (!f) return;
      streamWindow -= f.payload.length;
      connWindow -= f.payload.length;
      if (streamWindow < 0 || connWindow < 0) overrun++;
      received += f.payload.length;
      if (f.flags & Flag.END_STREAM) break;
      if (streamWindow === 0) {
        // Credit the stream a window at a time, the connection only every 50,000 bytes: both must hold.
        streamWindow += WINDOW;
        await peer.send(windowUpdateFrame(req!.stream, WINDOW));
        if (connWindow < 50_000) {
          connWindow += 50_000;
          await peer.send(windowUpdateFrame(0, 50_000));
        }
      }
    }
    await peer.send(
      headersFrame(req!.stream, [[":status", "201"]]),
      dataFrame(req!.stream, String(received), true),
    );
    await peer.next();
  }, { settings: [[Setting.INITIAL_WINDOW_SIZE, WINDOW]] });
  const t = transport(server.ca);
  try {
    assert.equal(await (await t.request(server.url, "GET", "/", new Headers()))!.text(), "warm");
    const body = new Uint8Array(size).fill(0x61);
    const res = (await t.request(server.url, "PUT", "/big", new Headers(), body))!;
    assert.equal(res.status, 201);
    assert.equal(await res.text(), String(size));
    assert.equal(overrun, 0, "the client sent past a window");
  } finally {
    t.close();
    await server.close();
  }
});

Deno.test("http2: an oversized frame ends the connection with FRAME_SIZE_ERROR", async () => {
  let goaway: number | undefined;
  const server = await h2Server(async (peer) => {
    await peer.request();
    const header = new Uint8Array(9);
    header.set([0x00, 0x4e, 0x20, FrameType.DATA, 0, 0, 0, 0, 1]); // 20,000 bytes > 16,384
    await peer.send(header);
    const f = await peer.nextOf(FrameType.GOAWAY);
    goaway = f && new DataView(f.payload.buffer).getUint32(4);
  });
  const t = transport(server.ca);
  try {
    await assert.rejects(
      t.request(server.url, "GET", "/", new Headers()),
      /protocol error.*20000-byte frame/,
    );
    for (let i = 0; i < 100 && goaway === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(goaway, ErrorCode.FRAME_SIZE_ERROR);
  } finally {
    t.close();
    await server.close();
  }
});

Deno.test("http2: a server that does not offer h2 leaves the request to fetch", async () => {
  const server = await h2Server(() => Promise.resolve(), { alpn: ["http/1.1"] });
  const t = transport(server.ca);
  try {
    assert.equal(await t.request(server.url, "GET", "/", new Headers()), undefined);
    assert.equal(await t.request(server.url, "GET", "/again", new Headers()), undefined);
    assert.equal(server.accepted, 1, "asked once, remembered");
  } finally {
    t.close();
    await server.close();
  }
});

Deno.test("http2: a proxy in the environment, or plain http, leaves requests to fetch", async () => {
  const env = (vars: Record<string, string>) => (n: string) => vars[n];
  assert.equal(proxied("10.0.0.1", env({})), false);
  assert.equal(proxied("10.0.0.1", env({ HTTPS_PROXY: "http://proxy:3128" })), true);
  assert.equal(proxied("10.0.0.1", env({ https_proxy: "http://proxy:3128", NO_PROXY: "10.0.0.1" })), false);
  assert.equal(proxied("api.example.com", env({ ALL_PROXY: "http://p", no_proxy: ".example.com" })), false);
  assert.equal(proxied("api.example.com", env({ ALL_PROXY: "http://p", NO_PROXY: "example.com" })), false);
  assert.equal(proxied("api.example.org", env({ ALL_PROXY: "http://p", NO_PROXY: "example.com" })), true);
  assert.equal(proxied("[::1]", env({ HTTPS_PROXY: "http://p", NO_PROXY: "::1" })), false);
  assert.equal(proxied("anything", env({ HTTPS_PROXY: "http://p", NO_PROXY: "*" })), false);
  const t = new Http2Transport({}, env({ HTTPS_PROXY: "http://127.0.0.1:9" }));
  assert.equal(await t.request("https://10.0.0.1:6443", "GET", "/", new Headers()), undefined);
  assert.equal(await t.request("http://127.0.0.1:8080", "GET", "/", new Headers()), undefined);
  t.close();
});
