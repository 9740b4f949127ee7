import assert from "node:assert/strict";
import {
  CONTENT_TYPE,
  escapeHelp,
  escapeLabelValue,
  formatValue,
  labelPairs,
} from "../../../lib/metrics/exposition.ts";
import { Registry } from "../../../lib/metrics.ts";

Deno.test("exposition: numbers as prom-client wrote them, the format's spellings for infinities and NaN", () => {
  assert.equal(formatValue(3), "3");
  assert.equal(formatValue(0), "0");
  assert.equal(formatValue(-2), "-2");
  assert.equal(formatValue(0.01), "0.01");
  assert.equal(formatValue(0.1 + 0.2), "0.30000000000000004");
  assert.equal(formatValue(1e21), "1e+21");
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(NaN), "NaN");
});

Deno.test("exposition: HELP escapes backslash and line feed; label values also the double quote", () => {
  assert.equal(escapeHelp('a\\b\nc"d'), 'a\\\\b\\nc"d');
  assert.equal(escapeLabelValue('a\\b\nc"d'), 'a\\\\b\\nc\\"d');
  assert.equal(labelPairs(["x", "y"], ['1"', "\\"]), 'x="1\\"",y="\\\\"');
  assert.equal(labelPairs([], []), "");
});

Deno.test("exposition: content type of text format 0.0.4", () => {
  assert.equal(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
  assert.equal(new Registry().contentType, CONTENT_TYPE);
});
