// IPv6 callers: a dual-stack pod (podIPs holds an IPv4 and an IPv6 address) calling from its IPv6 address
// is found through the node's pod watch, and IPv6 addresses no pod holds are refused.

import assert from "node:assert/strict";
import { msiSpec, request, startHarness, tokenPath } from "./harness.ts";

Deno.test("an IPv6 caller is resolved to its dual-stack pod", async () => {
  const h = await startHarness({ attached: ["id-6"], nmiArgs: ["--nmi-listen-address", "::1"] });
  try {
    const id = await h.createIdentity("id-6", msiSpec(h.ids["id-6"]));
    const b = await h.createBinding("b-6", "id-6", "six");
    const pod = await h.createPod("pod-6", { aadpodidbinding: "six" }, { ipv6: "::1" });
    await h.assign(pod, id, b, "Assigned");
    const r = await request(h.nmi.port, "::1", tokenPath(), { host: "::1", headers: { Metadata: "true" } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.client_id, h.ids["id-6"].clientId);
  } finally {
    await h.close();
  }
});
