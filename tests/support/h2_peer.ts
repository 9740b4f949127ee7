// A scripted HTTP/2 server over TLS for lib/kube/http2's tests: each accepted connection is handed to the
// test as a peer that reads the client's frames one by one and writes whatever frames the test wants,
// misbehaviour included (GOAWAY mid-request, resets, padding, a silent peer). Frames are the wire format
// of RFC 9113 written with lib/kube/http2/frames.ts; request headers are decoded with the HPACK decoder.

import { type HeaderField, HpackDecoder } from "../../lib/kube/http2/hpack.ts";
import {
  Flag,
  frame,
  FRAME_HEADER_LENGTH,
  FrameType,
  PREFACE,
  settingsFrame,
} from "../../lib/kube/http2/frames.ts";
import { ensureCa, issueCert } from "../../scripts/sandbox/pki.ts";

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Uint8Array;
}

export interface Peer {
  /** The next frame from the client; undefined once it closed the connection. */
  next(): Promise<Frame | undefined>;
  /** The next frame of `type` (others are skipped, SETTINGS acknowledged on the way). */
  nextOf(type: number): Promise<Frame | undefined>;
  /** Reads frames until a request's header block is complete; its stream and decoded fields. */
  request(): Promise<{ stream: number; fields: HeaderField[] } | undefined>;
  send(...frames: Uint8Array[]): Promise<void>;
  close(): void;
}

interface H2Server {
  url: string;
  /** The CA that signed the server's certificate (PEM). */
  ca: string;
  /** Connections accepted so far. */
  accepted: number;
  close(): Promise<void>;
}

let pki: Promise<{ ca: string; cert: string; key: string }> | undefined;

function certificates() {
  pki ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "h2-peer-pki-" });
    const ca = await ensureCa(dir, "h2 peer test CA");
    const leaf = await issueCert(ca, dir, "server", {
      commonName: "h2-peer",
      ipAddresses: ["127.0.0.1"],
      usage: "server",
    });
    const read = (p: string) => Deno.readTextFile(p);
    return { ca: await read(ca.certPath), cert: await read(leaf.certPath), key: await read(leaf.keyPath) };
  })();
  return pki;
}

/**
 * Serves on 127.0.0.1 with ALPN `alpn` (default h2). Per connection: reads the preface, sends its
 * SETTINGS (`settings`, default none), then runs `script`.
 */
export async function h2Server(
  script: (peer: Peer, index: number) => Promise<void>,
  opts: { alpn?: string[]; settings?: [number, number][] } = {},
): Promise<H2Server> {
  const { ca, cert, key } = await certificates();
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert,
    key,
    alpnProtocols: opts.alpn ?? ["h2"],
  });
  const conns = new Set<Deno.TlsConn>();
  const scripts: Promise<void>[] = [];
  const server: H2Server = {
    url: `https://127.0.0.1:${listener.addr.port}`,
    ca,
    accepted: 0,
    close: async () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await Promise.allSettled(scripts);
      await accepting;
    },
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      const index = server.accepted++;
      scripts.push(
        (async () => {
          const peer = await handshake(conn, opts.settings ?? []);
          if (peer) await script(peer, index);
        })().catch(() => {}).finally(() => {
          conns.delete(conn);
          try {
            conn.close();
          } catch { /* closed */ }
        }),
      );
    }
  })().catch(() => {});
  return server;
}

async function handshake(conn: Deno.TlsConn, settings: [number, number][]): Promise<Peer | undefined> {
  let buf = new Uint8Array(0);
  const fill = async (n: number): Promise<boolean> => {
    while (buf.length < n) {
      const chunk = new Uint8Array(64 * 1024);
      const got = await conn.read(chunk).catch(() => null);
      if (got === null) return false;
      const next = new Uint8Array(buf.length + got);
      next.set(buf);
      next.set(chunk.subarray(0, got), buf.length);
      buf = next;
    }
    return true;
  };
  const take = (n: number) => {
    const out = buf.slice(0, n);
    buf = buf.slice(n);
    return out;
  };
  if (!(await fill(PREFACE.length))) return undefined;
  take(PREFACE.length);
  const decoder = new HpackDecoder();
  const send = async (...frames: Uint8Array[]) => {
    for (const f of frames) {
      for (let off = 0; off < f.length;) off += await conn.write(f.subarray(off));
    }
  };
  const next = async (): Promise<Frame | undefined> => {
    if (!(await fill(FRAME_HEADER_LENGTH))) return undefined;
    const length = (buf[0] << 16) | (buf[1] << 8) | buf[2];
    if (!(await fill(FRAME_HEADER_LENGTH + length))) return undefined;
    const head = take(FRAME_HEADER_LENGTH);
    const stream = new DataView(head.buffer).getUint32(5) & 0x7fffffff;
    return { type: head[3], flags: head[4], stream, payload: take(length) };
  };
  const nextOf = async (type: number): Promise<Frame | undefined> => {
    while (true) {
      const f = await next();
      if (!f || f.type === type) return f;
      if (f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK)) {
        await send(frame(FrameType.SETTINGS, Flag.ACK, 0));
      }
    }
  };
  await send(settingsFrame(settings));
  return {
    next,
    nextOf,
    send,
    request: async () => {
      const first = await nextOf(FrameType.HEADERS);
      if (!first) return undefined;
      const parts = [first.payload];
      let last = first;
      while (!(last.flags & Flag.END_HEADERS)) {
        const more = await next();
        if (!more || more.type !== FrameType.CONTINUATION) return undefined;
        parts.push(more.payload);
        last = more;
      }
      const block = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let off = 0;
      for (const p of parts) block.set(p, (off += p.length) - p.length);
      return { stream: first.stream, fields: decoder.decode(block) };
    },
    close: () => {
      try {
        conn.close();
      } catch { /* closed */ }
    },
  };
}

/** A HEADERS frame with a literal header block (no HPACK table), END_HEADERS set. */
export function headersFrame(stream: number, fields: HeaderField[], endStream = false): Uint8Array {
  const bytes: number[] = [];
  const enc = new TextEncoder();
  for (const [n, v] of fields) {
    bytes.push(0x00);
    for (const s of [enc.encode(n), enc.encode(v)]) {
      if (s.length >= 127) throw new Error("test header too long for this helper");
      bytes.push(s.length, ...s);
    }
  }
  return frame(
    FrameType.HEADERS,
    Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0),
    stream,
    Uint8Array.from(bytes),
  );
}

export function dataFrame(stream: number, data: Uint8Array | string, endStream = false, padding?: number) {
  const body = typeof data === "string" ? new TextEncoder().encode(data) : data;
  if (padding === undefined) return frame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, stream, body);
  const payload = new Uint8Array(1 + body.length + padding);
  payload[0] = padding;
  payload.set(body, 1);
  return frame(FrameType.DATA, Flag.PADDED | (endStream ? Flag.END_STREAM : 0), stream, payload);
}
