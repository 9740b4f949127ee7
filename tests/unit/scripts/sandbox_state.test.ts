import assert from "node:assert/strict";
import { emptyRecord, envExports, parseNamed } from "../../../scripts/sandbox/sandbox_state.ts";

Deno.test("sandbox args: NAME, -n/--namespace, --binding, --federated; bad names and unknown flags are errors", () => {
  assert.deepEqual(parseNamed(["web", "--federated", "-n", "apps"], false, true), {
    ok: true,
    name: "web",
    namespace: "apps",
    federated: true,
  });
  assert.deepEqual(parseNamed(["web"], false, true), { ok: true, name: "web", namespace: "default" });
  assert.equal(parseNamed(["app", "--federated"], true).ok, false);
  assert.deepEqual(parseNamed(["app"], true), { ok: true, name: "app", namespace: "default" });
  assert.deepEqual(parseNamed(["app", "--binding", "web", "-n", "apps"], true), {
    ok: true,
    name: "app",
    namespace: "apps",
    binding: "web",
  });
  assert.deepEqual(parseNamed(["--namespace=apps", "--binding=Web.1", "app"], true), {
    ok: true,
    name: "app",
    namespace: "apps",
    binding: "Web.1",
  });
  for (
    const [argv, allowBinding] of [
      [[], true],
      [["App"], true],
      [["app", "extra"], true],
      [["app", "--binding", "web"], false],
      [["app", "--binding"], true],
      [["app", "-n"], true],
      [["app", "-n", "Bad"], true],
      [["app", "--binding", "-bad-"], true],
      [["app", "--force"], true],
    ] as [string[], boolean][]
  ) {
    const r = parseNamed(argv, allowBinding);
    assert.equal(r.ok, false, JSON.stringify(argv));
  }
});

Deno.test("sandbox env: shell exports of what is up, quoted when needed, nothing for what is not", () => {
  const r = emptyRecord("/tmp/x", true);
  assert.equal(envExports(r), "");
  r.cluster = {
    server: "https://127.0.0.1:1",
    kubeconfigPath: "/tmp/my dir/kc",
    kubectl: "/bin/kubectl",
    dir: "/tmp",
  };
  r.nmi = { address: "127.0.0.1:2579", probe: "http://127.0.0.1:2", log: "/tmp/nmi.log" };
  assert.equal(
    envExports(r),
    "export KUBECONFIG='/tmp/my dir/kc'\nexport KUBECTL_BIN=/bin/kubectl\nexport AAD_SANDBOX_NMI=127.0.0.1:2579",
  );
});
