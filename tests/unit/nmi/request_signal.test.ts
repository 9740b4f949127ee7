// The cached token path must not read `req.signal`: Deno.serve aborts a signal that was read with a new
// DOMException when the response ends, which costs a captured stack per request (half the floor's req/s).
// A request that waits for an assignment still gets the request's signal, so a client that hangs up stops
// the wait.

import assert from "node:assert/strict";
import { createLogger } from "../../../lib/log.ts";
import type { CallerResolver } from "../../../nmi/caller.ts";
import type { NmiCaches } from "../../../nmi/caches.ts";
import type { UpstreamLimiter } from "../../../nmi/limiter.ts";
import { NmiMetrics } from "../../../nmi/metrics.ts";
import { createHandler } from "../../../nmi/server.ts";
import type { TokenFlow } from "../../../nmi/token_flow.ts";
import type { Token } from "../../../nmi/token.ts";

const TOKEN: Token = {
  accessToken: "eyJ0eXAiOiJKV1QifQ.e30.sig",
  expiresOn: Math.floor(Date.now() / 1000) + 3600,
  notBefore: Math.floor(Date.now() / 1000),
  resource: "https://management.azure.com/",
  tokenType: "Bearer",
  clientId: "00000000-0000-4000-8000-000000000001",
};

function handlerWith(run: TokenFlow["run"]) {
  const pod = { metadata: { name: "app", namespace: "default" }, spec: { nodeName: "n1" } };
  return createHandler({
    flow: { run } as unknown as TokenFlow,
    callers: { byIp: () => Promise.resolve({ ok: true, pod }) } as unknown as CallerResolver,
    caches: { isSynced: () => true } as unknown as NmiCaches,
    imdsBase: "http://127.0.0.1:1",
    limiter: {} as UpstreamLimiter,
    blockInstanceMetadata: false,
    metadataHeaderRequired: true,
    upstreamTimeoutMs: 1000,
    waitDeadlineMs: 1000,
    metrics: new NmiMetrics(),
    log: createLogger({ level: "error" }),
  });
}

/** A token request that records whether anything read its signal. */
function tokenRequest(): { req: Request; signalRead: () => boolean } {
  const req = new Request(
    "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F",
    { headers: { Metadata: "true" } },
  );
  let read = false;
  const signal = req.signal;
  Object.defineProperty(req, "signal", {
    get() {
      read = true;
      return signal;
    },
  });
  return { req, signalRead: () => read };
}

const info = { remoteAddr: { transport: "tcp", hostname: "10.0.0.5", port: 40000 } } as Deno.ServeHandlerInfo;

Deno.test("NMI server: a cached token is served without reading req.signal", async () => {
  const handler = handlerWith(() =>
    Promise.resolve({ ok: true, token: TOKEN, clientId: "", identity: "id" })
  );
  const { req, signalRead } = tokenRequest();
  const res = await handler(req, info);
  assert.equal(res.status, 200);
  assert.equal(JSON.parse(await res.text()).access_token, TOKEN.accessToken);
  assert.equal(signalRead(), false);
});

Deno.test("NMI server: a flow that waits still gets the request's own signal", async () => {
  let seen: AbortSignal | undefined;
  const handler = handlerWith((_pod, _query, opts) => {
    seen = opts?.signal;
    return Promise.resolve({ ok: true, token: TOKEN, clientId: "", identity: "id" });
  });
  const { req, signalRead } = tokenRequest();
  await (await handler(req, info)).body?.cancel();
  assert.equal(signalRead(), true);
  assert.ok(seen instanceof AbortSignal);
});
