// Pod A never gets pod B's identity, however it asks, and loses its own as soon as NMI's watch delivers the
// deletion of its binding or its AzureAssignedIdentity (no token cache outlives the authorisation).

import assert from "node:assert/strict";
import { Resources } from "../../../lib/kube/rest.ts";
import { msiSpec, startHarness, tokenPath } from "./harness.ts";

/**
 * NMI learns of a deletion from its watch, so the request right after the DELETE call may still be served:
 * how long that window lasts is what these steps bound. Every answer after the first refusal is a refusal
 * too (the authorisation runs before the token cache on every request).
 */
const WATCH_WINDOW_MS = 1_000;

async function untilRefused<T extends { status: number }>(
  ask: () => Promise<T>,
): Promise<{ answer: T; servedForMs: number }> {
  const t0 = performance.now();
  let servedForMs = 0;
  for (;;) {
    const answer = await ask();
    if (answer.status !== 200) {
      assert.notEqual((await ask()).status, 200, "served again after a refusal");
      return { answer, servedForMs };
    }
    servedForMs = performance.now() - t0;
    if (servedForMs > 10_000) throw new Error("still served 10 s after the delete");
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("pod A never gets pod B's identity", async (t) => {
  const h = await startHarness({
    attached: ["id-a", "id-b"],
    nmiArgs: ["--identity-wait-deadline", "1s"],
  });
  try {
    const idA = await h.createIdentity("id-a", msiSpec(h.ids["id-a"]));
    const idB = await h.createIdentity("id-b", msiSpec(h.ids["id-b"]));
    const bA = await h.createBinding("b-a", "id-a", "sel-a");
    const bB = await h.createBinding("b-b", "id-b", "sel-b");
    const podA = await h.createPod("pod-a", { aadpodidbinding: "sel-a" });
    const podB = await h.createPod("pod-b", { aadpodidbinding: "sel-b" });
    await h.assign(podA, idA, bA, "Assigned");
    const aaiB = await h.assign(podB, idB, bB, "Assigned");
    const b = h.ids["id-b"];

    await t.step(
      "A asking with B's client_id / msi_res_id / mi_res_id / object_id: 403, IMDS never asked for B",
      async () => {
        const asks: Record<string, string>[] = [
          { client_id: b.clientId },
          { client_id: b.clientId.toUpperCase() },
          { msi_res_id: b.id },
          { msi_res_id: b.id.toLowerCase() },
          { mi_res_id: b.id },
          { object_id: b.principalId },
        ];
        for (const q of asks) {
          const r = await h.get(podA.ip, tokenPath(undefined, q));
          assert.equal(r.status, 403, `${JSON.stringify(q)}: ${r.text}`);
          assert.equal(r.json.access_token, undefined);
        }
        const forB = h.emu.requests.list({ service: "imds", route: "imds.token" })
          .filter((e) => (e.query.client_id ?? "").toLowerCase() === b.clientId.toLowerCase());
        assert.equal(forB.length, 0);
        // A's own identity by object_id works (NMI learns A's principal id from A's own token).
        const own = await h.get(podA.ip, tokenPath(undefined, { object_id: h.ids["id-a"].principalId }));
        assert.equal(own.status, 200, own.text);
        assert.equal(own.json.client_id, h.ids["id-a"].clientId);
      },
    );

    await t.step("B itself is served B; A without a selector is served A", async () => {
      const rb = await h.get(podB.ip, tokenPath());
      assert.equal(rb.status, 200, rb.text);
      assert.equal((await h.emu.verifyToken(rb.json.access_token)).appid, b.clientId);
      const ra = await h.get(podA.ip, tokenPath());
      assert.equal((await h.emu.verifyToken(ra.json.access_token)).appid, h.ids["id-a"].clientId);
    });

    await t.step("an unregistered IP and a pod on another node are refused", async () => {
      const stranger = await h.get("127.0.0.254", tokenPath());
      assert.equal(stranger.status, 404);
      const elsewhere = await h.createPod("pod-far", { aadpodidbinding: "sel-a" }, {
        node: "some-other-node",
      });
      const far = await h.get(elsewhere.ip, tokenPath());
      assert.equal(far.status, 403, far.text);
      assert.match(far.json.error_description, /not on node/);
      // A pod that finished is not a caller any more.
      const done = await h.createPod("pod-done", { aadpodidbinding: "sel-a" }, { phase: "Succeeded" });
      assert.notEqual((await h.get(done.ip, tokenPath())).status, 200);
    });

    await t.step(
      "B's AzureAssignedIdentity deleted: B's next request is refused (cached token not served)",
      async () => {
        assert.equal((await h.get(podB.ip, tokenPath())).status, 200);
        await h.kube.delete(Resources.azureAssignedIdentities, aaiB, { namespace: h.ns });
        const { answer: r, servedForMs } = await untilRefused(() => h.get(podB.ip, tokenPath()));
        // The binding still selects B, so MIC would assign again: a retryable 404 after the wait deadline.
        assert.equal(r.status, 404, r.text);
        assert.ok(servedForMs < WATCH_WINDOW_MS, `still served ${servedForMs} ms after the delete`);
      },
    );

    await t.step("A's binding deleted: A's next request is refused", async () => {
      assert.equal((await h.get(podA.ip, tokenPath())).status, 200);
      await h.kube.delete(Resources.azureIdentityBindings, "b-a", { namespace: h.ns });
      const { answer: r, servedForMs } = await untilRefused(() => h.get(podA.ip, tokenPath()));
      assert.equal(r.status, 400, r.text);
      assert.ok(servedForMs < WATCH_WINDOW_MS, `still served ${servedForMs} ms after the delete`);
      assert.match(r.json.error_description, /no AzureIdentityBinding/);
    });
  } finally {
    await h.close();
  }
});
