// Identity selection end to end: several identities and the deterministic choice, every selector form,
// namespaced identities, managed mode, exceptions and MIC's own pods (node identity through IMDS).

import assert from "node:assert/strict";
import { normalizeAzureIdentity, normalizeAzureIdentityBinding } from "../../../lib/api/normalize.ts";
import { Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { MIC_SERVICE_ACCOUNT } from "../../../scripts/manifests/rbac.ts";
import { msiSpec, startHarness, tokenPath } from "./harness.ts";

Deno.test("several identities: deterministic choice without a selector, each selector form picks its own", async () => {
  const h = await startHarness({ attached: ["id-x", "id-y", "id-z"] });
  try {
    const x = await h.createIdentity("id-x", msiSpec(h.ids["id-x"]));
    const y = await h.createIdentity("id-y", msiSpec(h.ids["id-y"]));
    const bx = await h.createBinding("bx", "id-x", "multi");
    const by = await h.createBinding("by", "id-y", "multi");
    const pod = await h.createPod("pod-m", { aadpodidbinding: "multi" });
    await h.assign(pod, y, by, "Assigned");
    await h.assign(pod, x, bx, "Assigned");
    const appid = async (q: Record<string, string> = {}) => {
      const r = await h.get(pod.ip, tokenPath(undefined, q));
      assert.equal(r.status, 200, r.text);
      assert.equal(
        r.json.client_id.toLowerCase(),
        (await h.emu.verifyToken(r.json.access_token)).appid.toLowerCase(),
      );
      return r.json.client_id;
    };
    for (let i = 0; i < 5; i++) {
      assert.equal(await appid(), h.ids["id-x"].clientId, "first by name, every time");
    }
    assert.equal(await appid({ client_id: h.ids["id-y"].clientId.toUpperCase() }), h.ids["id-y"].clientId);
    assert.equal(await appid({ msi_res_id: h.ids["id-y"].id.toUpperCase() }), h.ids["id-y"].clientId);
    assert.equal(await appid({ mi_res_id: h.ids["id-y"].id }), h.ids["id-y"].clientId);
    assert.equal(await appid({ object_id: h.ids["id-y"].principalId }), h.ids["id-y"].clientId);
    // z is attached to the VM but bound to nobody: not served to this pod.
    const z = await h.get(pod.ip, tokenPath(undefined, { client_id: h.ids["id-z"].clientId }));
    assert.equal(z.status, 403);
    // A heavier binding wins the default choice.
    await h.kube.patch(Resources.azureIdentityBindings, "by", "merge", { spec: { weight: 10 } }, {
      namespace: h.ns,
    });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await appid(), h.ids["id-y"].clientId);
  } finally {
    await h.close();
  }
});

Deno.test("namespaced identities: annotation (and --forceNamespaced) keep identities in their namespace", async () => {
  const h = await startHarness({ attached: ["id-open", "id-ns"] });
  try {
    const other = await h.cluster.namespace("nmi-other");
    await h.createIdentity("id-open", msiSpec(h.ids["id-open"]), other);
    await h.createIdentity("id-ns", msiSpec(h.ids["id-ns"]), other, {
      "aadpodidentity.k8s.io/Behavior": "namespaced",
    });
    await h.createBinding("b-open", "id-open", "cross", other);
    await h.createBinding("b-ns", "id-ns", "cross", other);
    const pod = await h.createPod("pod-c", { aadpodidbinding: "cross" });
    // The assignment MIC writes for the non-namespaced identity.
    const id = await h.kube.get<KubeObject>(Resources.azureIdentities, "id-open", other);
    const b = await h.kube.get<KubeObject>(Resources.azureIdentityBindings, "b-open", other);
    await h.assign(pod, normalizeAzureIdentity(id), normalizeAzureIdentityBinding(b), "Assigned");
    const r = await h.get(pod.ip, tokenPath());
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.client_id, h.ids["id-open"].clientId);
    const ns = await h.get(pod.ip, tokenPath(undefined, { client_id: h.ids["id-ns"].clientId }));
    assert.equal(ns.status, 403, ns.text);

    await h.startNmi(["--forceNamespaced"]);
    const forced = await h.get(pod.ip, tokenPath());
    assert.equal(forced.status, 400, forced.text);
  } finally {
    await h.close();
  }
});

Deno.test("managed mode: bindings and identities alone, no AzureAssignedIdentities", async () => {
  const h = await startHarness({
    attached: ["id-m"],
    nmiArgs: ["--operation-mode", "managed", "--forceNamespaced"],
  });
  try {
    await h.createIdentity("id-m", msiSpec(h.ids["id-m"]));
    await h.createBinding("b-m", "id-m", "managed");
    const pod = await h.createPod("pod-m", { aadpodidbinding: "managed" });
    const r = await h.get(pod.ip, tokenPath());
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.client_id, h.ids["id-m"].clientId);
    const none = await h.createPod("pod-none", {});
    assert.equal((await h.get(none.ip, tokenPath())).status, 400);
  } finally {
    await h.close();
  }
});

