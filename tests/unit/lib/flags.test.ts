import assert from "node:assert/strict";
import {
  flag,
  FlagError,
  helpText,
  ignoredFlagsGiven,
  KLOG_FLAGS,
  levelFromVerbosity,
  parseDuration,
  parseFlags,
} from "../../../lib/flags.ts";
import { buildInfo, versionLine } from "../../../lib/version.ts";

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

Deno.test("flags: FORCENAMESPACED ORs with the flag, as the original (flag=false + env true = true)", () => {
  const or = {
    forceNamespaced: flag({ kind: "bool", default: false, help: "x", env: "FORCENAMESPACED", envMode: "or" }),
  };
  const envTrue = (n: string) => (n === "FORCENAMESPACED" ? "true" : undefined);
  assert.equal(parseFlags(or, ["--forceNamespaced=false"], envTrue).values.forceNamespaced, true);
  assert.equal(parseFlags(or, ["--forceNamespaced=false"]).values.forceNamespaced, false);
  assert.equal(parseFlags(or, ["--forceNamespaced"], () => "false").values.forceNamespaced, true);
  assert.equal(parseFlags(or, [], envTrue).values.forceNamespaced, true);
});

Deno.test("flags: choices folded to lower case, float values, Go durations, klog's -v", () => {
  const s = {
    mode: flag({
      kind: "string",
      default: "standard",
      help: "m",
      choices: ["standard", "managed"],
      foldCase: true,
    }),
    qps: flag({ kind: "float", default: 5, help: "q" }),
    d: flag({ kind: "duration", default: 0, help: "d" }),
    ...KLOG_FLAGS,
  };
  const p = parseFlags(s, ["--mode", "Managed", "--qps=5.5", "-d=1h0m0s", "-v=5"]);
  assert.equal(p.values.mode, "managed");
  assert.equal(p.values.qps, 5.5);
  assert.equal(p.values.d, 3_600_000);
  assert.equal(p.values.v, 5);
  assert.equal(parseDuration("1.5h"), 5_400_000);
  assert.equal(parseDuration("1500us"), 2);
  assert.throws(() => parseFlags(s, ["--qps=fast"]), /not a number/);
  assert.throws(() => parseFlags(s, ["--mode=MANAGEDX"]), /not one of/);
  assert.equal(levelFromVerbosity(5), "debug");
  assert.equal(levelFromVerbosity(2), "info");
  assert.equal(levelFromVerbosity(undefined), undefined);
});

Deno.test("flags: klog's whole set parses; the ignored ones given are listed once each", () => {
  const argv = [
    "--logtostderr",
    "--alsologtostderr=true",
    "--log_dir=/tmp",
    "--log_file",
    "/tmp/x.log",
    "--log_file_max_size=10",
    "--vmodule=mic=4",
    "--stderrthreshold=INFO",
    "--skip_headers",
    "--skip_log_headers",
    "--add_dir_header",
    "--one_output",
    "--log_backtrace_at=a.go:1",
    "--v=3",
    "--logtostderr",
  ];
  const p = parseFlags(KLOG_FLAGS, argv);
  const ignored = ignoredFlagsGiven(KLOG_FLAGS, p);
  assert.equal(new Set(ignored).size, ignored.length, "each reported once");
  assert.equal(ignored.length, Object.keys(KLOG_FLAGS).length - 1, "all but -v are ignored");
  assert.ok(!ignored.includes("v"));
  assert.equal(p.values.v, 3);
});

Deno.test("version: --version prints the original's shape", () => {
  const line = versionLine(
    buildInfo((n) => ({ AAD_POD_IDENTITY_GIT_COMMIT: "abc123" } as Record<string, string>)[n]),
  );
  assert.match(line, /^MIC Version: \S+ - NMI Version: \S+ - Commit: abc123 - Date: unknown$/);
});
