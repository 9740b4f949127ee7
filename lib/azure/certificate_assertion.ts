// A certificate client assertion (RFC 7523 private_key_jwt, as Azure AD takes it) built in Deno.
// `ClientCertificateCredential` cannot run inside Deno 2.9.6 (node:crypto rejects the key+certificate PEM it
// reads), so callers sign the assertion here and send it themselves (or through ClientAssertionCredential).
// RS256 with `x5t` (SHA-1 thumbprint) is what adal and older MSAL send; PS256 with `x5t#S256` is current
// MSAL's choice. Azure AD accepts both.

import { constants, createHash, createPrivateKey, type KeyObject, sign } from "node:crypto";
// @ts-types="npm:@types/node-forge@1.3.14"
import forge from "npm:node-forge@1.4.3";

type AssertionAlgorithm = "RS256" | "PS256";

export class CertificateError extends Error {
  override name = "CertificateError";
}

export interface ClientCertificateMaterial {
  /** DER of the first certificate in the PEM. */
  certificateDer: Uint8Array;
  key: KeyObject;
}

function base64Url(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function pemBlocks(pem: string): { label: string; text: string }[] {
  return [...pem.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g)].map((m) => ({
    label: m[1],
    text: m[0],
  }));
}

/**
 * Reads a certificate and its RSA private key from PEM text (in either order, in one string or two). An
 * encrypted key needs `password`. Errors never include key material.
 */
export function readClientCertificate(pem: string, password?: string): ClientCertificateMaterial {
  const blocks = pemBlocks(pem);
  const cert = blocks.find((b) => b.label === "CERTIFICATE");
  const keyBlock = blocks.find((b) => /PRIVATE KEY$/.test(b.label));
  if (!cert) throw new CertificateError("no PEM CERTIFICATE block found");
  if (!keyBlock) throw new CertificateError("no PEM PRIVATE KEY block found");
  let key: KeyObject;
  try {
    // Only the key block: Deno's createPrivateKey rejects a PEM that also holds the certificate.
    key = createPrivateKey(password ? { key: keyBlock.text, passphrase: password } : keyBlock.text);
  } catch (e) {
    throw new CertificateError(
      `cannot read the private key (${keyBlock.label}${password ? ", with the given password" : ""}): ${
        (e as Error).message.split("\n")[0]
      }`,
    );
  }
  if (key.asymmetricKeyType !== "rsa") {
    throw new CertificateError(`the private key is ${key.asymmetricKeyType}; Azure AD needs RSA`);
  }
  const b64 = cert.text.replace(/-----[A-Z0-9 ]+-----|\s/g, "");
  const certificateDer = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return { certificateDer, key };
}

/**
 * Reads a PKCS#12 (PFX) file, the format the original's type-2 secrets hold (`certificate` + `password`):
 * the private key and the certificate that belongs to it (a chain's other certificates are skipped). Both
 * the legacy (3DES/RC2, what Go's pkcs12 reads) and the current (PBES2/AES) encodings are read, through
 * node-forge (PKCS#12 is not in node:crypto or WebCrypto). Errors never include key material.
 */
export function readPkcs12(der: Uint8Array, password = ""): ClientCertificateMaterial {
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(forge.util.binary.raw.encode(der)), password);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new CertificateError(`cannot read the PKCS#12 certificate (wrong password or not PKCS#12): ${why}`);
  }
  const oids = forge.pki.oids;
  const keyBags = [
    ...(p12.getBags({ bagType: oids.pkcs8ShroudedKeyBag })[oids.pkcs8ShroudedKeyBag] ?? []),
    ...(p12.getBags({ bagType: oids.keyBag })[oids.keyBag] ?? []),
  ];
  const key = keyBags.find((b) => b.key)?.key as forge.pki.rsa.PrivateKey | undefined;
  if (!key) throw new CertificateError("the PKCS#12 certificate holds no RSA private key");
  const certs = (p12.getBags({ bagType: oids.certBag })[oids.certBag] ?? []).map((b) => b.cert).filter((c) =>
    c !== undefined && c !== null
  ) as forge.pki.Certificate[];
  const own = certs.find((c) => {
    const pub = c.publicKey as forge.pki.rsa.PublicKey;
    return pub.n !== undefined && pub.n.equals(key.n) && pub.e.equals(key.e);
  });
  if (!own) throw new CertificateError("the PKCS#12 certificate holds no certificate for its private key");
  const pem = forge.pki.privateKeyToPem(key) + forge.pki.certificateToPem(own);
  return readClientCertificate(pem);
}

interface AssertionOptions {
  clientId: string;
  /** The token endpoint the assertion is sent to (its `aud`). */
  audience: string;
  algorithm?: AssertionAlgorithm;
  /** Lifetime in seconds (default 600, as MSAL). */
  lifetimeSeconds?: number;
  nowSeconds?: number;
}

export function buildClientAssertion(material: ClientCertificateMaterial, opts: AssertionOptions): string {
  const alg = opts.algorithm ?? "RS256";
  const der = material.certificateDer;
  const header = alg === "PS256"
    ? { alg, typ: "JWT", "x5t#S256": base64Url(new Uint8Array(createHash("sha256").update(der).digest())) }
    : { alg, typ: "JWT", x5t: base64Url(new Uint8Array(createHash("sha1").update(der).digest())) };
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
  const payload = {
    aud: opts.audience,
    iss: opts.clientId,
    sub: opts.clientId,
    jti: crypto.randomUUID(),
    nbf: now,
    iat: now,
    exp: now + (opts.lifetimeSeconds ?? 600),
  };
  const input = `${base64Url(JSON.stringify(header))}.${base64Url(JSON.stringify(payload))}`;
  const data = new TextEncoder().encode(input);
  const signature = alg === "PS256"
    ? sign("sha256", data, { key: material.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
    : sign("sha256", data, material.key);
  return `${input}.${base64Url(new Uint8Array(signature))}`;
}
