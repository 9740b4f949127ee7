// Built-ins whose first call leaves megabytes resident in a Deno process for good stay out of MIC and NMI
// (`deno task bench builtin_rss` measures each): localeCompare and the Intl/toLocale* family load ICU's
// collator and locale data (about 3.5 MiB), toISOString and toUTCString V8's date formatting (about 1.4). The
// services order strings with lib/compare.ts and format times with lib/time_text.ts, the one module allowed
// to fall back to the built-ins (for years outside 0-9999).
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
const HEAVY = /\.localeCompare\(|\.toLocale\w*\(|\bIntl\.|\.toISOString\(|\.toUTCString\(/;
const ALLOWED = new Set(["lib/time_text.ts"]);

async function* serviceSources(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(new URL(dir, ROOT))) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* serviceSources(path);
    else if (e.name.endsWith(".ts")) yield path;
  }
}

/** Lines of code (not comments) calling a heavy built-in, as `file:line: text`. */
async function heavyCalls(dirs: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const dir of dirs) {
    for await (const path of serviceSources(dir)) {
      if (ALLOWED.has(path)) continue;
      const lines = (await Deno.readTextFile(new URL(path, ROOT))).split("\n");
      lines.forEach((line, i) => {
        const code = line.trimStart();
        if (code.startsWith("//") || code.startsWith("*")) return;
        if (HEAVY.test(code)) found.push(`${path}:${i + 1}: ${code}`);
      });
    }
  }
  return found;
}

Deno.test("MIC, NMI and lib call no built-in that pins ICU or V8's date formatting in memory", async () => {
  assert.deepEqual(await heavyCalls(["lib", "mic", "nmi"]), []);
});

Deno.test("the pattern matches the heavy calls, not the replacements", () => {
  assert.ok(HEAVY.test(`a.localeCompare(b)`));
  assert.ok(HEAVY.test(`const t = new Date().toISOString();`));
  assert.ok(HEAVY.test(`new Intl.DateTimeFormat()`));
  assert.ok(!HEAVY.test(`compareStrings(a, b)`));
});
