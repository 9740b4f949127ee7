// The emulator's HTTPS certificate: a leaf for localhost / 127.0.0.1 signed by the sandbox CA, issued once
// and cached next to the CA so starting an emulator in every test stays cheap.

import { X509Certificate } from "node:crypto";
import { ensureCa, issueCert, sandboxCacheDir } from "../pki.ts";

interface EmulatorTls {
  /** PEM of the leaf certificate. */
  cert: string;
  /** PEM of its private key. */
  key: string;
  /** Path of the CA certificate clients must trust. */
  caCertPath: string;
}

const DAY_MS = 24 * 3600 * 1000;

async function readIfUsable(dir: string, caPem: string): Promise<{ cert: string; key: string } | undefined> {
  try {
    const cert = await Deno.readTextFile(`${dir}/tls.pem`);
    const key = await Deno.readTextFile(`${dir}/tls-key.pem`);
    const leaf = new X509Certificate(cert);
    const ca = new X509Certificate(caPem);
    // A CA re-created since the leaf was issued would make every client reject the cached leaf.
    if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) return undefined;
    if (Date.parse(leaf.validTo) - Date.now() < DAY_MS) return undefined;
    return { cert, key };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

export async function emulatorTls(cacheDir: string = sandboxCacheDir()): Promise<EmulatorTls> {
  const ca = await ensureCa(`${cacheDir}/ca`);
  const caPem = await Deno.readTextFile(ca.certPath);
  const dir = `${cacheDir}/azure-emulator`;
  const cached = await readIfUsable(dir, caPem);
  if (cached) return { ...cached, caCertPath: ca.certPath };

  // Issue into a private directory, then move it into place: parallel test processes may race here.
  const tmp = `${dir}.tmp-${crypto.randomUUID()}`;
  await issueCert(ca, tmp, "tls", {
    commonName: "localhost",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1", "::1"],
    usage: "server",
    days: 365,
  });
  const cert = await Deno.readTextFile(`${tmp}/tls.pem`);
  const key = await Deno.readTextFile(`${tmp}/tls-key.pem`);
  try {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.rename(tmp, dir);
  } catch {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return { cert, key, caCertPath: ca.certPath };
}
