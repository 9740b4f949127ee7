// Upstream protection and bad input: 1,000 concurrent identical requests make exactly one IMDS call, and
// many distinct ones stay inside IMDS's 20/s and 5-concurrent limits (the emulated IMDS answers 429 beyond
// them, so "no 429" is the check). Bad input gets a clear 4xx, changes nothing, reaches no upstream, and
// leaves NMI serving.

import assert from "node:assert/strict";
import net from "node:net";
import { MD, msiSpec, startHarness, TOKEN_PATH, tokenPath } from "./harness.ts";

Deno.test("1,000 concurrent requests for one identity/resource: one upstream call; many resources: no 429", async () => {
  const h = await startHarness({ attached: ["id-l"] });
  try {
    const id = await h.createIdentity("id-l", msiSpec(h.ids["id-l"]));
    const b = await h.createBinding("b-l", "id-l", "load");
    const pod = await h.createPod("pod-l", { aadpodidbinding: "load" });
    await h.assign(pod, id, b, "Assigned");
    const results = await Promise.all(Array.from({ length: 1000 }, () => h.get(pod.ip, tokenPath())));
    const statuses = new Map<number, number>();
    for (const r of results) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    assert.deepEqual([...statuses], [[200, 1000]]);
    assert.equal(new Set(results.map((r) => r.json.access_token)).size, 1);
    assert.equal(h.emu.requests.count({ service: "imds", route: "imds.token" }), 1);

    // 40 distinct resources at once: all served, paced under IMDS's limits (no 429 from the emulator).
    const resources = Array.from({ length: 40 }, (_, i) => `api://nmi-load-${i}`);
    for (const r of resources) h.emu.registerResource(r);
    const t0 = performance.now();
    const many = await Promise.all(
      resources.flatMap((r) => Array.from({ length: 5 }, () => h.get(pod.ip, tokenPath(r)))),
    );
    const seconds = (performance.now() - t0) / 1000;
    assert.ok(many.every((r) => r.status === 200), many.find((r) => r.status !== 200)?.text ?? "");
    const imds = h.emu.requests.list({ service: "imds", route: "imds.token" });
    assert.equal(imds.length, 41);
    assert.equal(imds.filter((e) => e.status === 429).length, 0);
    // No rolling second holds more than 20 upstream calls.
    const times = imds.map((e) => Date.parse(e.time)).sort((a, b) => a - b);
    for (let i = 20; i < times.length; i++) assert.ok(times[i] - times[i - 20] >= 1000 - 5, `window at ${i}`);
    console.log(`40 resources x 5 requests: ${seconds.toFixed(1)} s, ${imds.length} IMDS calls, 0 429`);
  } finally {
    await h.close();
  }
});

/** Sends raw bytes and returns the status line and body (for requests node:http refuses to build). */
function raw(port: number, fromIp: string, text: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: "127.0.0.1", port, localAddress: fromIp }, () => sock.end(text));
    let data = "";
    sock.on("data", (d: Uint8Array) => data += new TextDecoder().decode(d));
    sock.on("end", () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      resolve({ status: m ? Number(m[1]) : 0, body: data.slice(data.indexOf("\r\n\r\n") + 4) });
    });
    sock.on("error", reject);
  });
}

Deno.test("bad input: a clear 4xx, no upstream call, no crash", async () => {
  const h = await startHarness({ attached: ["id-x"] });
  try {
    const id = await h.createIdentity("id-x", msiSpec(h.ids["id-x"]));
    const b = await h.createBinding("b-x", "id-x", "bad");
    const pod = await h.createPod("pod-x", { aadpodidbinding: "bad" });
    await h.assign(pod, id, b, "Assigned");
    const imdsCalls = () => h.emu.requests.count({ service: "imds" });
    const before = imdsCalls();
    const cases: [string, Promise<{ status: number; text?: string; body?: string }>, number][] = [
      ["very long query", h.get(pod.ip, `${TOKEN_PATH}?resource=${"a".repeat(20_000)}`), 414],
      ["non-ASCII resource", h.get(pod.ip, `${TOKEN_PATH}?resource=%C3%BF`), 400],
      ["duplicate resource", h.get(pod.ip, `${TOKEN_PATH}?resource=a&resource=b`), 400],
      ["duplicate client_id", h.get(pod.ip, `${tokenPath()}&client_id=a&client_id=b`), 400],
      ["two selectors", h.get(pod.ip, `${tokenPath()}&client_id=a&msi_res_id=b`), 400],
      ["invalid UTF-8 in query", h.get(pod.ip, `${TOKEN_PATH}?resource=%ff%fe%fd`), 400],
      ["invalid percent escape", h.get(pod.ip, `${TOKEN_PATH}?resource=%zz`), 400],
      ["invalid UTF-8 in path", h.get(pod.ip, `/metadata/identity/oauth2/%ff%fetoken?resource=a`), 400],
      ["unknown method on token", h.get(pod.ip, tokenPath(), MD, "PROPFIND"), 405],
      ["unknown method on proxy", h.get(pod.ip, "/metadata/versions", MD, "FOO"), 405],
      ["huge header", h.get(pod.ip, tokenPath(), { ...MD, "x-big": "b".repeat(20_000) }), 431],
      // More than 100 headers: Deno's HTTP layer answers 400 itself, before NMI's handler.
      [
        "many headers",
        h.get(pod.ip, tokenPath(), {
          ...MD,
          ...Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`x-h${i}`, "v".repeat(30)])),
        }),
        400,
      ],
      [
        "raw bytes in request line",
        raw(
          h.nmi.port,
          pod.ip,
          `GET ${TOKEN_PATH}?resource=\u00ff\u00fe HTTP/1.1\r\nHost: x\r\nMetadata: true\r\nConnection: close\r\n\r\n`,
        ),
        400,
      ],
      ["garbage", raw(h.nmi.port, pod.ip, "\u0000\u0001\u0002 nonsense\r\n\r\n"), 400],
    ];
    for (const [name, pending, expected] of cases) {
      const r = await pending;
      assert.equal(r.status, expected, `${name}: ${r.text ?? r.body}`);
      assert.ok(r.status >= 400 && r.status < 500, name);
    }
    // Request heads beyond Deno's HTTP layer limit (about 64 KiB) never reach NMI's handler: the connection
    // is dropped (no response) or refused with a 4xx; either way nothing else happens.
    for (
      const big of [
        h.get(pod.ip, `${TOKEN_PATH}?resource=${"a".repeat(200_000)}`),
        h.get(pod.ip, tokenPath(), { ...MD, "x-huge": "h".repeat(500_000) }),
      ]
    ) {
      const r = await big.then((a) => a.status, (e: Error) => e.message);
      assert.ok(typeof r === "string" ? /ECONNRESET|socket hang up/.test(r) : r >= 400 && r < 500, String(r));
    }
    assert.equal(imdsCalls(), before, "no bad request reached IMDS");
    // Still serving, and the metadata check still comes first.
    assert.equal((await h.get(pod.ip, tokenPath())).status, 200);
    assert.equal((await h.get(pod.ip, `${TOKEN_PATH}?resource=a&resource=b`, {})).status, 400);
  } finally {
    await h.close();
  }
});
