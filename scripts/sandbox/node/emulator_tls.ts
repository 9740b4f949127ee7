// The Azure emulator's certificate names only 127.0.0.1 and localhost, which a pod cannot reach (its
// loopback is its own). A pod reaches the machine through its node's link address, so the emulator of a
// real-node cluster gets a leaf that also names those addresses: made here, in a cache directory of the
// cluster's own that the emulator's `cacheDir` option reads (same sandbox CA, so trust is unchanged).

import { ensureCa, issueCert, sandboxCacheDir } from "../pki.ts";

/** Prepares `<dir>/ca` and `<dir>/azure-emulator/tls.pem` for `ips`; returns `dir` for the emulator. */
export async function emulatorCacheFor(dir: string, ips: string[]): Promise<string> {
  const ca = await ensureCa(`${sandboxCacheDir()}/ca`);
  await Deno.mkdir(`${dir}/ca`, { recursive: true });
  await Deno.copyFile(ca.certPath, `${dir}/ca/ca.pem`);
  await Deno.copyFile(ca.keyPath, `${dir}/ca/ca-key.pem`);
  await Deno.chmod(`${dir}/ca/ca-key.pem`, 0o600);
  await issueCert(ca, `${dir}/azure-emulator`, "tls", {
    commonName: "localhost",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1", "::1", ...ips],
    usage: "server",
    days: 30,
  });
  return dir;
}
