import assert from "node:assert/strict";
import { checkRepository, longFunctions } from "../../../scripts/check_function_length.ts";

/** A function body of `n` lines in total, opening and closing line included. */
function body(n: number): string {
  return ["{", ...Array.from({ length: n - 2 }, (_, i) => `  const v${i} = ${i};`), "}"].join("\n");
}

function found(src: string, max = 10): string[] {
  return longFunctions("x.ts", src, max).map((f) => `${f.line} ${f.name} ${f.lines}`);
}

Deno.test("check_function_length: a function of exactly the limit passes, one line more is a finding", () => {
  assert.deepEqual(found(`function ok() ${body(10)}`), []);
  assert.deepEqual(found(`function long() ${body(11)}`), ["1 long 11"]);
});

Deno.test("check_function_length: methods, constructors, accessors, named arrows and class fields are measured", () => {
  const src = [
    `export async function decl() ${body(12)}`,
    `const arrow = () => ${body(12)};`,
    `const expr = function () ${body(12)};`,
    `class K {`,
    `  constructor() ${body(12)}`,
    `  method() ${body(12)}`,
    `  get value() ${body(12)}`,
    `  field = async () => ${body(12)};`,
    `}`,
    `const o = { prop: () => ${body(12)} };`,
  ].join("\n");
  assert.deepEqual(found(src), [
    "1 decl 12",
    "13 arrow 12",
    "25 expr 12",
    "38 K.constructor 12",
    "50 K.method 12",
    "62 K.value 12",
    "74 K.field 12",
    "87 prop 12",
  ]);
});

Deno.test("check_function_length: braces in strings, templates and regexes do not end a function early", () => {
  const inner = ['  const s = "}}}";', "  const t = `}${1}}`;", "  const r = /}/;"].join("\n");
  const src = `function tricky() {\n${inner}\n${body(10)}\n}`;
  assert.deepEqual(found(src), ["1 tricky 15"]);
});

Deno.test("check_function_length: a nested function counts in its parent and on its own", () => {
  const src = `function outer() {\n  const inner = () => ${body(12)};\n}`;
  assert.deepEqual(found(src), ["1 outer 14", "2 inner 12"]);
  assert.deepEqual(found("const short = (a: number) => a + 1;"), []);
});

Deno.test("check_function_length: the repository walk reads lib/, mic/, nmi/ and scripts/ only, skipping fixtures", () => {
  const root = Deno.makeTempDirSync();
  try {
    for (const dir of ["lib", "mic/fixtures", "tests", "scripts/deep"]) {
      Deno.mkdirSync(`${root}/${dir}`, { recursive: true });
    }
    Deno.writeTextFileSync(`${root}/lib/a.ts`, `function inLib() ${body(12)}`);
    Deno.writeTextFileSync(`${root}/scripts/deep/b.ts`, `function inScripts() ${body(12)}`);
    Deno.writeTextFileSync(`${root}/mic/fixtures/c.ts`, `function fixture() ${body(12)}`);
    Deno.writeTextFileSync(`${root}/tests/d.ts`, `function test() ${body(12)}`);
    const { findings, stale } = checkRepository(root, 10, {});
    assert.deepEqual(findings.map((f) => `${f.path} ${f.name}`), [
      "lib/a.ts inLib",
      "scripts/deep/b.ts inScripts",
    ]);
    assert.deepEqual(stale, []);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("check_function_length: an allow-listed function is no finding; an entry that matches nothing is stale", () => {
  const root = Deno.makeTempDirSync();
  try {
    Deno.mkdirSync(`${root}/lib`);
    Deno.writeTextFileSync(`${root}/lib/table.ts`, `export function table() ${body(12)}`);
    const { findings, stale } = checkRepository(root, 10, {
      "lib/table.ts#table": "generated",
      "lib/gone.ts#cut": "was cut into steps",
    });
    assert.deepEqual(findings, []);
    assert.deepEqual(stale, ["lib/gone.ts#cut"]);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});
