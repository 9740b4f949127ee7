// A tiny certificate authority for the sandbox, driven through the openssl CLI.
// Every certificate is X.509 v3 with extensions: rustls (Deno's TLS) rejects v1 certificates.

export interface CertPair {
  certPath: string;
  keyPath: string;
}

interface LeafOptions {
  /** Subject common name; for kube client certificates this is the user name. */
  commonName: string;
  /** Subject organisations; for kube client certificates these are the groups. */
  organizations?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  usage: "server" | "client" | "both";
  days?: number;
}

async function openssl(args: string[], cwd?: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/** A new unencrypted P-256 key, for `openssl req`. */
const NEW_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Creates `<dir>/ca.pem` and `<dir>/ca-key.pem` unless both already exist; returns their paths. */
export async function ensureCa(dir: string, commonName = "aad-pod-identity sandbox CA"): Promise<CertPair> {
  await Deno.mkdir(dir, { recursive: true });
  const pair = { certPath: `${dir}/ca.pem`, keyPath: `${dir}/ca-key.pem` };
  if (await exists(pair.certPath) && await exists(pair.keyPath)) return pair;
  await openssl([
    "req",
    "-x509",
    ...NEW_EC_KEY,
    "-keyout",
    pair.keyPath,
    "-out",
    pair.certPath,
    "-days",
    "3650",
    "-subj",
    `/CN=${commonName}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    "-addext",
    "subjectKeyIdentifier=hash",
  ]);
  return pair;
}

/** Issues `<dir>/<name>.pem` and `<dir>/<name>-key.pem` signed by `ca`. */
export async function issueCert(
  ca: CertPair,
  dir: string,
  name: string,
  opts: LeafOptions,
): Promise<CertPair> {
  await Deno.mkdir(dir, { recursive: true });
  const pair = { certPath: `${dir}/${name}.pem`, keyPath: `${dir}/${name}-key.pem` };
  const csr = `${dir}/${name}.csr`;
  const ext = `${dir}/${name}.ext`;
  const subject = [`/CN=${opts.commonName}`, ...(opts.organizations ?? []).map((o) => `/O=${o}`)].join("");
  const sans = [
    ...(opts.dnsNames ?? []).map((d) => `DNS:${d}`),
    ...(opts.ipAddresses ?? []).map((ip) => `IP:${ip}`),
  ];
  const eku = { server: "serverAuth", client: "clientAuth", both: "serverAuth,clientAuth" }[opts.usage];
  await Deno.writeTextFile(
    ext,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      `extendedKeyUsage=${eku}`,
      "subjectKeyIdentifier=hash",
      "authorityKeyIdentifier=keyid",
      ...(sans.length ? [`subjectAltName=${sans.join(",")}`] : []),
    ].join("\n") + "\n",
  );
  await openssl([
    "req",
    "-new",
    ...NEW_EC_KEY,
    "-keyout",
    pair.keyPath,
    "-out",
    csr,
    "-subj",
    subject,
  ]);
  await openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    ca.certPath,
    "-CAkey",
    ca.keyPath,
    // A random serial per certificate: a shared serial file (-CAcreateserial) races when several test
    // processes issue certificates from the sandbox CA at once.
    "-set_serial",
    `0x${
      Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("")
    }`,
    "-out",
    pair.certPath,
    "-days",
    String(opts.days ?? 365),
    "-extfile",
    ext,
  ]);
  await Deno.remove(csr);
  await Deno.remove(ext);
  return pair;
}

/** An RSA key pair (PEM, PKCS#8) for signing service-account tokens or JWTs. */
export async function rsaKey(dir: string, name: string): Promise<{ keyPath: string; publicKeyPath: string }> {
  await Deno.mkdir(dir, { recursive: true });
  const keyPath = `${dir}/${name}-key.pem`;
  const publicKeyPath = `${dir}/${name}.pub.pem`;
  await openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", keyPath]);
  await openssl(["pkey", "-in", keyPath, "-pubout", "-out", publicKeyPath]);
  return { keyPath, publicKeyPath };
}

/** The sandbox's persistent CA, shared by every component that serves TLS locally (emulator, apiserver). */
export function sandboxCacheDir(): string {
  const explicit = Deno.env.get("AAD_SANDBOX_CACHE");
  if (explicit) return explicit;
  const xdg = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`;
  return `${xdg}/aad-pod-identity-sandbox`;
}
