// NMI's signal to MIC: the node's IMDS keeps answering "Identity not found" for an identity whose
// AzureAssignedIdentity says Assigned, past the propagation window. Something removed it from the VM /
// scale set behind MIC's back (an AKS upgrade or node-image update: the original's issue #633); MIC watches
// these Events (mic/nmi_signals.ts) and re-checks that one VM / scale set at once instead of waiting for
// its drift-repair interval. One stable message per assignment, so repeats fold into one Event's count.

import { API_VERSION, IDENTITY_NOT_FOUND_ON_NODE } from "../lib/api/types.ts";
import type { EventRecorder } from "../lib/kube/events.ts";

interface AssignedRef {
  /** The AzureAssignedIdentity's namespace, name and uid. */
  namespace: string;
  name: string;
  uid?: string;
}

/** Records the Warning; never throws (events are advice). */
export function reportIdentityNotFound(
  recorder: EventRecorder,
  assigned: AssignedRef,
  o: { node: string; clientId: string },
): Promise<void> {
  return recorder.record(
    {
      apiVersion: API_VERSION,
      kind: "AzureAssignedIdentity",
      metadata: {
        namespace: assigned.namespace,
        name: assigned.name,
        ...(assigned.uid ? { uid: assigned.uid } : {}),
      },
    },
    "Warning",
    IDENTITY_NOT_FOUND_ON_NODE,
    `IMDS on node ${o.node} answers "Identity not found" for client id ${o.clientId}, which is Assigned: ` +
      "the identity is missing from the node's VM or scale set",
  );
}
