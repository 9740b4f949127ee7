// Which identity a token request gets (pure): the pod, what it asked for, and what the caches hold go in; an
// identity, the node's identity, "wait", or a domain refusal with its reason come out (nmi/server.ts maps
// refusals to statuses). Rules (docs/upstream.md "NMI routes and status codes", docs/protocols.md "IMDS token
// protocol"), with the original's bugs fixed:
// - Exceptions (every one of an exception's labels matches) and MIC's own pods get the node's identity
//   (through IMDS, unchecked), as the original. MIC's pods are recognised by the service account the
//   manifests create for MIC in MIC's namespace: only who can run pods as that account (MIC's RBAC) can
//   pose as MIC, not any pod with the label app=mic or an owner named mic-* (the original's rule).
// - A pod no binding selects is refused at once (400), so credential chains move on instead of hanging.
// - Asking for an identity (client_id / msi_res_id / object_id, compared case-insensitively) the pod is not
//   granted is forbidden (403), whoever else on the node holds it. An object_id matches only an identity
//   whose principal id is already known (the token flow learns them before selecting).
// - Standard mode serves an identity only while BOTH a binding grants it now AND its AzureAssignedIdentity
//   for this pod on this node is Assigned: deleting either stops tokens on the very next request. A grant
//   whose assignment is not Assigned yet means "wait".
// - Several identities and none named: the choice is deterministic, never "whatever order the cache had":
//   highest binding `weight` first, then identity namespace, then identity name (then binding name). The
//   pod waits for that identity if it is not assigned yet, rather than taking whichever was assigned first.

import { compareStrings } from "../lib/compare.ts";
import {
  type Grant,
  identityMatchesRequest,
  type IdentityRequest,
  isPodExcepted,
  isSpecificRequest,
  sameId,
} from "../lib/api/matching.ts";
import type { AzureAssignedIdentity, AzureIdentity, AzurePodIdentityException } from "../lib/api/types.ts";
import { type Refusal, refusal } from "./refusal.ts";

export interface CallerPod {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  /** MIC's pods run as MIC's service account; federated mode: the TokenRequest's subject. */
  serviceAccountName?: string;
  /** Federated mode: what a TokenRequest bound to the pod needs. */
  uid?: string;
  nodeName?: string;
}

export interface SelectInput {
  mode: "standard" | "managed";
  node: string;
  micNamespace: string;
  /** The service account MIC's pods run as (in micNamespace). */
  micServiceAccount: string;
  pod: CallerPod;
  request: IdentityRequest;
  /** Exceptions in the pod's namespace. */
  exceptions: readonly AzurePodIdentityException[];
  /** What the bindings grant the pod now (lib/api grantsForPod, namespaced rules applied). */
  grants: readonly Grant[];
  /** Standard mode: this pod's AzureAssignedIdentities on this node. */
  assigned: readonly AzureAssignedIdentity[];
  /** Principal (object) id of an identity when known (learned from tokens); for object_id requests. */
  principalIdOf?: (identity: AzureIdentity) => string | undefined;
}

export type Selection =
  | { kind: "node"; reason: "exception" | "mic" }
  /** `assigned`: the Assigned AzureAssignedIdentity that lets the pod use it (standard mode). */
  | { kind: "identity"; identity: AzureIdentity; grant: Grant; assigned?: AzureAssignedIdentity }
  | { kind: "wait"; identity: AzureIdentity; reason: string }
  | { kind: "refuse"; refusal: Refusal };

export function identityKey(identity: AzureIdentity): string {
  return `${identity.metadata.namespace}/${identity.metadata.name}`;
}

function describeRequest(req: IdentityRequest): string {
  if (req.clientId) return `client_id ${req.clientId}`;
  if (req.resourceId) return `msi_res_id ${req.resourceId}`;
  if (req.objectId) return `object_id ${req.objectId}`;
  return "no identity";
}

/** The deterministic order among several grants (see the file comment). */
function compareGrants(a: Grant, b: Grant): number {
  return (b.binding.spec.weight ?? 0) - (a.binding.spec.weight ?? 0) ||
    compareStrings(a.identity.metadata.namespace, b.identity.metadata.namespace) ||
    compareStrings(a.identity.metadata.name, b.identity.metadata.name) ||
    compareStrings(a.binding.metadata.namespace, b.binding.metadata.namespace) ||
    compareStrings(a.binding.metadata.name, b.binding.metadata.name);
}

/** MIC's own pods: in MIC's namespace and running as MIC's service account. */
function isMicPod(pod: CallerPod, micNamespace: string, micServiceAccount: string): boolean {
  return pod.namespace === micNamespace && !!micServiceAccount &&
    pod.serviceAccountName === micServiceAccount;
}

/** An AzureAssignedIdentity that lets `pod` use `identity` on `node` now. */
function assignmentServes(
  aai: AzureAssignedIdentity,
  identity: AzureIdentity,
  pod: CallerPod,
  node: string,
): boolean {
  if (aai.spec.pod !== pod.name || aai.spec.podNamespace !== pod.namespace) return false;
  if (aai.spec.nodeName && aai.spec.nodeName !== node) return false;
  const ref = aai.spec.azureIdentityRef;
  if (
    ref.metadata.name !== identity.metadata.name || ref.metadata.namespace !== identity.metadata.namespace
  ) {
    return false;
  }
  // An identity edited after assignment (new client id) is a different identity until MIC reassigns it.
  if (!sameId(ref.spec.clientID, identity.spec.clientID)) return false;
  if (identity.spec.resourceID && !sameId(ref.spec.resourceID, identity.spec.resourceID)) return false;
  return true;
}

const isAssigned = (aai: AzureAssignedIdentity) =>
  aai.status.status === "Assigned" || aai.status.status === "";

export function selectIdentity(input: SelectInput): Selection {
  const { pod, request } = input;
  if (isPodExcepted(pod.labels, input.exceptions)) return { kind: "node", reason: "exception" };
  if (isMicPod(pod, input.micNamespace, input.micServiceAccount)) return { kind: "node", reason: "mic" };

  const podName = `${pod.namespace}/${pod.name}`;
  if (input.grants.length === 0) {
    return {
      kind: "refuse",
      refusal: refusal("invalid", `Identity not found: no AzureIdentityBinding selects pod ${podName}`),
    };
  }

  let candidates = [...input.grants].sort(compareGrants);
  if (isSpecificRequest(request)) {
    candidates = candidates.filter((g) =>
      identityMatchesRequest(g.identity, request, input.principalIdOf?.(g.identity))
    );
    if (candidates.length === 0) {
      return {
        kind: "refuse",
        refusal: refusal(
          "forbidden",
          `Identity not found: ${describeRequest(request)} is not bound to pod ${podName}`,
        ),
      };
    }
  }

  const chosen = candidates[0];
  if (input.mode === "managed") return { kind: "identity", identity: chosen.identity, grant: chosen };
  const aai = input.assigned.find((a) => assignmentServes(a, chosen.identity, pod, input.node));
  if (aai && isAssigned(aai)) {
    return { kind: "identity", identity: chosen.identity, grant: chosen, assigned: aai };
  }
  return {
    kind: "wait",
    identity: chosen.identity,
    reason: aai
      ? `identity ${
        identityKey(chosen.identity)
      } for pod ${podName} is ${aai.status.status}, not Assigned yet`
      : `no AzureAssignedIdentity yet for pod ${podName} and identity ${identityKey(chosen.identity)}`,
  };
}
