// Removes NMI's start-up taint from its node once the node is safe for pods (rules in place, caches synced).
// An operator registers nodes with the taint (kubelet --register-with-taints=<key>=:NoSchedule) so no workload
// lands on a new node before NMI guards it: the window the original left open (docs/upstream.md, known
// failures; https://github.com/Azure/aad-pod-identity/issues/573).

import type { Node } from "../lib/kube/core.ts";
import { KubeApiError, type KubeClient, Resources } from "../lib/kube/rest.ts";

/** The node's taints without `key`; undefined when it had none with that key (nothing to do). */
export function withoutTaint(node: Node, key: string): Node["spec"] | undefined {
  const taints = node.spec?.taints ?? [];
  if (!taints.some((t) => t.key === key)) return undefined;
  return { ...node.spec, taints: taints.filter((t) => t.key !== key) };
}

/** Returns true when it removed the taint, false when the node did not carry it. Retries on conflicts. */
export async function removeNodeTaint(client: KubeClient, nodeName: string, key: string): Promise<boolean> {
  for (let attempt = 0;; attempt++) {
    const node = await client.get<Node>(Resources.nodes, nodeName);
    const spec = withoutTaint(node, key);
    if (!spec) return false;
    try {
      // The resourceVersion makes the merge patch conditional: taints someone else changed meanwhile are
      // never overwritten with our stale list.
      await client.patch(Resources.nodes, nodeName, "merge", {
        metadata: { resourceVersion: node.metadata.resourceVersion },
        spec: { taints: spec.taints },
      });
      return true;
    } catch (e) {
      if (!(e instanceof KubeApiError && e.isConflict) || attempt >= 5) throw e;
    }
  }
}
