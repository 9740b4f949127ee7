// Reads an HTTP answer's body with a size cap: ARM, Azure AD and IMDS answers are a few KiB, so a peer
// that sends megabytes is broken or hostile, and reading it whole would grow MIC's memory without bound.

import { readCapped } from "../read_capped.ts";

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
  const bytes = await readCapped(res.body, res.headers.get("content-length"), maxBytes);
  if (!bytes) throw new BodyTooLarge(what, maxBytes);
  return new TextDecoder().decode(bytes);
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
