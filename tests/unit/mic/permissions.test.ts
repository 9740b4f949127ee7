import assert from "node:assert/strict";
import { helpText, parseFlags } from "../../../lib/flags.ts";
import { IGNORED_FLAGS, MIC_FLAGS } from "../../../mic/flags.ts";
import { MIC_ENTRYPOINT, MIC_PERMISSIONS } from "../../../mic/permissions.ts";

Deno.test("deno task mic runs with exactly MIC_PERMISSIONS (the list the tests and Dockerfile use)", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../../deno.json", import.meta.url)));
  assert.equal(config.tasks.mic, `deno run ${MIC_PERMISSIONS.join(" ")} ${MIC_ENTRYPOINT}`);
  assert.ok(!MIC_PERMISSIONS.some((p) => /^-A$|--allow-all|--allow-run|--allow-write|--allow-ffi/.test(p)));
});

Deno.test("MIC flags: the original's spellings parse; ignored ones are still accepted", () => {
  const { values } = parseFlags(MIC_FLAGS, [
    "--cloudconfig=/etc/kubernetes/azure.json",
    "-forceNamespaced",
    "--immutable-user-msis=a,b",
    "--leader-election-duration=30s",
    "--syncRetryDuration=1h",
    "--clientQps=10",
  ]);
  assert.equal(values.cloudconfig, "/etc/kubernetes/azure.json");
  assert.equal(values.forceNamespaced, true);
  assert.deepEqual(values["immutable-user-msis"], ["a", "b"]);
  assert.equal(values["leader-election-duration"], 30_000);
  assert.equal(values["identity-assignment-reconcile-interval"], 180_000);
  assert.equal(
    parseFlags(MIC_FLAGS, [], (n) => (n === "FORCENAMESPACED" ? "true" : undefined)).values.forceNamespaced,
    true,
  );
  for (const name of IGNORED_FLAGS) assert.ok(name in MIC_FLAGS);
  assert.match(helpText("usage", MIC_FLAGS), /--immutable-user-msis/);
});
