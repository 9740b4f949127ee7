// Self-signed RSA certificates for service principals that authenticate with a certificate, the way
// `az ad sp create-for-rbac --create-cert` makes them: Azure AD needs RSA keys, while the sandbox CA's
// leaf certificates are EC, hence this separate helper.

export interface ClientCertificate {
  certPath: string;
  keyPath: string;
  /** Private key followed by the certificate: the PEM `ClientCertificateCredential` reads. */
  combinedPath: string;
  /** The certificate alone (what gets registered on the app). */
  certificatePem: string;
}

export async function createClientCertificate(
  dir: string,
  name: string,
  opts: { commonName?: string; days?: number } = {},
): Promise<ClientCertificate> {
  await Deno.mkdir(dir, { recursive: true });
  const certPath = `${dir}/${name}.pem`;
  const keyPath = `${dir}/${name}-key.pem`;
  const combinedPath = `${dir}/${name}-combined.pem`;
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      keyPath,
      "-out",
      certPath,
      "-days",
      String(opts.days ?? 30),
      "-subj",
      `/CN=${opts.commonName ?? name}`,
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-addext",
      "keyUsage=critical,digitalSignature",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`openssl req failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  const certificatePem = await Deno.readTextFile(certPath);
  await Deno.writeTextFile(combinedPath, (await Deno.readTextFile(keyPath)) + certificatePem, {
    mode: 0o600,
  });
  return { certPath, keyPath, combinedPath, certificatePem };
}
