// Compact JWS (JWT) signing and verification on Web Crypto: RS256 for the tokens the emulator issues,
// RS256/PS256 for the client assertions MSAL signs with a certificate.

type JwtAlgorithm = "RS256" | "PS256";

interface JwtHeader {
  alg: string;
  typ?: string;
  kid?: string;
  x5t?: string;
  "x5t#S256"?: string;
  x5c?: string[];
}

export interface DecodedJwt {
  header: JwtHeader;
  payload: Record<string, unknown>;
  /** `base64url(header) + "." + base64url(payload)`, the bytes the signature covers. */
  signingInput: Uint8Array<ArrayBuffer>;
  signature: Uint8Array<ArrayBuffer>;
}

/** Claims of an access token issued by the emulator (Azure AD v1 access-token shape). */
export interface AccessTokenClaims {
  aud: string;
  iss: string;
  iat: number;
  nbf: number;
  exp: number;
  /** Application (client) id of the caller; for managed identities, the identity's client id. */
  appid: string;
  /** Same as `appid`: v2 tokens name it `azp`, and some validators only read that one. */
  azp: string;
  /** "1" client secret, "2" certificate or managed identity. */
  appidacr: string;
  idtyp: "app";
  /** Object id of the service principal / managed identity. */
  oid: string;
  sub: string;
  tid: string;
  ver: "1.0";
  uti: string;
  /** Managed identities only: the resource id of the identity (user-assigned) or of the VM / VMSS. */
  xms_mirid?: string;
}

type JwtFailure = "malformed" | "algorithm" | "signature" | "expired" | "not_yet_valid" | "audience";

