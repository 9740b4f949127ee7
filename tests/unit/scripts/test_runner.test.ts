import assert from "node:assert/strict";
import { countJunit } from "../../../scripts/test.ts";

Deno.test("test runner: counts deno's JUnit test cases as passed, failed and skipped", () => {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="deno test" tests="4" failures="1" errors="0" time="0.1">
  <testsuite name="./a.test.ts" tests="4" disabled="0" errors="0" failures="1">
    <testcase name="ok one" classname="./a.test.ts" time="0.001" line="1" col="6">
    </testcase>
    <testcase name="ok two" classname="./a.test.ts" time="0.001" line="2" col="6"/>
    <testcase name="bad" classname="./a.test.ts" time="0.001" line="3" col="6">
      <failure message="Uncaught Error">boom</failure>
    </testcase>
    <testcase name="later" classname="./a.test.ts" time="0" line="4" col="6">
      <skipped/>
    </testcase>
    <testcase name="bad &gt; step one" classname="./a.test.ts" time="0" line="3" col="20">
      <failure message="Uncaught Error">boom</failure>
    </testcase>
    <testcase name="ok two &gt; a &gt; b" classname="./a.test.ts" time="0" line="2" col="20"/>
    <testcase name="a &gt; b is one name" classname="./a.test.ts" time="0" line="5" col="6"/>
  </testsuite>
</testsuites>`;
  // Steps ("parent &gt; step") are not counted; a test whose own name holds " > " is.
  assert.deepEqual(countJunit(xml), { passed: 3, failed: 1, skipped: 1 });
  assert.deepEqual(countJunit(""), { passed: 0, failed: 0, skipped: 0 });
});
