import assert from "node:assert/strict";
import { httpDate, isoTime } from "../../../lib/time_text.ts";

/** Both built-ins' answers, or the name of what they throw. */
function builtIn(ms: number): [string, string] {
  let iso: string;
  try {
    iso = new Date(ms).toISOString();
  } catch (e) {
    iso = `throws ${(e as Error).name}`;
  }
  return [iso, new Date(ms).toUTCString()];
}

function ours(ms: number): [string, string] {
  let iso: string;
  try {
    iso = isoTime(ms);
  } catch (e) {
    iso = `throws ${(e as Error).name}`;
  }
  return [iso, httpDate(ms)];
}

Deno.test("isoTime and httpDate: as toISOString and toUTCString at the edges", () => {
  const edges = [
    0,
    -1, // 1969-12-31T23:59:59.999Z
    999,
    0.5, // fractions are cut toward zero, as the Date constructor's TimeClip
    -0.5,
    -1.9,
    951_782_400_000, // 2000-02-29, a leap day of a century leap year
    4_107_542_400_000, // 2100-03-01, the day after a century non-leap February
    1_764_900_000_123,
    -62_167_219_200_000, // 0000-01-01T00:00:00.000Z, the first year written in four digits
    -62_167_219_200_001, // the last millisecond of year -1: the built-ins' extended form
    253_402_300_799_999, // 9999-12-31T23:59:59.999Z
    253_402_300_800_000, // +010000-01-01
    8.64e15, // the last valid time value
    8.64e15 + 1, // invalid: toISOString throws RangeError, toUTCString says "Invalid Date"
    NaN,
    Infinity,
  ];
  for (const ms of edges) assert.deepEqual(ours(ms), builtIn(ms), String(ms));
});

Deno.test("isoTime and httpDate: as the built-ins over 20,000 times spread across every valid year", () => {
  // A fixed linear congruential sequence: the same times on every run, whatever the clock.
  let seed = 21;
  const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 20_000; i++) {
    const span = i % 2 ? 8.64e15 : 4e12; // all valid times, and the years near now more densely
    const ms = Math.round((next() * 2 - 1) * span);
    assert.deepEqual(ours(ms), builtIn(ms), String(ms));
  }
});

Deno.test("isoTime and httpDate: as the built-ins at the first and last millisecond of every year 0-9999", () => {
  for (let year = 0; year <= 9999; year++) {
    const first = new Date(0).setUTCFullYear(year, 0, 1); // Date.UTC would read years 0-99 as 1900-1999
    const lastOfFebruary = new Date(0).setUTCFullYear(year, 2, 0);
    for (const ms of [first, first - 1, lastOfFebruary]) assert.deepEqual(ours(ms), builtIn(ms), String(ms));
  }
});
