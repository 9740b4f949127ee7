// Reads a body with a size cap enforced while reading, for every body a peer controls (an ARM, Azure AD or
// IMDS answer in MIC; a pod's proxied request in NMI): a declared length over the cap is refused before a
// byte is read, and a body without one stops at the first chunk past the cap, the rest cancelled unread.

/** The whole body, or undefined when it is (or says it is) larger than `cap` bytes. */
export async function readCapped(
  body: ReadableStream<Uint8Array> | null,
  declaredLength: string | null,
  cap: number,
): Promise<Uint8Array | undefined> {
  if (declaredLength !== null && !(Number(declaredLength) <= cap)) {
    await body?.cancel().catch(() => {});
    return undefined;
  }
  if (!body) return new Uint8Array();
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    size += r.value.byteLength;
    if (size > cap) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(r.value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
