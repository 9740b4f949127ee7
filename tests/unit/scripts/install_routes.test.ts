// The kubectl-apply install route changes nothing in the checked-in YAML but the two image names.

import assert from "node:assert/strict";
import { checkedInYaml, withImageRepository } from "../../../scripts/sandbox/node/install_routes.ts";

Deno.test("kubectl-apply route: only MIC's and NMI's image lines change, in both variants", async () => {
  for (const federated of [false, true]) {
    const yaml = await Deno.readTextFile(checkedInYaml(federated));
    const out = withImageRepository(yaml, "registry.example:5000/team/aad-pod-identity");
    const before = yaml.split("\n");
    const after = out.split("\n");
    assert.equal(after.length, before.length);
    const changed = after.filter((l, i) => l !== before[i]).map((l) => l.trim());
    assert.deepEqual(changed, [
      "image: registry.example:5000/team/aad-pod-identity/mic:1.9.0-deno",
      "image: registry.example:5000/team/aad-pod-identity/nmi:1.9.0-deno",
    ]);
  }
  assert.match(checkedInYaml(true), /deploy\/aad-pod-identity-federated\.yaml$/);
});

Deno.test("kubectl-apply route: a YAML without exactly the two expected image lines is refused", () => {
  assert.throws(() => withImageRepository("kind: Pod\n", "x"), /expected 2 lines/);
  const three = "image: aad-pod-identity/mic:1\nimage: aad-pod-identity/nmi:1\nimage: aad-pod-identity/x:1\n";
  assert.throws(() => withImageRepository(three, "x"), /found 3/);
});
