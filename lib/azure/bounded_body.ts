// Reads an HTTP answer's body with a size cap: ARM, Azure AD and IMDS answers are a few KiB, so a peer
// that sends megabytes is broken or hostile, and reading it whole would grow MIC's memory without bound.

/** ARM's and Azure AD's answers are far below this; more is refused. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export class BodyTooLarge extends Error {
  override name = "BodyTooLarge";
  constructor(readonly what: string, readonly maxBytes: number) {
    super(`${what}: answer body larger than ${maxBytes} bytes, refused`);
  }
}

/** The body as text, or BodyTooLarge (the rest of the body is cancelled, not read). */
async function readBoundedText(
  res: Response,
  what: string,
  maxBytes = MAX_BODY_BYTES,
): Promise<string> {
  const declared = Number(res.headers.get("content-length") ?? "");
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw new BodyTooLarge(what, maxBytes);
  }
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new BodyTooLarge(what, maxBytes);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

/** The body as JSON; undefined when empty or not JSON (the status code then tells what happened). */
export async function readBoundedJson(
  res: Response,
  what: string,
  maxBytes = MAX_BODY_BYTES,
): Promise<unknown> {
  const text = await readBoundedText(res, what, maxBytes);
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
