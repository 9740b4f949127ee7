// A pod whose binding exists but whose assignment is not Assigned yet waits, woken by the watch (no
// polling): served within 100 ms of its AzureAssignedIdentity turning Assigned when IMDS knows the identity
// at once, and within the deadline when IMDS still says "Identity not found" for 10 s after the attach
// (retried by NMI, never shown to the client). Past the deadline: a retryable 404, or 503 + Retry-After.

import assert from "node:assert/strict";
import { Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { msiSpec, request, startHarness, tokenPath } from "./harness.ts";

Deno.test("identity assigned while the pod waits is served within 100 ms of Assigned (propagation 0)", async () => {
  const h = await startHarness({ attached: ["id-w"], emulator: { imdsPropagationDelayMs: 0 } });
  try {
    const id = await h.createIdentity("id-w", msiSpec(h.ids["id-w"]));
    const b = await h.createBinding("b-w", "id-w", "wait");
    const pod = await h.createPod("pod-w", { aadpodidbinding: "wait" });
    const aai = await h.assign(pod, id, b, "Created");
    const lags: number[] = [];
    for (
      const resource of [
        "https://vault.azure.net",
        "https://storage.azure.com",
        "https://graph.microsoft.com",
      ]
    ) {
      if (lags.length) await h.setAssignedStatus(aai, "Created");
      await new Promise((r) => setTimeout(r, 100));
      let answeredAt = 0;
      const pending = h.get(pod.ip, tokenPath(resource)).then((r) => {
        answeredAt = performance.now();
        return r;
      });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(answeredAt, 0, "answered before the assignment");
      const before = performance.now();
      await h.setAssignedStatus(aai, "Assigned");
      const r = await pending;
      assert.equal(r.status, 200, r.text);
      lags.push(answeredAt - before);
    }
    console.log(
      `served after Assigned (ms, including the PATCH round trip): ${
        lags.map((l) => l.toFixed(1)).join(", ")
      }`,
    );
    for (const l of lags) assert.ok(l < 100, `served ${l.toFixed(1)} ms after Assigned`);
  } finally {
    await h.close();
  }
});

Deno.test("IMDS 'Identity not found' for 10 s after the attach is retried within the deadline", async () => {
  const h = await startHarness({
    detached: ["id-late"],
    emulator: { imdsPropagationDelayMs: 10_000 },
    nmiArgs: ["--identity-wait-deadline", "20s"],
  });
  try {
    const id = await h.createIdentity("id-late", msiSpec(h.ids["id-late"]));
    const b = await h.createBinding("b-late", "id-late", "late");
    const pod = await h.createPod("pod-late", { aadpodidbinding: "late" });
    const aai = await h.assign(pod, id, b, "Created");
    const t0 = performance.now();
    const pending = h.get(pod.ip, tokenPath());
    // What MIC does: attach on the scale set, then mark the assignment Assigned.
    await h.attachIdentity("id-late");
    const attachedAt = performance.now();
    await h.setAssignedStatus(aai, "Assigned");
    const r = await pending;
    const total = performance.now() - t0;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.client_id, h.ids["id-late"].clientId);
    const notFound = h.emu.requests.count({ service: "imds", route: "imds.token", status: 400 });
    console.log(
      `served ${
        ((performance.now() - attachedAt) / 1000).toFixed(1)
      } s after the attach (${notFound} 'Identity not found' retried); total ${(total / 1000).toFixed(1)} s`,
    );
    assert.ok(notFound >= 1, "IMDS said Identity not found at least once");
    assert.ok(total < 20_000);
    assert.equal(h.emu.requests.count({ service: "imds", status: 429 }), 0);
  } finally {
    await h.close();
  }
});

Deno.test("IMDS 'Identity not found' past the window for an Assigned identity: an IdentityNotFoundOnNode event for MIC", async () => {
  const h = await startHarness({
    detached: ["id-gone"],
    nmiArgs: ["--identity-wait-deadline", "600ms", "--identity-missing-after", "0s"],
  });
  try {
    const id = await h.createIdentity("id-gone", msiSpec(h.ids["id-gone"]));
    const b = await h.createBinding("b-gone", "id-gone", "gone");
    const pod = await h.createPod("pod-gone", { aadpodidbinding: "gone" });
    // Assigned, but missing from the scale set (removed behind MIC's back).
    const aai = await h.assign(pod, id, b, "Assigned");
    const r = await h.get(pod.ip, tokenPath());
    assert.equal(r.status, 404, r.text);
    const deadline = Date.now() + 10_000;
    let events: { reason?: string; message?: string; involvedObject?: { name?: string; kind?: string } }[] =
      [];
    while (Date.now() < deadline) {
      const list = await h.kube.list<KubeObject & { reason?: string }>(Resources.events, {
        namespace: h.ns,
        fieldSelector: "reason=IdentityNotFoundOnNode",
      });
      events = list.items as typeof events;
      if (events.length) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(events.length, 1, "one IdentityNotFoundOnNode event");
    assert.equal(events[0].involvedObject?.kind, "AzureAssignedIdentity");
    assert.equal(events[0].involvedObject?.name, aai);
    assert.match(events[0].message ?? "", new RegExp(h.ids["id-gone"].clientId));
  } finally {
    await h.close();
  }
});

Deno.test("an identity assigned less than --identity-missing-after ago is not reported", async () => {
  const h = await startHarness({ detached: ["id-new"], nmiArgs: ["--identity-wait-deadline", "600ms"] });
  try {
    const id = await h.createIdentity("id-new", msiSpec(h.ids["id-new"]));
    const b = await h.createBinding("b-new", "id-new", "new");
    const pod = await h.createPod("pod-new", { aadpodidbinding: "new" });
    await h.assign(pod, id, b, "Assigned");
    const r = await h.get(pod.ip, tokenPath());
    assert.equal(r.status, 404, r.text);
    await new Promise((res) => setTimeout(res, 1000));
    const list = await h.kube.list(Resources.events, {
      namespace: h.ns,
      fieldSelector: "reason=IdentityNotFoundOnNode",
    });
    assert.equal(list.items.length, 0);
  } finally {
    await h.close();
  }
});

Deno.test("deadline passes: 404, or 503 + Retry-After with --set-retry-after-header", async () => {
  const h = await startHarness({ attached: ["id-d"], nmiArgs: ["--identity-wait-deadline", "500ms"] });
  try {
    const id = await h.createIdentity("id-d", msiSpec(h.ids["id-d"]));
    const b = await h.createBinding("b-d", "id-d", "dead");
    const pod = await h.createPod("pod-d", { aadpodidbinding: "dead" });
    await h.assign(pod, id, b, "Created");
    const t0 = performance.now();
    const r = await h.get(pod.ip, tokenPath());
    assert.equal(r.status, 404, r.text);
    assert.equal(r.json.error, "not_found");
    assert.ok(performance.now() - t0 >= 450);
    await h.startNmi(["--set-retry-after-header"]);
    const r2 = await h.get(pod.ip, tokenPath());
    assert.equal(r2.status, 503, r2.text);
    assert.equal(r2.headers["retry-after"], "20");
    // /host/token never sends Retry-After (as the original).
    const host = await request(
      h.nmi.port,
      "127.0.0.1",
      `/host/token?resource=https%3A%2F%2Fvault.azure.net`,
      {
        headers: { podns: h.ns, podname: "pod-d" },
      },
    );
    assert.equal(host.status, 404, host.text);
  } finally {
    await h.close();
  }
});
