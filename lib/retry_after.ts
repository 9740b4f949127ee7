// The one reader of HTTP Retry-After (RFC 9110 10.2.3) for the apiserver and ARM clients: either a number
// of seconds or an HTTP date. Anything else counts as absent, so the caller falls back to its own backoff.

/**
 * Milliseconds from `now` until a Retry-After value allows a retry: delay-seconds x 1000, or the time to
 * the HTTP date (0 when the date is past). Undefined when absent, empty or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // Every HTTP-date form names its month; without that test Date.parse reads "-5" or "1.5" as dates in 2001.
  if (!/[A-Za-z]/.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
