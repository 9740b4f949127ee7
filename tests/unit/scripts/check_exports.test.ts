import assert from "node:assert/strict";
import { exportsOf, importsOf, stripCode, unusedExports } from "../../../scripts/check_exports.ts";

const ROOT = "/repo";

function check(files: Record<string, string>, allowed: Record<string, string> = {}) {
  const sources = new Map(Object.entries(files).map(([path, text]) => [`${ROOT}/${path}`, text]));
  const { findings, stale } = unusedExports(sources, ROOT, allowed);
  return { found: findings.map((f) => `${f.file}:${f.line} ${f.name}`), stale };
}

Deno.test("check_exports: every form of export is found, with its line; comments and strings are not code", () => {
  const code = stripCode([
    "export function f() {}",
    "export async function g() {}",
    "export const C = 1;",
    "export interface I {}",
    "export type T = string;",
    "export class K {}",
    "export abstract class A {}",
    "export enum E { X }",
    "export default function main() {}",
    "const local = 1;",
    "export { local as renamed, type T as U };",
    "// export const commented = 1;",
    'const s = "export const inString = 1";',
    "const t = `\nexport const inTemplate = 1;\n`;",
  ].join("\n"));
  assert.deepEqual(
    exportsOf(code).map((d) => `${d.line} ${d.name}`),
    ["1 f", "2 g", "3 C", "4 I", "5 T", "6 K", "7 A", "8 E", "9 default", "11 renamed", "11 U"],
  );
});

Deno.test("check_exports: named, renamed, type, default, namespace, re-export and dynamic imports", () => {
  const file = `${ROOT}/dir/user.ts`;
  const code = stripCode([
    'import { a, b as bee, type C } from "./m1.ts";',
    'import D, { e } from "../m2.ts";',
    'import * as ns from "./m3.ts";',
    "ns.used(); ns.Other;",
    'import * as whole from "./m4.ts";',
    "take(whole);",
    'export { x } from "./m5.ts";',
    'export * from "./m6.ts";',
    'const lazy = await import("./m7.ts");',
    'import { npm } from "npm:yaml";',
    'import {\n  multi,\n  line,\n} from "./m8.ts";',
  ].join("\n"));
  const uses = Object.fromEntries(
    importsOf(code, file).map((u) => [u.target.slice(ROOT.length + 1), [...u.names]]),
  );
  assert.deepEqual(uses, {
    "dir/m1.ts": ["a", "b", "C"],
    "m2.ts": ["default", "e"],
    "dir/m3.ts": ["used", "Other"],
    "dir/m4.ts": ["*"],
    "dir/m5.ts": ["x"],
    "dir/m6.ts": ["*"],
    "dir/m7.ts": ["*"],
    "dir/m8.ts": ["multi", "line"],
  });
});

Deno.test("check_exports: reports exports only their own file uses; the allow-list excuses, and goes stale", () => {
  const files = {
    "lib/m.ts":
      "export const used = 1;\nexport const unused = used;\nexport function selfOnly() {}\nselfOnly();",
    "lib/n.ts": 'import { used } from "./m.ts";\nexport const n = used;',
    "tests/t.test.ts": 'import { n } from "../lib/n.ts";\nn;',
  };
  assert.deepEqual(check(files), { found: ["lib/m.ts:2 unused", "lib/m.ts:3 selfOnly"], stale: [] });
  const allowed = { "lib/m.ts#unused": "public entry point", "lib/n.ts#n": "no longer needed" };
  assert.deepEqual(check(files, allowed), { found: ["lib/m.ts:3 selfOnly"], stale: ["lib/n.ts#n"] });
  assert.deepEqual(check(files, { "lib/m.ts#*": "generated table" }).found, []);
});
