import assert from "node:assert/strict";
import {
  buildClientAssertion,
  CertificateError,
  readClientCertificate,
} from "../../../lib/azure/certificate_assertion.ts";
import { checkClientAssertion } from "../../../scripts/sandbox/azure/client_assertion.ts";
import { createClientCertificate } from "../../../scripts/sandbox/azure/client_certificate.ts";
import { parseCertificate } from "../../../scripts/sandbox/azure/directory.ts";

Deno.test("RS256 and PS256 assertions pass Azure AD's checks (the emulator's), in either PEM order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nmi-assertion-" });
  try {
    const cert = await createClientCertificate(dir, "sp");
    const key = await Deno.readTextFile(cert.keyPath);
    const registered = parseCertificate(cert.certificatePem);
    const aud = "https://login.example/tenant/oauth2/token";
    for (const pem of [key + cert.certificatePem, cert.certificatePem + key]) {
      const material = readClientCertificate(pem);
      for (const algorithm of ["RS256", "PS256"] as const) {
        const jwt = buildClientAssertion(material, { clientId: "cid", audience: aud, algorithm });
        const failure = await checkClientAssertion(jwt, {
          clientId: "cid",
          audiences: [aud],
          certificates: [registered],
          now: Math.floor(Date.now() / 1000),
          skewSeconds: 300,
        });
        assert.equal(failure, undefined, `${algorithm}: ${failure?.description}`);
      }
    }
    assert.throws(() => readClientCertificate(cert.certificatePem), CertificateError);
    assert.throws(() => readClientCertificate(key), CertificateError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
