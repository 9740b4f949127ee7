// --remove-node-taint: NMI takes its start-up taint off its node once it can guard the node's pods (caches
// synced; rules in place when it manages them), so an operator can keep workloads off a new node until then.

import assert from "node:assert/strict";
import type { Node } from "../../../lib/kube/core.ts";
import { Resources } from "../../../lib/kube/rest.ts";
import { startHarness, waitUntil } from "./harness.ts";

const TAINT = "aadpodidentity.k8s.io/nmi-not-ready";

Deno.test("NMI removes only its start-up taint from its own node once ready", async () => {
  const h = await startHarness({ startNmi: false });
  try {
    await h.kube.create(Resources.nodes, {
      metadata: { name: h.node },
      spec: {
        taints: [
          { key: TAINT, effect: "NoSchedule" },
          { key: "example.com/other", value: "keep", effect: "NoSchedule" },
        ],
      },
    } as Node);
    await h.startNmi([`--remove-node-taint=${TAINT}`]);
    await waitUntil(
      "taint removed",
      async () => {
        const node = await h.kube.get<Node>(Resources.nodes, h.node);
        return !(node.spec?.taints ?? []).some((t) => t.key === TAINT);
      },
      10_000,
      50,
    );
    const node = await h.kube.get<Node>(Resources.nodes, h.node);
    // Other taints stay (the apiserver itself adds node.kubernetes.io/not-ready to a new node).
    assert.deepEqual(node.spec?.taints?.find((t) => t.key === "example.com/other"), {
      key: "example.com/other",
      value: "keep",
      effect: "NoSchedule",
    });
    await waitUntil("logged", () => h.nmi.logs.some((l) => l.includes(`removed taint ${TAINT}`)), 2_000, 20);
  } finally {
    await h.close();
    await h.kube.delete(Resources.nodes, h.node).catch(() => {});
  }
});
