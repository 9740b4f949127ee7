import assert from "node:assert/strict";
import { summaryLine, tally, uncaughtErrorFiles } from "../../../scripts/test.ts";

// deno test's end of report, as printed (colours included) when a file crashed.
const DENO_OUTPUT = [
  "\x1b[0m\x1b[38;5;245mrunning 1 test from ./a.test.ts\x1b[0m",
  "passes ... \x1b[0m\x1b[32mok\x1b[0m",
  "Uncaught error from ./crash.test.ts \x1b[0m\x1b[31mFAILED\x1b[0m",
  "",
  "\x1b[0m\x1b[1m\x1b[37m\x1b[41m ERRORS \x1b[0m",
  "",
  "./crash.test.ts (uncaught error)",
  "\x1b[0m\x1b[1m\x1b[31merror\x1b[0m: (in promise) Error: boom",
  "",
  "./late.test.ts (uncaught error)",
  "\x1b[0m\x1b[1m\x1b[31merror\x1b[0m: Error: late",
  "",
  "\x1b[0m\x1b[1m\x1b[37m\x1b[41m FAILURES \x1b[0m",
  "",
  "./crash.test.ts (uncaught error)",
  "./late.test.ts (uncaught error)",
  "",
  "\x1b[0m\x1b[31mFAILED\x1b[0m | 1 passed | 2 failed \x1b[0m\x1b[38;5;245m(757ms)\x1b[0m",
].join("\n");

const JUNIT_ONE_PASS = `<testsuites><testsuite name="./a.test.ts" tests="1">
<testcase name="passes" classname="./a.test.ts" time="0"></testcase></testsuite></testsuites>`;

Deno.test("test runner: files with uncaught errors are found in deno's output, each once", () => {
  assert.deepEqual(uncaughtErrorFiles(DENO_OUTPUT), ["./crash.test.ts", "./late.test.ts"]);
  assert.deepEqual(uncaughtErrorFiles("ok | 3 passed | 0 failed"), []);
  // A test's own output that mentions the phrase mid-line is not a report line.
  assert.deepEqual(uncaughtErrorFiles("log: x (uncaught error) y\n  ./indented (uncaught error)"), []);
});

Deno.test("test runner: each crashed file is one failure, named; a silent non-zero exit is one failure", () => {
  const t = tally(JUNIT_ONE_PASS, DENO_OUTPUT, 1);
  assert.deepEqual(t.counts, { passed: 1, failed: 2, skipped: 0 });
  assert.equal(t.problems.length, 2);
  assert.match(t.problems[0], /^\.\/crash\.test\.ts: uncaught error/);
  assert.equal(summaryLine(t.counts), "1 passed, 2 failed");

  const typeError = tally("", "error: TS2322 [ERROR]: Type 'string' is not assignable", 1);
  assert.deepEqual(typeError.counts, { passed: 0, failed: 1, skipped: 0 });
  assert.match(typeError.problems[0], /exited with 1/);

  assert.deepEqual(tally(JUNIT_ONE_PASS, "ok | 1 passed | 0 failed", 0), {
    counts: { passed: 1, failed: 0, skipped: 0 },
    problems: [],
  });
});
