import assert from "node:assert/strict";
import { manifestOrder, parseDeployArgs } from "../../../scripts/deploy.ts";

Deno.test("deploy args: --kubeconfig PATH and --kubeconfig=PATH name the same file", () => {
  const expected = { ok: true, options: { kubeconfig: "/tmp/kc", dryRun: false, help: false } };
  assert.deepEqual(parseDeployArgs(["--kubeconfig", "/tmp/kc"]), expected);
  assert.deepEqual(parseDeployArgs(["--kubeconfig=/tmp/kc"]), expected);
  assert.deepEqual(parseDeployArgs(["--dry-run", "--kubeconfig=/tmp/kc"]), {
    ok: true,
    options: { kubeconfig: "/tmp/kc", dryRun: true, help: false },
  });
  assert.deepEqual(parseDeployArgs([]), { ok: true, options: { dryRun: false, help: false } });
  assert.deepEqual(parseDeployArgs(["--help"]), { ok: true, options: { dryRun: false, help: true } });
});

Deno.test("deploy args: unknown flags, stray words and missing values are errors", () => {
  for (
    const argv of [
      ["--kubeconfig"],
      ["--kubeconfig="],
      ["--kubeconfig", "--dry-run"],
      ["--kube-config=/tmp/kc"],
      ["--dryrun"],
      ["-k", "/tmp/kc"],
      ["apply"],
      ["--kubeconfig", "/tmp/kc", "extra"],
      ["--dry-run=yes"],
    ]
  ) {
    const r = parseDeployArgs(argv);
    assert.equal(r.ok, false, `${JSON.stringify(argv)} was accepted`);
    if (!r.ok) assert.ok(r.error.length > 0);
  }
});

Deno.test("deploy: CRDs are applied first, then the rest by name, YAML only", () => {
  assert.deepEqual(manifestOrder(["nmi.yaml", "README.md", "crds.yaml", "mic.yaml"]), [
    "crds.yaml",
    "mic.yaml",
    "nmi.yaml",
  ]);
});
