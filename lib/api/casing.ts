// Field names of the wire format, camelCase -> the PascalCase spelling users wrote before v1.6.0 (Go's JSON
// decoding was case-insensitive then, and the original README shows PascalCase). One table serves both the
// normaliser, which reads either spelling, and the CRD schemas, which must declare both so the apiserver's
// pruning keeps what users wrote.

export const IDENTITY_SPEC_ALIASES = {
  type: "Type",
  resourceID: "ResourceID",
  clientID: "ClientID",
  clientPassword: "ClientPassword",
  tenantID: "TenantID",
  auxiliaryTenantIDs: "AuxiliaryTenantIDs",
  adResourceID: "ADResourceID",
  adEndpoint: "ADEndpoint",
} as const;

export const BINDING_SPEC_ALIASES = {
  azureIdentity: "AzureIdentity",
  selector: "Selector",
  weight: "Weight",
} as const;

/** `nodename` (all lower case) is the original's own JSON tag for the assigned identity's node. */
export const ASSIGNED_SPEC_ALIASES = {
  azureIdentityRef: "AzureIdentityRef",
  azureBindingRef: "AzureBindingRef",
  pod: "Pod",
  podNamespace: "PodNamespace",
  nodename: "NodeName",
} as const;

export const ASSIGNED_STATUS_ALIASES = {
  status: "Status",
  availableReplicas: "AvailableReplicas",
} as const;

export const EXCEPTION_SPEC_ALIASES = {
  podLabels: "PodLabels",
} as const;

/** The docs of the original show `clientPassword: {"Name": ..., "Namespace": ...}` for certificates. */
export const SECRET_REF_ALIASES = {
  name: "Name",
  namespace: "Namespace",
} as const;
