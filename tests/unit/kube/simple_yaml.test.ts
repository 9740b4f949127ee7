// lib/kube/simple_yaml.ts against yaml itself: on kubeconfigs as the usual tools write them it must return
// exactly what yaml's parse returns, leave the rest to yaml, and never accept what yaml reads differently.

import assert from "node:assert/strict";
import { parse } from "yaml";
import { parseSimpleYaml } from "../../../lib/kube/simple_yaml.ts";
import { rng } from "../../integration/kube/helpers.ts";
import { CORPUS } from "./simple_yaml_corpus.ts";

Deno.test("simple_yaml: each kubeconfig of the corpus parses as yaml parses it, or is left to yaml", () => {
  for (const entry of CORPUS) {
    const simple = parseSimpleYaml(entry.text);
    if (entry.declines) {
      assert.equal(simple, undefined, `${entry.name}: should be left to yaml (${entry.declines})`);
      continue;
    }
    assert.notEqual(simple, undefined, `${entry.name}: declined`);
    assert.deepStrictEqual(simple, parse(entry.text), entry.name);
  }
});

Deno.test("simple_yaml: what yaml throws on, the simple parser declines (yaml then reports it)", () => {
  for (const entry of CORPUS.filter((e) => e.declines?.length)) {
    let throws = false;
    try {
      parse(entry.text);
    } catch {
      throws = true;
    }
    assert.equal(
      throws,
      / \(yaml throws\)$/.test(entry.name),
      `${entry.name}: yaml ${throws ? "throws" : "parses"}`,
    );
  }
});

Deno.test("simple_yaml: core schema scalars resolve to yaml's types", () => {
  const doc = parseSimpleYaml(
    "a: ~\nb: True\nc: 0x1F\nd: 0o17\ne: -.inf\nf: .NaN\ng: 1e3\nh: 2.\ni: 012\nj: 0b1\nk: 1_000\nl: -0\n",
  );
  assert.deepStrictEqual(doc, {
    a: null,
    b: true,
    c: 31,
    d: 15,
    e: -Infinity,
    f: NaN,
    g: 1000,
    h: 2,
    i: 12,
    j: "0b1",
    k: "1_000",
    l: -0,
  });
});

Deno.test("simple_yaml: a sequence at its key's indentation and compact mappings nest as kubectl means", () => {
  const doc = parseSimpleYaml("a:\n- b: 1\n  c:\n  - 2\n  d: 3\n-\n- - x\n".replace("- - x", "- x"));
  assert.deepStrictEqual(doc, { a: [{ b: 1, c: [2], d: 3 }, null, "x"] });
});

Deno.test("simple_yaml: pathological input is answered at once", () => {
  const cases: [string, unknown][] = [
    [`a: b${" ".repeat(200_000)}c\n`, { a: `b${" ".repeat(200_000)}c` }],
    [`a: ${"[".repeat(100_000)}\n`, undefined],
    [`a: '${"''".repeat(100_000)}\n`, undefined],
    [`a: "${'\\"'.repeat(100_000)}\n`, undefined],
  ];
  // 300 mappings each nested in the one before (deeper overflows the assertion's own recursion).
  let deep: unknown = null;
  for (let i = 0; i < 300; i++) deep = { k: deep };
  cases.push([Array.from({ length: 300 }, (_, i) => `${" ".repeat(i)}k:`).join("\n"), deep]);
  for (const [text, expected] of cases) {
    const started = performance.now();
    assert.deepStrictEqual(parseSimpleYaml(text), expected);
    const ms = performance.now() - started;
    assert.ok(ms < 1_000, `${ms} ms for ${text.slice(0, 20)}`);
  }
});

/** yaml's parse of a text the simple parser accepted: it must not throw. */
function parseOrFail(text: string): unknown {
  try {
    return parse(text);
  } catch (e) {
    assert.fail(
      `accepted what yaml rejects (${(e as Error).message.split("\n")[0]}): ${JSON.stringify(text)}`,
    );
  }
}

/** The characters YAML gives meaning to, a few ordinary ones, and some tokens that change a line's kind. */
const ALPHABET = [
  ..."-:#'\"{}[],\n \t&*!|>?%",
  ..."a1.~\\",
  "\r\n",
  "- ",
  ": ",
  "---",
  "...",
  "\\x4",
  "\\u00e",
  "0x",
  ".inf",
  "<<",
  "__proto__",
];

