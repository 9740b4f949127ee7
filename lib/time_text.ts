// Timestamps as text, computed from the time value with integer arithmetic instead of by a Date: the first
// toISOString or toUTCString leaves about 2 MiB more resident in a Deno process for good, and a Date's
// getUTC* fields about 1 of it, where this costs nothing measurable (`deno task bench builtin_rss`). NMI
// logs, stamps every answer's Date header and decodes timestamps, so it paid that on every node.

const DAYS = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAY_MS = 86_400_000;
/** 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the years both built-ins write in four digits. */
const FIRST_MS = -62_167_219_200_000;
const LAST_MS = 253_402_300_799_999;

interface UtcFields {
  year: number;
  month: number; // 1-12
  day: number;
  weekday: number; // index into DAYS
  hour: number;
  minute: number;
  second: number;
  ms: number;
}

/**
 * The UTC calendar fields of a whole millisecond count in years 0-9999 (Howard Hinnant's civil_from_days,
 * https://howardhinnant.github.io/date_algorithms.html, public domain; the proleptic Gregorian calendar
 * ECMAScript dates use).
 */
function utcFields(time: number): UtcFields {
  const days = Math.floor(time / DAY_MS);
  const msOfDay = time - days * DAY_MS;
  const z = days + 719_468; // days since 0000-03-01
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const shiftedMonth = Math.floor((5 * dayOfYear + 2) / 153); // March is 0
  const month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9;
  return {
    year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0),
    month,
    day: dayOfYear - Math.floor((153 * shiftedMonth + 2) / 5) + 1,
    weekday: ((days % 7) + 7) % 7,
    hour: Math.floor(msOfDay / 3_600_000),
    minute: Math.floor(msOfDay / 60_000) % 60,
    second: Math.floor(msOfDay / 1000) % 60,
    ms: msOfDay % 1000,
  };
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/** The time value `new Date(ms)` holds when it is one in years 0-9999; undefined otherwise. */
function plainTime(ms: number): number | undefined {
  const time = Math.trunc(ms); // as the Date constructor's TimeClip
  return time >= FIRST_MS && time <= LAST_MS ? time : undefined;
}

/** `2026-12-05T03:14:57.123Z`, exactly as `new Date(ms).toISOString()` (which it defers to outside 0-9999). */
export function isoTime(ms: number): string {
  const time = plainTime(ms);
  if (time === undefined) return new Date(ms).toISOString();
  const f = utcFields(time);
  return `${pad(f.year, 4)}-${pad(f.month)}-${pad(f.day)}T${pad(f.hour)}:${pad(f.minute)}:${pad(f.second)}.${
    pad(f.ms, 3)
  }Z`;
}

/** RFC 9110's IMF-fixdate, `Sat, 05 Dec 2026 03:14:57 GMT`, exactly as `new Date(ms).toUTCString()`. */
export function httpDate(ms: number): string {
  const time = plainTime(ms);
  if (time === undefined) return new Date(ms).toUTCString();
  const f = utcFields(time);
  return `${DAYS[f.weekday]}, ${pad(f.day)} ${MONTHS[f.month - 1]} ${pad(f.year, 4)} ${pad(f.hour)}:${
    pad(f.minute)
  }:${pad(f.second)} GMT`;
}