export class JwtError extends Error {
  constructor(readonly reason: JwtFailure, message: string) {
    super(message);
    this.name = "JwtError";
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function base64UrlEncode(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function base64UrlDecode(text: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new JwtError("malformed", "invalid base64url");
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function parseJsonPart(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(base64UrlDecode(part)));
  } catch {
    throw new JwtError("malformed", `JWT ${what} is not base64url JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new JwtError("malformed", `JWT ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** Splits and parses a compact JWS without checking the signature. */
export function decodeJwt(token: string): DecodedJwt {
  const parts = token.split(".");
  if (parts.length !== 3 || parts.some((p) => p.length === 0)) {
    throw new JwtError("malformed", "a JWT has three non-empty dot-separated parts");
  }
  const header = parseJsonPart(parts[0], "header");
  if (typeof header.alg !== "string") throw new JwtError("malformed", "JWT header has no alg");
  return {
    header: header as unknown as JwtHeader,
    payload: parseJsonPart(parts[1], "payload"),
    signingInput: encoder.encode(`${parts[0]}.${parts[1]}`),
    signature: base64UrlDecode(parts[2]),
  };
}

function webCryptoAlgorithm(alg: JwtAlgorithm): RsaHashedImportParams {
  return alg === "RS256"
    ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }
    : { name: "RSA-PSS", hash: "SHA-256" };
}

function verifyParams(alg: JwtAlgorithm): AlgorithmIdentifier | RsaPssParams {
  // PS256 as jsonwebtoken/jwa produce it: salt length equal to the SHA-256 digest size.
  return alg === "RS256" ? { name: "RSASSA-PKCS1-v1_5" } : { name: "RSA-PSS", saltLength: 32 };
}

export function isSupportedAlgorithm(alg: string): alg is JwtAlgorithm {
  return alg === "RS256" || alg === "PS256";
}

/** Imports an RSA public key (SPKI DER, SPKI PEM or JWK) for verifying `alg`. */
export async function importRsaPublicKey(
  key: Uint8Array<ArrayBuffer> | string | JsonWebKey,
  alg: JwtAlgorithm = "RS256",
): Promise<CryptoKey> {
  if (typeof key === "string") {
    const body = key.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, "");
    const der = Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
    return await crypto.subtle.importKey("spki", der, webCryptoAlgorithm(alg), true, ["verify"]);
  }
  if (key instanceof Uint8Array) {
    return await crypto.subtle.importKey("spki", key, webCryptoAlgorithm(alg), true, ["verify"]);
  }
  const { alg: _alg, key_ops: _ops, use: _use, ...bare } = key;
  return await crypto.subtle.importKey("jwk", bare, webCryptoAlgorithm(alg), true, ["verify"]);
}

export async function verifySignature(decoded: DecodedJwt, key: CryptoKey): Promise<boolean> {
  const alg = decoded.header.alg;
  if (!isSupportedAlgorithm(alg)) return false;
  const expected = key.algorithm.name === "RSA-PSS" ? "PS256" : "RS256";
  if (alg !== expected) return false;
  return await crypto.subtle.verify(verifyParams(alg), key, decoded.signature, decoded.signingInput);
}

export interface SigningKey {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** Key id, also sent as `x5t` the way Azure AD does. */
  kid: string;
  /** The public key as a JWK with `kid`, `use` and `alg`, for the JWKS endpoint. */
  jwk: JsonWebKey & { kid: string };
  /** The public key as SPKI PEM. */
  publicKeyPem: string;
}

export async function generateSigningKey(): Promise<SigningKey> {
  const pair = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
  const kid = base64UrlEncode(new Uint8Array(await crypto.subtle.digest("SHA-1", spki)));
  const exported = await crypto.subtle.exportKey("jwk", pair.publicKey);
  const jwk = { kty: exported.kty, n: exported.n, e: exported.e, kid, use: "sig", alg: "RS256", x5t: kid };
  const b64 = btoa(String.fromCharCode(...spki)).replace(/(.{64})/g, "$1\n").trimEnd();
  const publicKeyPem = `-----BEGIN PUBLIC KEY-----\n${b64}\n-----END PUBLIC KEY-----\n`;
  return { privateKey: pair.privateKey, publicKey: pair.publicKey, kid, jwk, publicKeyPem };
}

export async function signRs256(payload: object, key: SigningKey): Promise<string> {
  const header = { typ: "JWT", alg: "RS256", x5t: key.kid, kid: key.kid };
  const input = `${base64UrlEncode(JSON.stringify(header))}.${base64UrlEncode(JSON.stringify(payload))}`;
  const sig = await crypto.subtle.sign({ name: "RSASSA-PKCS1-v1_5" }, key.privateKey, encoder.encode(input));
  return `${input}.${base64UrlEncode(new Uint8Array(sig))}`;
}

export interface VerifyOptions {
  /** Accepted audiences; any audience when absent. */
  audience?: string | string[];
  /** Current time in epoch seconds (tests). */
  now?: number;
  /** Allowed clock skew for exp/nbf, seconds. Default 0: the emulator and its clients share a clock. */
  clockSkewSeconds?: number;
}

const STRING_CLAIMS = [
  "aud",
  "iss",
  "appid",
  "azp",
  "appidacr",
  "idtyp",
  "oid",
  "sub",
  "tid",
  "ver",
  "uti",
] as const;
const NUMBER_CLAIMS = ["iat", "nbf", "exp"] as const;

/**
 * Verifies an access token issued by the emulator: RS256 signature by `publicKey`, `exp`/`nbf` against
 * the clock, the claim set, and optionally the audience. Returns the claims; throws `JwtError` otherwise.
 */
export async function verifyToken(
  jwt: string,
  publicKey: CryptoKey | JsonWebKey | string,
  options: VerifyOptions = {},
): Promise<AccessTokenClaims> {
  const decoded = decodeJwt(jwt);
  if (decoded.header.alg !== "RS256") throw new JwtError("algorithm", `unexpected alg ${decoded.header.alg}`);
  const key = publicKey instanceof CryptoKey ? publicKey : await importRsaPublicKey(publicKey, "RS256");
  if (!await verifySignature(decoded, key)) throw new JwtError("signature", "signature does not verify");
  const p = decoded.payload;
  for (const c of STRING_CLAIMS) {
    if (typeof p[c] !== "string") throw new JwtError("malformed", `claim ${c} missing or not a string`);
  }
  for (const c of NUMBER_CLAIMS) {
    if (typeof p[c] !== "number") throw new JwtError("malformed", `claim ${c} missing or not a number`);
  }
  const claims = p as unknown as AccessTokenClaims;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const skew = options.clockSkewSeconds ?? 0;
  if (claims.exp <= now - skew) throw new JwtError("expired", `token expired at ${claims.exp}, now ${now}`);
  if (claims.nbf > now + skew) throw new JwtError("not_yet_valid", `token not valid before ${claims.nbf}`);
  if (options.audience !== undefined) {
    const accepted = Array.isArray(options.audience) ? options.audience : [options.audience];
    if (!accepted.includes(claims.aud)) throw new JwtError("audience", `audience ${claims.aud} not accepted`);
  }
  return claims;
}
