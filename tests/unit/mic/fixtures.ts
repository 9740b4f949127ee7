// Builders for planner tests: objects go through lib/api's normaliser, as MIC's informers deliver them.

import {
  normalizeAzureAssignedIdentity,
  normalizeAzureIdentity,
  normalizeAzureIdentityBinding,
} from "../../../lib/api/normalize.ts";
import type { AzureAssignedIdentity, AzureIdentity, AzureIdentityBinding } from "../../../lib/api/types.ts";
import { toWire } from "../../../lib/api/wire.ts";
import { parseProviderId } from "../../../lib/azure/provider_id.ts";
import { KubeClient } from "../../../lib/kube/rest.ts";
import type { BoundPod, ObservedState } from "../../../mic/plan_types.ts";

const API = "aadpodidentity.k8s.io/v1";

export const rid = (name: string) =>
  `/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;

export function identity(
  ns: string,
  name: string,
  extra: { type?: number; resourceID?: string; clientID?: string; annotations?: Record<string, string> } = {},
): AzureIdentity {
  return normalizeAzureIdentity({
    apiVersion: API,
    kind: "AzureIdentity",
    metadata: { name, namespace: ns, uid: `uid-${ns}-${name}`, annotations: extra.annotations ?? {} },
    spec: {
      type: extra.type ?? 0,
      resourceID: extra.resourceID ?? (extra.type ? "" : rid(name)),
      clientID: extra.clientID ?? `client-${name}`,
    },
  });
}

export function binding(ns: string, name: string, idName: string, selector: string): AzureIdentityBinding {
  return normalizeAzureIdentityBinding({
    apiVersion: API,
    kind: "AzureIdentityBinding",
    metadata: { name, namespace: ns, uid: `uid-b-${ns}-${name}` },
    spec: { azureIdentity: idName, selector },
  });
}

export const pod = (ns: string, name: string, node: string, selector: string): BoundPod => ({
  name,
  namespace: ns,
  nodeName: node,
  labels: { aadpodidbinding: selector },
});

const vmssNode = (ss: string, i: number) =>
  parseProviderId(
    `azure:///subscriptions/sub1/resourceGroups/mc_rg/providers/Microsoft.Compute/virtualMachineScaleSets/${ss}/virtualMachines/${i}`,
  );
const vmNode = (vm: string) =>
  parseProviderId(
    `azure:///subscriptions/sub1/resourceGroups/mc_rg/providers/Microsoft.Compute/virtualMachines/${vm}`,
  );

export function state(partial: Partial<ObservedState>): ObservedState {
  return {
    pods: [],
    nodes: new Map([["n1", vmssNode("ss1", 0)], ["n2", vmssNode("ss1", 1)], ["n3", vmssNode("ss2", 0)], [
      "vm1",
      vmNode("vm1"),
    ]]),
    identities: [],
    bindings: [],
    assigned: [],
    ...partial,
  };
}

/** The object as the apiserver returns it after a write: wire JSON read back, status set. */
export function stored(
  a: AzureAssignedIdentity,
  status: "Created" | "Assigned" | "Unassigned" | "" = "Assigned",
) {
  const wire = toWire(a) as { metadata: Record<string, unknown>; status: Record<string, unknown> };
  wire.metadata.resourceVersion = "7";
  wire.metadata.uid = `uid-aai-${a.metadata.name}`;
  wire.status = { status, availableReplicas: 1 };
  return normalizeAzureAssignedIdentity(wire);
}

/** A client for caches filled by hand: nothing listens at its address. */
export function offlineClient(): KubeClient {
  return new KubeClient({
    server: "http://127.0.0.1:9",
    client: Deno.createHttpClient({}),
    authHeader: () => Promise.resolve(undefined),
    source: "unit test",
    close() {},
  });
}
