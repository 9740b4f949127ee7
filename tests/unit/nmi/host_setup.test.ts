import assert from "node:assert/strict";
import { mentionsKubenet } from "../../../nmi/kubenet.ts";
import { withoutTaint } from "../../../nmi/node_taint.ts";
import { redirectTarget } from "../../../nmi/iptables/rules.ts";

Deno.test("kubenet check: the original's setting in either spelling, not other plugins", () => {
  assert.equal(mentionsKubenet("KUBELET_FLAGS=--network-plugin=kubenet --max-pods=110"), true);
  assert.equal(mentionsKubenet("KUBELET_FLAGS=--network-plugin kubenet"), true);
  assert.equal(mentionsKubenet("KUBELET_FLAGS=--network-plugin=cni"), false);
  assert.equal(mentionsKubenet("--network-plugin=kubenetish"), false);
});

Deno.test("node taint: only the named key goes, other taints and spec fields stay", () => {
  const node = {
    metadata: { name: "n1" },
    spec: {
      providerID: "azure:///x",
      taints: [
        { key: "aadpodidentity.k8s.io/nmi-not-ready", effect: "NoSchedule" },
        { key: "other", value: "v", effect: "NoExecute" },
      ],
    },
  };
  assert.deepEqual(withoutTaint(node, "aadpodidentity.k8s.io/nmi-not-ready"), {
    providerID: "azure:///x",
    taints: [{ key: "other", value: "v", effect: "NoExecute" }],
  });
  assert.equal(withoutTaint(node, "absent"), undefined);
  assert.equal(withoutTaint({ metadata: { name: "n2" } }, "absent"), undefined);
});

Deno.test("redirect target: a wildcard listener is reached on 127.0.0.1, a specific address as itself", () => {
  assert.equal(redirectTarget("0.0.0.0"), "127.0.0.1");
  assert.equal(redirectTarget("127.0.0.1"), "127.0.0.1");
  assert.equal(redirectTarget("10.240.0.4"), "10.240.0.4");
});
