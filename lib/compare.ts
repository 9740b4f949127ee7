// The one string order of the services: UTF-16 code units (for ASCII names the byte order Go compares
// strings in). Not String.prototype.localeCompare: its order follows the process's locale (LANG), so two
// nodes could choose differently, and its first call loads ICU's collator, code and data that then stay
// resident: a bare Deno.serve holds 3-4 MiB more after one localeCompare (`deno task bench builtin_rss`).
// For Kubernetes names ([a-z0-9.-]) both orders agree.

/** Negative, zero or positive as `a` sorts before, with or after `b` by UTF-16 code unit. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
