import assert from "node:assert/strict";
import { compareStrings } from "../../../lib/compare.ts";

Deno.test("compareStrings: negative, zero or positive by UTF-16 code unit", () => {
  assert.ok(compareStrings("a", "b") < 0);
  assert.ok(compareStrings("b", "a") > 0);
  assert.equal(compareStrings("same", "same"), 0);
  assert.ok(compareStrings("a", "ab") < 0, "a prefix first");
  assert.ok(compareStrings("B", "a") < 0, "code units, not a locale's collation (which puts a before B)");
});

Deno.test("compareStrings: the order localeCompare gave for Kubernetes names ([a-z0-9.-])", () => {
  const names = [
    "default",
    "kube-system",
    "kube.system",
    "kube0",
    "kubea",
    "a-b",
    "ab",
    "a.b",
    "a0",
    "0a",
    "9",
    "app-2",
    "app-10",
    "app",
    "app.identity",
    "z",
  ];
  assert.deepEqual(
    [...names].sort(compareStrings),
    [...names].sort((a, b) => a.localeCompare(b, "en")),
  );
});