Deno.test("exceptions and MIC's own pods (by service account) get the node's identity through IMDS", async () => {
  const h = await startHarness({ attached: ["node-id"] });
  try {
    await h.kube.create(Resources.azurePodIdentityExceptions, {
      metadata: { name: "ingress-exception", namespace: h.ns },
      spec: { podLabels: { app: "Ingress" } },
    } as KubeObject);
    // The default mic-exception of the original: since NMI recognises MIC by its service account, a pod
    // carrying only some of these labels must not be excepted (issue 19 item 3).
    await h.kube.create(Resources.azurePodIdentityExceptions, {
      metadata: { name: "mic-exception", namespace: h.ns },
      spec: { podLabels: { app: "mic", component: "mic" } },
    } as KubeObject);
    await h.kube.create(Resources.serviceAccounts, {
      metadata: { name: MIC_SERVICE_ACCOUNT, namespace: h.ns },
    } as KubeObject);
    await h.startNmi(["--MICNamespace", h.ns]);
    const excepted = await h.createPod("ingress", { app: "ingress" });
    const mic = await h.createPod("mic-5d9-abcde", {}, { serviceAccountName: MIC_SERVICE_ACCOUNT });
    const plain = await h.createPod("plain", { app: "web" });
    // The impostor: label app=mic and a ReplicaSet named mic-*, in MIC's namespace, default service account.
    const impostor = await h.createPod("mic-6f7-xyz", { app: "mic" }, { ownerReplicaSet: "mic-6f7" });
    for (const p of [excepted, mic]) {
      const r = await h.get(p.ip, tokenPath(undefined, { client_id: h.ids["node-id"].clientId }));
      assert.equal(r.status, 200, `${p.name}: ${r.text}`);
      assert.equal((await h.emu.verifyToken(r.json.access_token)).appid, h.ids["node-id"].clientId);
      // One identity on the VM: IMDS's default works too; msi_res_id and object_id are passed to IMDS.
      assert.equal((await h.get(p.ip, tokenPath())).status, 200);
      const named: Record<string, string>[] = [
        { msi_res_id: h.ids["node-id"].id },
        { object_id: h.ids["node-id"].principalId },
      ];
      for (const q of named) {
        const got = await h.get(p.ip, tokenPath("https://storage.azure.com", q));
        assert.equal(got.status, 200, got.text);
        assert.equal((await h.emu.verifyToken(got.json.access_token)).appid, h.ids["node-id"].clientId);
      }
    }
    for (const p of [plain, impostor]) {
      const r = await h.get(p.ip, tokenPath(undefined, { client_id: h.ids["node-id"].clientId }));
      assert.equal(r.status, 400, `${p.name}: ${r.text}`);
      assert.equal((await h.get(p.ip, tokenPath())).status, 400);
    }
  } finally {
    await h.close();
  }
});

Deno.test("an AzureIdentity pairing its own resourceID with another identity's clientID gets nothing", async () => {
  // Issue 19 item 4: ARM attaches by resource id only, so this AzureIdentity is assigned to the VM; asking
  // IMDS by the client id would hand the pod the other team's identity.
  const h = await startHarness({ attached: ["team-own", "victim"] });
  try {
    const spec = { type: 0 as const, resourceID: h.ids["team-own"].id, clientID: h.ids["victim"].clientId };
    const forged = await h.createIdentity("forged", spec);
    const b = await h.createBinding("b-forged", "forged", "forged");
    const pod = await h.createPod("pod-forged", { aadpodidbinding: "forged" });
    await h.assign(pod, forged, b, "Assigned");
    for (const q of [{}, { client_id: h.ids["victim"].clientId }] as Record<string, string>[]) {
      const r = await h.get(pod.ip, tokenPath(undefined, q));
      assert.equal(r.status, 403, r.text);
      assert.match(r.json.error_description, /does not belong to resourceID/);
      assert.equal(r.json.access_token, undefined);
    }
    // The honest pairing still works, asked for by its resource id.
    const honest = await h.createIdentity("honest", msiSpec(h.ids["team-own"]));
    const hb = await h.createBinding("b-honest", "honest", "honest");
    const good = await h.createPod("pod-honest", { aadpodidbinding: "honest" });
    await h.assign(good, honest, hb, "Assigned");
    const ok = await h.get(good.ip, tokenPath());
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await h.emu.verifyToken(ok.json.access_token)).appid, h.ids["team-own"].clientId);
    const asked = h.emu.requests.list({ service: "imds", route: "imds.token" });
    assert.ok(asked.length > 0 && asked.every((e) => e.query.msi_res_id && !e.query.client_id));
  } finally {
    await h.close();
  }
});
