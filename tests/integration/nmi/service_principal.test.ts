// Service-principal identities (type 1 secret, type 2 certificate): tokens from the emulated Azure AD with
// the credential read through a watch of the named Secret, verified by their claims; and neither tokens nor
// secrets ever reach NMI's logs (debug level included).

import assert from "node:assert/strict";
import { Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { createClientCertificate } from "../../../scripts/sandbox/azure/client_certificate.ts";
import { startHarness, tokenPath } from "./harness.ts";

const b64 = (s: string) => btoa(s);

Deno.test("service principals with a secret, a PEM certificate and a PKCS#12 certificate; tokens and secrets never logged", async () => {
  const h = await startHarness();
  const dir = await Deno.makeTempDir({ prefix: "nmi-sp-" });
  try {
    const secretSp = h.emu.registerServicePrincipal();
    const cert = await createClientCertificate(dir, "sp-cert");
    const certSp = h.emu.registerServicePrincipal({ certificatePem: cert.certificatePem });
    const combined = await Deno.readTextFile(cert.combinedPath);
    await h.kube.create(Resources.secrets, {
      metadata: { name: "sp-secret", namespace: h.ns },
      data: { clientSecret: b64(secretSp.secret!) },
    } as KubeObject);
    await h.kube.create(Resources.secrets, {
      metadata: { name: "sp-cert", namespace: h.ns },
      data: { certificate: b64(combined) },
    } as KubeObject);
    // The original's format: PKCS#12 bytes under `certificate`, its password under `password`.
    const pfxSp = h.emu.registerServicePrincipal({ certificatePem: cert.certificatePem });
    const pfxOut = await new Deno.Command("openssl", {
      args: [
        "pkcs12",
        "-export",
        "-inkey",
        cert.keyPath,
        "-in",
        cert.certPath,
        "-passout",
        "pass:pfx-pass",
        "-out",
        `${dir}/sp.pfx`,
      ],
    }).output();
    assert.ok(pfxOut.success);
    const pfx = await Deno.readFile(`${dir}/sp.pfx`);
    await h.kube.create(Resources.secrets, {
      metadata: { name: "sp-pfx", namespace: h.ns },
      data: { certificate: btoa(String.fromCharCode(...pfx)), password: b64("pfx-pass") },
    } as KubeObject);
    const pfxId = await h.createIdentity("sp-pfx", {
      type: 2,
      clientID: pfxSp.clientId,
      tenantID: pfxSp.tenantId,
      clientPassword: { name: "sp-pfx", namespace: h.ns },
      adEndpoint: h.emu.authorityHost,
    });
    const bp = await h.createBinding("b-pfx", "sp-pfx", "sp3");
    const p3 = await h.createPod("p3", { aadpodidbinding: "sp3" });
    await h.assign(p3, pfxId, bp, "Assigned");
    const sec = await h.createIdentity("sp-secret", {
      type: 1,
      clientID: secretSp.clientId,
      tenantID: secretSp.tenantId,
      clientPassword: { name: "sp-secret", namespace: h.ns },
    });
    const crt = await h.createIdentity("sp-cert", {
      type: 2,
      clientID: certSp.clientId,
      tenantID: certSp.tenantId,
      clientPassword: { name: "sp-cert", namespace: h.ns },
      adEndpoint: h.emu.authorityHost,
    });
    const bs = await h.createBinding("b-secret", "sp-secret", "sp1");
    const bc = await h.createBinding("b-cert", "sp-cert", "sp2");
    const p1 = await h.createPod("p1", { aadpodidbinding: "sp1" });
    const p2 = await h.createPod("p2", { aadpodidbinding: "sp2" });
    await h.assign(p1, sec, bs, "Assigned");
    await h.assign(p2, crt, bc, "Assigned");

    const tokens: string[] = [];
    for (const [pod, sp, acr] of [[p1, secretSp, "1"], [p2, certSp, "2"], [p3, pfxSp, "2"]] as const) {
      const r = await h.get(pod.ip, tokenPath("https://storage.azure.com"));
      assert.equal(r.status, 200, `${pod.name}: ${r.text}`);
      assert.equal(r.json.client_id, sp.clientId);
      for (const v of Object.values(r.json)) assert.equal(typeof v, "string");
      const claims = await h.emu.verifyToken(r.json.access_token);
      assert.equal(claims.appid, sp.clientId);
      assert.equal(claims.oid, sp.objectId);
      assert.equal(claims.tid, sp.tenantId);
      assert.equal(claims.aud, "https://storage.azure.com");
      assert.equal(claims.appidacr, acr, "1 = secret, 2 = certificate");
      tokens.push(r.json.access_token);
      // Second request: from the cache, no new Azure AD call.
      const before = h.emu.requests.count({ service: "aad", route: "aad.token" });
      assert.equal((await h.get(pod.ip, tokenPath("https://storage.azure.com"))).status, 200);
      assert.equal(h.emu.requests.count({ service: "aad", route: "aad.token" }), before);
    }

    // A wrong secret: refused with Azure AD's reason, 403 as the original.
    await h.kube.patch(Resources.secrets, "sp-secret", "merge", { data: { clientSecret: b64("wrong") } }, {
      namespace: h.ns,
    });
    await new Promise((r) => setTimeout(r, 300));
    const bad = await h.get(p1.ip, tokenPath("https://graph.microsoft.com"));
    assert.equal(bad.status, 403, bad.text);
    assert.doesNotMatch(bad.text, /wrong/);

    const logs = h.nmi.logs.join("\n");
    assert.ok(logs.length > 0);
    for (const t of tokens) {
      assert.ok(!logs.includes(t), "an access token reached the logs");
      assert.ok(!logs.includes(t.split(".")[2]), "a token signature reached the logs");
    }
    assert.ok(!logs.includes(secretSp.secret!), "a client secret reached the logs");
    assert.ok(!logs.includes(b64(secretSp.secret!)));
    assert.ok(!logs.includes("PRIVATE KEY"));
    assert.ok(!logs.includes("pfx-pass"));
  } finally {
    await h.close();
    await Deno.remove(dir, { recursive: true });
  }
});
