import assert from "node:assert/strict";
import {
  buildClientAssertion,
  CertificateError,
  readClientCertificate,
  readPkcs12,
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

Deno.test("PKCS#12 (the original's type-2 secret format): current, legacy and password-less encodings", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nmi-pfx-" });
  try {
    const cert = await createClientCertificate(dir, "sp");
    const registered = parseCertificate(cert.certificatePem);
    const pfx = async (name: string, pass: string, extra: string[] = []) => {
      const out = await new Deno.Command("openssl", {
        args: [
          "pkcs12",
          "-export",
          ...extra,
          "-inkey",
          cert.keyPath,
          "-in",
          cert.certPath,
          "-passout",
          `pass:${pass}`,
          "-out",
          `${dir}/${name}`,
        ],
        stderr: "piped",
      }).output();
      if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
      return await Deno.readFile(`${dir}/${name}`);
    };
    const variants: [string, Uint8Array, string][] = [
      ["current", await pfx("a.pfx", "pw"), "pw"],
      ["legacy", await pfx("b.pfx", "pw", ["-legacy"]), "pw"],
      ["no password", await pfx("c.pfx", ""), ""],
    ];
    for (const [name, der, pass] of variants) {
      const material = readPkcs12(der, pass);
      const jwt = buildClientAssertion(material, { clientId: "cid", audience: "aud" });
      const failure = await checkClientAssertion(jwt, {
        clientId: "cid",
        audiences: ["aud"],
        certificates: [registered],
        now: Math.floor(Date.now() / 1000),
        skewSeconds: 300,
      });
      assert.equal(failure, undefined, name);
    }
    assert.throws(() => readPkcs12(variants[0][1], "wrong"), CertificateError);
    assert.throws(() => readPkcs12(new Uint8Array([1, 2, 3])), CertificateError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