/** Shifts, repeats or drops one line: what changes the block structure rather than one scalar. */
function mutateLine(text: string, random: () => number): string {
  const lines = text.split("\n");
  const at = Math.floor(random() * lines.length);
  const op = random();
  if (op < 0.3) lines.splice(at, 0, lines[at]);
  else if (op < 0.5) lines.splice(at, 1);
  else if (op < 0.75) lines[at] = " ".repeat(1 + Math.floor(random() * 2)) + lines[at];
  else lines[at] = lines[at].replace(/^ {1,2}/, "");
  return lines.join("\n");
}

function mutate(text: string, random: () => number): string {
  let out = text;
  const edits = 1 + Math.floor(random() * 3);
  for (let n = 0; n < edits; n++) {
    const at = Math.floor(random() * (out.length + 1));
    const ch = ALPHABET[Math.floor(random() * ALPHABET.length)];
    const op = random();
    if (op < 0.35) out = out.slice(0, at) + ch + out.slice(at);
    else if (op < 0.6) out = out.slice(0, at) + out.slice(at + 1);
    else if (op < 0.85) out = out.slice(0, at) + ch + out.slice(at + 1);
    else out = mutateLine(out, random);
  }
  return out;
}

/** The mutants' bases: the corpus, long base64 shortened so that an edit lands on structure more often. */
function bases(): string[] {
  return CORPUS.filter((e) => e.text.length > 0).map((e) =>
    e.text.replace(/[A-Za-z0-9+/=]{80,}/g, (m) => m.slice(0, 8))
  );
}

Deno.test("simple_yaml: random mutations of the corpus: whatever it accepts, yaml parses the same", () => {
  const random = rng(Number(Deno.env.get("FUZZ_SEED") ?? 0x5eed21));
  const texts = bases();
  const deadline = performance.now() + Number(Deno.env.get("FUZZ_MS") ?? 4_000);
  let tried = 0;
  let accepted = 0;
  while (tried < Number(Deno.env.get("FUZZ_N") ?? 20_000) && performance.now() < deadline) {
    const text = mutate(texts[tried % texts.length], random);
    tried++;
    const simple = parseSimpleYaml(text);
    if (simple === undefined) continue;
    accepted++;
    assert.deepStrictEqual(simple, parseOrFail(text), `differs from yaml: ${JSON.stringify(text)}`);
  }
  // The run is only worth something if many mutants stay in the subset and many leave it.
  console.log(`${accepted} of ${tried} mutants accepted`);
  assert.ok(tried >= 2_000, `only ${tried} mutants in time`);
  assert.ok(accepted > tried / 10 && accepted < tried * 0.95, `${accepted} of ${tried} accepted`);
});

/** Short runs of YAML's significant characters and tokens, set where kubeconfigs put scalars and keys. */
const PIECES = [
  ..."-:#'\"{}[],  &*!|>?%@`\\~.01aeEx+_",
  "\n",
  "\n ",
  "\n- ",
  ": ",
  "- ",
  "0x",
  "0o",
  ".inf",
  "null",
  "\\u",
];
const PLACES = [
  "X",
  "a: X",
  "- X",
  "a: [X]",
  "a: {b: X}",
  "a:\n  X",
  "X: b",
  "- a: X\n  b: c",
  "a: X # c",
  "'X': \"X\"",
];

Deno.test("simple_yaml: generated scalars and keys: whatever it accepts, yaml parses the same", () => {
  const random = rng(Number(Deno.env.get("FUZZ_SEED") ?? 0x5ca1a7));
  const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)];
  const deadline = performance.now() + Number(Deno.env.get("FUZZ_MS") ?? 2_000);
  let tried = 0;
  let accepted = 0;
  while (tried < Number(Deno.env.get("FUZZ_N") ?? 100_000) && performance.now() < deadline) {
    const piece = Array.from({ length: 1 + Math.floor(random() * 8) }, () => pick(PIECES)).join("");
    const text = pick(PLACES).replaceAll("X", piece);
    tried++;
    const simple = parseSimpleYaml(text);
    if (simple === undefined) continue;
    accepted++;
    assert.deepStrictEqual(simple, parseOrFail(text), `differs from yaml: ${JSON.stringify(text)}`);
  }
  console.log(`${accepted} of ${tried} generated documents accepted`);
  assert.ok(tried >= 10_000 && accepted > tried / 10, `${accepted} of ${tried} accepted`);
});

Deno.test("simple_yaml: the test run's own kubeconfig (scripts/sandbox writes it) is in the subset", async () => {
  const path = Deno.env.get("AAD_TEST_KUBECONFIG");
  if (!path) return; // run by `deno test` alone: the corpus has its shape
  const text = await Deno.readTextFile(path);
  const simple = parseSimpleYaml(text);
  assert.notEqual(simple, undefined, `${path} declined`);
  assert.deepStrictEqual(simple, parse(text));
});
