// MIC's and NMI's /metrics text is byte for byte what prom-client 15.1.3 wrote for the same calls: the
// fixture was captured from the prom-client build of lib/metrics.ts (commit 9cb061e) with this scenario,
// before prom-client was removed. Escaping, `le` formatting, sums, series order and blank lines all count.

import assert from "node:assert/strict";
import { micMetrics, recordArmCall, recordAssignedIdentityWrite } from "../../../mic/metrics.ts";
import { NmiMetrics } from "../../../nmi/metrics.ts";

const FIXTURE = new URL("./fixtures/prom-client-15.1.3.txt", import.meta.url);

function scenario(): string {
  const m = micMetrics();
  const n = new NmiMetrics();
  for (let i = 0; i < 100; i++) {
    n.observeRequest({
      kind: "token",
      rawPath: "/metadata/identity/oauth2/token",
      status: 200 + (i % 3) * 100,
      namespace: "ns" + (i % 4),
      resource: i % 5 ? "https://vault.azure.net" : 'we"ird\\x\ny',
    }, 0.0005 * i);
    n.observeUpstream(i % 2 ? "imds" : "aad", i % 7 !== 0, 0.01 * i);
    recordArmCall(m, "vmss_update", i % 10 ? "OK" : "Conflict", 0.25 * i);
    recordAssignedIdentityWrite(m, "assigned_identity_addition", 0.01);
    m.cycles.inc();
    m.assigned.set({ status: "Assigned" }, i);
  }
  n.observeRequest({
    kind: "instance",
    rawPath: "/metadata/instance",
    status: 200,
    namespace: "",
    resource: "",
  }, 0.1);
  n.waiting.inc();
  n.waiting.inc();
  n.waiting.dec();
  n.cache.inc({ result: "cache" }, 5);
  m.queueDepth.set(2.5);
  const mic = m.registry.metrics().replace(/(mic_memory_bytes\{kind="\w+"\}) \d+/g, "$1 X");
  return `${mic}\n${n.registry.metrics()}\n`;
}

Deno.test("metrics: MIC's and NMI's exposition equals prom-client 15.1.3's for the same calls", async () => {
  const want = await Deno.readTextFile(FIXTURE);
  const got = scenario();
  const wantLines = want.split("\n");
  const gotLines = got.split("\n");
  const first = wantLines.findIndex((l, i) => l !== gotLines[i]);
  assert.equal(first, -1, `line ${first + 1}: want ${wantLines[first]}\n got ${gotLines[first]}`);
  assert.equal(got, want);
});
