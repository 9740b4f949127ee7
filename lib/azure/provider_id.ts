// Which ARM resource carries a node's identities, from the node's `spec.providerID`. Uniform scale-set
// instances share their scale set's identities (identity can only be set on the scale set; see
// docs/protocols.md, "## ARM identity assignment"); standalone VMs and Flexible scale-set instances (plain VM resources) are patched as VMs.

type ComputeKind = "vm" | "vmss";

export interface ComputeTarget {
  kind: ComputeKind;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  /** The VM or scale set's ARM id as the provider spelled it. */
  resourceId: string;
  /** Lower-cased resourceId: one key per VM / scale set however it was spelled. */
  key: string;
}

const VMSS_INSTANCE =
  /^azure:\/\/\/?subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/virtualMachineScaleSets\/([^/]+)\/virtualMachines\/[^/]+$/i;
const VM =
  /^azure:\/\/\/?subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/virtualMachines\/([^/]+)$/i;

function target(kind: ComputeKind, sub: string, rg: string, name: string): ComputeTarget {
  const type = kind === "vm" ? "virtualMachines" : "virtualMachineScaleSets";
  const resourceId = `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Compute/${type}/${name}`;
  return { kind, subscriptionId: sub, resourceGroup: rg, name, resourceId, key: resourceId.toLowerCase() };
}

/** The VM or scale set behind a providerID, or undefined for anything else (not an Azure node, malformed). */
export function parseProviderId(providerId: string | undefined): ComputeTarget | undefined {
  if (!providerId) return undefined;
  const id = providerId.trim();
  const ss = VMSS_INSTANCE.exec(id);
  if (ss) return target("vmss", ss[1], ss[2], ss[3]);
  const vm = VM.exec(id);
  if (vm) return target("vm", vm[1], vm[2], vm[3]);
  return undefined;
}
