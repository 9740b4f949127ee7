// The comparison transport for `--ours-args=--node-http2`: the same requests and decoders as lib/kube's
// own HTTP/2 client, carried by `node:http2` instead (issue 19 item 11 asks whether it is as fast). One
// session per server, as the own client keeps one connection; bodies stream with back-pressure (a paused
// stream until the consumer pulls), each socket chunk handed on as it comes.

import http2 from "node:http2";
import { STATUS_CODES } from "node:http";
import type { Http2Requests } from "../../../lib/kube/config.ts";

export interface NodeH2Tls {
  ca?: string;
  cert?: string;
  key?: string;
}

export function nodeHttp2Transport(tls: NodeH2Tls): Http2Requests {
  const sessions = new Map<string, http2.ClientHttp2Session>();
  const session = (server: string) => {
    let s = sessions.get(server);
    if (!s || s.closed || s.destroyed) {
      s = http2.connect(server, { ...tls, settings: { initialWindowSize: 4 << 20 } });
      s.on("error", () => {});
      const opened = s;
      // The 1 GiB connection window the own client and Go's transport use.
      s.once("connect", () => opened.setLocalWindowSize(1 << 30));
      s.unref();
      sessions.set(server, s);
    }
    return s;
  };
  return {
    request(server, method, path, headers, body, signal) {
      const s = session(server);
      const h: http2.OutgoingHttpHeaders = { ":method": method, ":path": path };
      for (const [k, v] of headers) if (k !== "connection" && k !== "host") h[k] = v;
      const req = s.request(h, { endStream: !body?.length, signal });
      s.ref();
      req.on("close", () => s.unref());
      if (body?.length) req.end(body);
      return new Promise<Response>((resolve, reject) => {
        req.once("error", reject);
        req.once("response", (rh) => {
          const out = new Headers();
          for (const [k, v] of Object.entries(rh)) {
            if (!k.startsWith(":") && v !== undefined) {
              out.set(k, Array.isArray(v) ? v.join(", ") : String(v));
            }
          }
          const status = Number(rh[":status"]);
          resolve(
            new Response(status === 204 || status === 304 ? null : webStream(req), {
              status,
              statusText: STATUS_CODES[status] ?? "",
              headers: out,
            }),
          );
        });
      });
    },
    close() {
      for (const s of sessions.values()) s.close();
      sessions.clear();
    },
  };
}

function webStream(req: http2.ClientHttp2Stream): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(c) {
      req.on("data", (chunk: Uint8Array) => {
        c.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((c.desiredSize ?? 1) <= 0) req.pause();
      });
      req.once("end", () => c.close());
      req.once("error", (e) => c.error(e));
    },
    pull() {
      req.resume();
    },
    cancel() {
      req.close(http2.constants.NGHTTP2_CANCEL);
    },
  }, { highWaterMark: 1 });
}
