import assert from "node:assert/strict";
import { flag, FlagError, helpText, parseDuration, parseFlags } from "../../../lib/flags.ts";

const specs = {
  node: flag({ kind: "string", default: "", help: "node name", env: "NODE_NAME" }),
  forceNamespaced: flag({ kind: "bool", default: false, help: "namespaced", env: "FORCENAMESPACED" }),
  nmiPort: flag({ kind: "int", default: 2579, help: "port", aliases: ["nmi-port"] }),
  syncRetryDuration: flag({ kind: "duration", default: 3_600_000, help: "resync" }),
  immutableUserMsis: flag({
    kind: "list",
    default: [] as string[],
    help: "ids",
    aliases: ["immutable-user-msis"],
  }),
  logFormat: flag({ kind: "string", default: "text", help: "format", choices: ["text", "json"] }),
};

Deno.test("flags: Go-style spellings, aliases, bare booleans and defaults", () => {
  const { values, rest } = parseFlags(specs, [
    "-node=n1",
    "--forceNamespaced",
    "--nmi-port",
    "8081",
    "--syncRetryDuration=90s",
    "--immutable-user-msis=a, b,,c",
    "positional",
  ]);
  assert.deepEqual(values, {
    node: "n1",
    forceNamespaced: true,
    nmiPort: 8081,
    syncRetryDuration: 90_000,
    immutableUserMsis: ["a", "b", "c"],
    logFormat: "text",
  });
  assert.deepEqual(rest, ["positional"]);
  assert.equal(parseFlags(specs, ["--forceNamespaced=false"]).values.forceNamespaced, false);
});

Deno.test("flags: env stands in for a flag; the command line wins", () => {
  const env = (n: string) =>
    ({ FORCENAMESPACED: "true", NODE_NAME: "from-env" } as Record<string, string>)[n];
  assert.equal(parseFlags(specs, [], env).values.forceNamespaced, true);
  assert.equal(parseFlags(specs, [], env).values.node, "from-env");
  assert.equal(parseFlags(specs, ["--node", "cli"], env).values.node, "cli");
  assert.throws(() => parseFlags(specs, [], () => "maybe"), /FORCENAMESPACED/);
});

Deno.test("flags: bad input is a FlagError naming the flag", () => {
  for (
    const [argv, re] of [
      [["--nope"], /unknown flag --nope/],
      [["--nmiPort=abc"], /nmiPort.*not an integer/],
      [["--syncRetryDuration=5 minutes"], /invalid duration/],
      [["--logFormat=xml"], /not one of text, json/],
      [["--node"], /needs a value/],
      [["--forceNamespaced=yes"], /not a boolean/],
    ] as const
  ) {
    assert.throws(
      () => parseFlags(specs, argv),
      (e) => e instanceof FlagError && re.test(e.message),
      argv.join(" "),
    );
  }
});

Deno.test("flags: durations as Go writes them; --help lists every flag with its default", () => {
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("60"), 60_000);
  assert.equal(parseFlags(specs, ["--help"]).help, true);
  const text = helpText("usage: x", specs);
  for (const name of Object.keys(specs)) assert.match(text, new RegExp(`--${name} `));
  assert.match(text, /default "1h"/);
  assert.match(text, /env FORCENAMESPACED/);
  assert.match(text, /also --nmi-port/);
});
