// scripts/test.ts as a user runs it, on deliberately broken fixture files and with a control plane that does
// not start or CRDs that do not install: every way of failing shows in the final `N passed, N failed` line
// and in the exit status.

import assert from "node:assert/strict";

const root = new URL("../../../", import.meta.url).pathname;
const FIXTURES = "tests/fixtures/runner";

async function runRunner(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/test.ts", ...args],
    cwd: root,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const stdout = dec.decode(out.stdout);
  const lines = stdout.trimEnd().split("\n");
  return { code: out.code, last: lines[lines.length - 1], output: stdout + dec.decode(out.stderr) };
}

Deno.test("test runner: a file that throws at load and async work failing after its test resolved are counted failures", async () => {
  const r = await runRunner([
    `${FIXTURES}/passing.fixture.ts`,
    `${FIXTURES}/failing.fixture.ts`,
    `${FIXTURES}/load_error.fixture.ts`,
    `${FIXTURES}/late_error.fixture.ts`,
  ]);
  // passed: the two passing tests and the late file's first test. failed: the ordinary failure, the file
  // that never loaded, the test cancelled by the late rejection, and that rejection itself.
  assert.equal(r.last, "3 passed, 4 failed", r.output);
  assert.equal(r.code, 1);
  assert.match(r.output, /load_error\.fixture\.ts: uncaught error/);
  assert.match(r.output, /late_error\.fixture\.ts: uncaught error/);
});

Deno.test("test runner: a control plane that fails to start is a failed run with a summary", async () => {
  // A kube-apiserver binary that exits 1 at once.
  const r = await runRunner([`${FIXTURES}/passing.fixture.ts`], { KUBE_APISERVER_BIN: "/bin/false" });
  assert.equal(r.last, "0 passed, 1 failed", r.output);
  assert.equal(r.code, 1);
  assert.match(r.output, /start-up failed: kube-apiserver not ready[\s\S]*kube-apiserver exited/);
});

Deno.test("test runner: a CRD install that fails is a failed run with a summary", async () => {
  // kubectl is only needed once the control plane is up, to install the CRDs: a kubectl that exits 1.
  const r = await runRunner([`${FIXTURES}/passing.fixture.ts`], { KUBECTL_BIN: "/bin/false" });
  assert.equal(r.last, "0 passed, 1 failed", r.output);
  assert.equal(r.code, 1);
  assert.match(r.output, /start-up failed: installing CRDs failed/);
});
