// The light shapes of NMI's HTTP/1.1 server: request fields read as `Headers` reads them (without building
// one), and an answer given as bytes (no fetch `Response`) written exactly as a `Response` would be.

import assert from "node:assert/strict";
import { Http1Server } from "../../../nmi/http1_server.ts";
import { HeadFields, type IncomingRequest, type PlainAnswer } from "../../../nmi/http1_types.ts";
import { headerBytes } from "../../../nmi/request.ts";
import { createLogger } from "../../../lib/log.ts";

const quiet = createLogger({ format: "text", level: "error" });

Deno.test("HeadFields: names case-insensitive, repeated fields joined as Headers joins them, same byte count", () => {
  const pairs: [string, string][] = [["Metadata", "true"], ["X-A", "1"], ["x-a", "2"], ["Host", "h"]];
  const fields = new HeadFields(pairs);
  const headers = new Headers(pairs);
  for (const name of ["metadata", "METADATA", "x-a", "host", "absent"]) {
    assert.equal(fields.get(name), headers.get(name), name);
    assert.equal(fields.has(name), headers.has(name), name);
  }
  const sorted = (h: Iterable<[string, string]>) => [...h].sort(([a], [b]) => a.localeCompare(b));
  assert.deepEqual(sorted(fields), sorted(headers));
  assert.equal(headerBytes(fields), headerBytes(headers));
});

async function exchange(port: number, request: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(request));
    let text = "";
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) return text;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
  } finally {
    conn.close();
  }
}

Deno.test("http1: a PlainAnswer is written as the same Response would be (status, headers, length, body)", async () => {
  const body = new TextEncoder().encode('{"access_token":"x"}');
  const answers: Record<string, () => Response | PlainAnswer> = {
    "/plain": () => ({ status: 404, headers: [["content-type", "application/json"], ["x-k", "v"]], body }),
    "/response": () =>
      new Response(body, { status: 404, headers: { "content-type": "application/json", "x-k": "v" } }),
  };
  const ac = new AbortController();
  const server = new Http1Server({
    hostname: "127.0.0.1",
    port: 0,
    handler: (req: IncomingRequest) => Promise.resolve(answers[new URL(req.url).pathname]()),
    log: quiet,
    signal: ac.signal,
  });
  try {
    const head = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
    const noDate = (t: string) => t.replace(/\r\ndate: [^\r]+/, "");
    const plain = await exchange(server.addr.port, head("/plain"));
    const response = await exchange(server.addr.port, head("/response"));
    assert.match(plain, /^HTTP\/1\.1 404 Not Found\r\n/);
    assert.match(plain, /\r\ndate: [^\r]+ GMT\r\n/);
    assert.match(plain, /\r\ncontent-length: 20\r\n[\s\S]*\r\n\r\n\{"access_token":"x"\}$/);
    assert.equal(noDate(plain), noDate(response));
  } finally {
    ac.abort();
    await server.finished;
  }
});

Deno.test("http1: one shared PlainAnswer answers many kept-alive requests, each framed whole", async () => {
  const shared: PlainAnswer = {
    status: 200,
    headers: [["content-type", "text/plain"]],
    body: new Uint8Array([104, 105]),
  };
  const ac = new AbortController();
  const server = new Http1Server({
    hostname: "127.0.0.1",
    port: 0,
    handler: () => Promise.resolve(shared),
    log: quiet,
    signal: ac.signal,
  });
  try {
    const requests = "GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20) +
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    const text = await exchange(server.addr.port, requests);
    const answers = text.split(/(?=HTTP\/1\.1 )/);
    assert.equal(answers.length, 21);
    for (const a of answers.slice(0, 20)) {
      assert.match(
        a,
        /^HTTP\/1\.1 200 OK\r\ncontent-type: text\/plain\r\ndate: [^\r]+\r\ncontent-length: 2\r\n\r\nhi$/,
      );
    }
    assert.match(answers[20], /\r\nconnection: close\r\n\r\nhi$/);
  } finally {
    ac.abort();
    await server.finished;
  }
});
