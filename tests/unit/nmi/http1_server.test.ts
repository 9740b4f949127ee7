// NMI's own HTTP/1.1 server over real loopback sockets: keep-alive, the head/idle timeouts, the per-IP
// connection cap, strict heads, streamed bodies, the client-left signal, and accept errors (EMFILE) survived
// (that one in a child process with a low file-descriptor limit).

import assert from "node:assert/strict";
import { parseHead } from "../../../nmi/http1_head.ts";
import { Http1Server } from "../../../nmi/http1_server.ts";
import type { Http1Limits, IncomingRequest } from "../../../nmi/http1_types.ts";
import { createLogger } from "../../../lib/log.ts";

const quiet = createLogger({ format: "text", level: "error" });
const enc = new TextEncoder();
const dec = new TextDecoder();

function serve(
  handler: (req: IncomingRequest) => Promise<Response> | Response,
  limits: Partial<Http1Limits> = {},
): { server: Http1Server; ac: AbortController } {
  const ac = new AbortController();
  const server = new Http1Server({
    hostname: "127.0.0.1",
    port: 0,
    handler: async (req) => await handler(req),
    log: quiet,
    limits,
    signal: ac.signal,
  });
  return { server, ac };
}

function connect(port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

/** Reads one response (head + Content-Length body) or null when the server closed the connection. */
async function readResponse(conn: Deno.Conn, carry = { buf: "" }): Promise<string | null> {
  const chunk = new Uint8Array(65536);
  for (;;) {
    const end = carry.buf.indexOf("\r\n\r\n");
    if (end >= 0) {
      const len = Number(/content-length: (\d+)/i.exec(carry.buf.slice(0, end))?.[1] ?? 0);
      if (carry.buf.length >= end + 4 + len) {
        const res = carry.buf.slice(0, end + 4 + len);
        carry.buf = carry.buf.slice(end + 4 + len);
        return res;
      }
    }
    const n = await conn.read(chunk).catch(() => null);
    if (n === null) return null;
    carry.buf += dec.decode(chunk.subarray(0, n));
  }
}

Deno.test("http1: 200 requests on one kept-alive connection, pipelined ones too", async () => {
  const { server, ac } = serve((req) => new Response(new URL(req.url).pathname));
  const conn = await connect(server.addr.port);
  try {
    const carry = { buf: "" };
    for (let i = 0; i < 200; i++) {
      await conn.write(enc.encode(`GET /r${i} HTTP/1.1\r\nHost: x\r\n\r\n`));
      const res = await readResponse(conn, carry);
      assert.ok(res?.startsWith("HTTP/1.1 200 OK") && res.endsWith(`/r${i}`), `request ${i}: ${res}`);
    }
    await conn.write(enc.encode("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert.ok((await readResponse(conn, carry))?.endsWith("/a"));
    assert.ok((await readResponse(conn, carry))?.endsWith("/b"));
    assert.equal(server.stats.requests, 202, "every request counted (NMI's idle collection reads this)");
  } finally {
    conn.close();
    ac.abort();
    await server.finished;
  }
});

Deno.test("http1: a slow head is cut at the head timeout, an idle kept-alive connection at the idle timeout", async () => {
  const { server, ac } = serve(() => new Response("ok"), { headTimeoutMs: 300, idleTimeoutMs: 500 });
  const slow = await connect(server.addr.port);
  let idle: Deno.TcpConn | undefined;
  try {
    const t0 = performance.now();
    await slow.write(enc.encode("GET / HTTP/1.1\r\nHost: x\r\n"));
    // Another client is served meanwhile.
    const other = await fetch(`http://127.0.0.1:${server.addr.port}/`);
    assert.equal(await other.text(), "ok");
    assert.equal(await readResponse(slow), null);
    const slowMs = performance.now() - t0;
    assert.ok(slowMs >= 250 && slowMs < 2000, `slow head closed after ${slowMs} ms`);
    idle = await connect(server.addr.port);
    await idle.write(enc.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert.ok((await readResponse(idle))?.startsWith("HTTP/1.1 200"));
    const t1 = performance.now();
    assert.equal(await readResponse(idle), null);
    const idleMs = performance.now() - t1;
    assert.ok(idleMs >= 400 && idleMs < 2500, `idle connection closed after ${idleMs} ms`);
    assert.ok(server.stats.timedOut >= 2);
  } finally {
    slow.close();
    idle?.close();
    ac.abort();
    await server.finished;
  }
});

Deno.test("http1: connections over the per-IP cap are closed at once; the others keep working", async () => {
  const { server, ac } = serve(() => new Response("ok"), { maxConnectionsPerIp: 3 });
  const held = await Promise.all([1, 2, 3].map(() => connect(server.addr.port)));
  try {
    const extra = await connect(server.addr.port);
    assert.equal(await readResponse(extra), null, "the fourth connection is closed");
    extra.close();
    assert.equal(server.stats.refusedPerIp, 1);
    await held[0].write(enc.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert.ok((await readResponse(held[0]))?.startsWith("HTTP/1.1 200"));
    held[1].close();
    // A closed connection frees its place.
    await new Promise((r) => setTimeout(r, 50));
    const again = await connect(server.addr.port);
    await again.write(enc.encode("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    assert.ok((await readResponse(again))?.startsWith("HTTP/1.1 200"));
    again.close();
  } finally {
    for (const c of held) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    ac.abort();
    await server.finished;
  }
});

Deno.test("http1: ambiguous heads are refused (smuggling): CL+TE, two CLs, folding, space before colon", () => {
  const bad: [string, number][] = [
    ["POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400],
    ["POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400],
    ["POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nX : a\r\n\r\n", 400],
    ["POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501],
    ["GET / HTTP/2.0\r\n\r\n", 505],
    ["GET  / HTTP/1.1\r\n\r\n", 400],
    [`GET / HTTP/1.1\r\n${"X-A: b\r\n".repeat(101)}\r\n`, 400],
  ];
  for (const [text, status] of bad) {
    const r = parseHead(text);
    assert.ok(!r.ok && r.status === status, JSON.stringify(text));
  }
  const ok = parseHead("POST /p?q=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  assert.ok(ok.ok && ok.head.body.kind === "chunked" && ok.head.target === "/p?q=1" && ok.head.keepAlive);
  const closing = parseHead("GET / HTTP/1.0\r\n\r\n");
  assert.ok(closing.ok && !closing.head.keepAlive);
});

Deno.test("http1: bodies are streamed (chunked and fixed length); an unread body closes the connection", async () => {
  let pulled = 0;
  const { server, ac } = serve(async (req) => {
    if (req.url.endsWith("/read")) return new Response(await new Response(req.body).text());
    // Reads one piece only, then answers.
    const r = req.body!.getReader();
    pulled += (await r.read()).value?.length ?? 0;
    return new Response("enough", { status: 413 });
  });
  const conn = await connect(server.addr.port);
  try {
    const carry = { buf: "" };
    await conn.write(enc.encode("POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
    await conn.write(enc.encode("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"));
    assert.ok((await readResponse(conn, carry))?.endsWith("hello world"));
    await conn.write(enc.encode("POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"));
    assert.ok((await readResponse(conn, carry))?.endsWith("abc"));
    // 10 MiB announced, 64 KiB sent: the handler stops early and the connection is closed, not drained.
    await conn.write(enc.encode("POST /stop HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n"));
    await conn.write(new Uint8Array(65536));
    const res = await readResponse(conn, carry);
    assert.ok(res?.startsWith("HTTP/1.1 413") && /connection: close/i.test(res), res ?? "");
    assert.equal(await readResponse(conn, carry), null);
    assert.ok(pulled > 0 && pulled <= 65536);
  } finally {
    conn.close();
    ac.abort();
    await server.finished;
  }
});

Deno.test("http1: the request's signal aborts when the client closes its connection", async () => {
  let aborted: () => void;
  const sawAbort = new Promise<void>((r) => aborted = r);
  const { server, ac } = serve((req) =>
    new Promise<Response>((resolve) => {
      req.signal.addEventListener("abort", () => {
        aborted();
        resolve(new Response("late"));
      });
    })
  );
  const conn = await connect(server.addr.port);
  try {
    await conn.write(enc.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await new Promise((r) => setTimeout(r, 50));
    conn.close();
    await Promise.race([
      sawAbort,
      new Promise((_, reject) => setTimeout(() => reject(new Error("no abort")), 2000)),
    ]);
  } finally {
    ac.abort();
    await server.finished;
  }
});

Deno.test("http1: accept errors (EMFILE) are backed off and the server keeps serving", async () => {
  // A child process with 64 file descriptors; 200 connections exhaust them. Deno.serve exits here with an
  // uncaught "Too many open files (os error 24)"; this server must answer once the connections are gone.
  const script = `
    import { Http1Server } from "${new URL("../../../nmi/http1_server.ts", import.meta.url).href}";
    import { createLogger } from "${new URL("../../../lib/log.ts", import.meta.url).href}";
    const s = new Http1Server({ hostname: "127.0.0.1", port: 0, log: createLogger({ format: "text", level: "info" }),
      handler: () => Promise.resolve(new Response("alive")) });
    console.log("port", s.addr.port);
    setTimeout(() => Deno.exit(0), 120000);`;
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(file, script);
  const child = new Deno.Command("bash", {
    args: ["-c", `ulimit -n 64 && exec "${Deno.execPath()}" run -A "${file}"`],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const errText = new Response(child.stderr).text();
  try {
    let out = "";
    while (!/port (\d+)/.test(out)) out += (await lines.read()).value ?? "";
    const port = Number(/port (\d+)/.exec(out)![1]);
    const conns: Deno.Conn[] = [];
    for (let i = 0; i < 200; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    await new Promise((r) => setTimeout(r, 300));
    for (const c of conns) c.close();
    let answer = "";
    for (let i = 0; i < 50 && answer !== "alive"; i++) {
      answer = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) })
        .then((r) => r.text(), () => "");
      if (answer !== "alive") await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(answer, "alive");
    child.kill("SIGTERM");
    const stderr = await errText;
    assert.match(stderr, /accepting a connection failed; backing off/);
    assert.equal(stderr.match(/accepting a connection failed/g)?.length, 1, "logged once per distinct error");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    lines.releaseLock();
    await Deno.remove(file);
  }
});

Deno.test("http1: Expect: 100-continue gets its go-ahead when the handler reads the body, never before", async () => {
  const { server, ac } = serve(async (req) =>
    req.url.endsWith("/read")
      ? new Response(await new Response(req.body).text())
      : new Response("no", { status: 413 })
  );
  const conn = await connect(server.addr.port);
  try {
    const carry = { buf: "" };
    await conn.write(
      enc.encode("POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"),
    );
    const interim = await readResponse(conn, carry);
    assert.ok(interim?.startsWith("HTTP/1.1 100 Continue"), interim ?? "");
    await conn.write(enc.encode("hello"));
    assert.ok((await readResponse(conn, carry))?.endsWith("hello"));
    // A handler that refuses without reading: no 100 Continue, the final answer at once.
    await conn.write(
      enc.encode("POST /no HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"),
    );
    assert.ok((await readResponse(conn, carry))?.startsWith("HTTP/1.1 413"));
  } finally {
    conn.close();
    ac.abort();
    await server.finished;
  }
});
