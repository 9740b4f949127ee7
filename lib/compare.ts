// The one string order of the services: UTF-16 code units, as Go's sort.Strings orders the original's
// ASCII names. Not String.prototype.localeCompare: its order follows the process's locale (LANG), so two
// nodes could choose differently, and its first call loads ICU's collator, code and data that then stay
// resident: a bare Deno.serve went from 34 to 38 MiB RSS on one localeCompare (scripts/bench/icu_cost.ts).
// For Kubernetes names ([a-z0-9.-]) both orders agree.

/** Negative, zero or positive as `a` sorts before, with or after `b` by UTF-16 code unit. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
