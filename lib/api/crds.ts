// The four CustomResourceDefinitions, as data. scripts/manifests.ts renders them into deploy/crds.yaml.
// Every camelCase field is declared again under its legacy PascalCase name (casing.ts), because the
// apiserver prunes undeclared fields and users' existing YAML uses either spelling.
// No status subresource: the original has none, and its MIC writes status through the main resource.

import * as aliases from "./casing.ts";
import { GROUP, VERSION } from "./types.ts";

type Schema = {
  type?: "object" | "string" | "integer" | "array" | "boolean";
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema;
  enum?: (string | number)[];
  pattern?: string;
  format?: string;
  nullable?: boolean;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-embedded-resource"?: boolean;
};

const str = (description: string, extra: Schema = {}): Schema => ({ type: "string", description, ...extra });

/** Declares each camelCase property again under its legacy spelling. */
function withLegacy(
  props: Record<string, Schema>,
  legacyNames: Record<string, string>,
): Record<string, Schema> {
  const out: Record<string, Schema> = { ...props };
  for (const [camel, legacy] of Object.entries(legacyNames)) {
    const schema = props[camel];
    if (!schema) throw new Error(`alias ${legacy} has no declared field ${camel}`);
    out[legacy] = {
      ...schema,
      description: `Legacy spelling of ${camel} (before v1.6.0). ${schema.description ?? ""}`.trim(),
    };
  }
  return out;
}

/**
 * A spec or status object: the embedded metadata, then the fields under both spellings. The original embeds
 * ObjectMeta in every spec and status; kept so such objects are stored as written.
 */
function section(fields: Record<string, Schema>, legacyNames: Record<string, string>): Schema {
  const metadata: Schema = { type: "object", "x-kubernetes-preserve-unknown-fields": true };
  return { type: "object", properties: { metadata, ...withLegacy(fields, legacyNames) } };
}

const secretRef: Schema = {
  type: "object",
  description: "Secret holding the service principal's secret (type 1) or certificate and password (type 2).",
  properties: withLegacy(
    { name: str("Secret name."), namespace: str("Secret namespace.") },
    aliases.SECRET_REF_ALIASES,
  ),
};

const identitySpec = section(
  {
    // Types only, as the original's schema: objects v1.8.17 stored (any string, any type number) must
    // still be accepted; MIC and NMI report an unusable identity in Events instead.
    type: {
      type: "integer",
      description:
        "0: user-assigned managed identity, 1: service principal (secret), 2: service principal (certificate).",
    },
    resourceID: str("ARM id of the user-assigned identity (type 0)."),
    clientID: str("Client id of the identity or service principal."),
    clientPassword: secretRef,
    tenantID: str("Tenant of the service principal."),
    auxiliaryTenantIDs: {
      type: "array",
      nullable: true,
      items: { type: "string" },
      description: "Extra tenants for a multi-tenant service principal.",
    },
    adResourceID: str("Unused; kept for compatibility."),
    adEndpoint: str("Azure AD authority for service principals; defaults to the cloud's."),
    replicas: { type: "integer", nullable: true, description: "Unused; kept for compatibility." },
  },
  { ...aliases.IDENTITY_SPEC_ALIASES, replicas: "Replicas" },
);

const replicaStatus = section({ availableReplicas: { type: "integer" } }, {});

const bindingSpec = section(
  {
    azureIdentity: str("Name of an AzureIdentity in this namespace."),
    selector: str("Pods whose label aadpodidbinding equals this value get the identity."),
    weight: { type: "integer", description: "Unused; kept for compatibility." },
  },
  aliases.BINDING_SPEC_ALIASES,
);

/** Refs embed whole objects as the original wrote them, in whatever casing: kept verbatim. */
const embedded = (description: string): Schema => ({
  type: "object",
  description,
  "x-kubernetes-embedded-resource": true,
  "x-kubernetes-preserve-unknown-fields": true,
});

const assignedSpec = section(
  {
    azureIdentityRef: embedded("The AzureIdentity assigned, as it was when assigned."),
    azureBindingRef: embedded("The AzureIdentityBinding that matched the pod."),
    pod: str("Pod name."),
    podNamespace: str("Pod namespace."),
    nodename: str("Node the pod runs on."),
    replicas: { type: "integer", nullable: true, description: "Unused; kept for compatibility." },
  },
  { ...aliases.ASSIGNED_SPEC_ALIASES, replicas: "Replicas" },
);

const assignedStatus = section(
  {
    status: str("Created, Assigned or Unassigned.", { enum: ["", "Created", "Assigned", "Unassigned"] }),
    availableReplicas: { type: "integer" },
  },
  aliases.ASSIGNED_STATUS_ALIASES,
);

const exceptionSpec = section(
  {
    podLabels: {
      type: "object",
      additionalProperties: { type: "string" },
      description: "A pod with any one of these labels (value compared case-insensitively) is excepted.",
    },
  },
  aliases.EXCEPTION_SPEC_ALIASES,
);

interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "date";
  jsonPath: string;
  description?: string;
  priority?: number;
}

interface CustomResourceDefinition {
  apiVersion: "apiextensions.k8s.io/v1";
  kind: "CustomResourceDefinition";
  metadata: { name: string; annotations: Record<string, string> };
  spec: {
    group: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames: string[] };
    scope: "Namespaced";
    versions: {
      name: string;
      served: true;
      storage: true;
      schema: { openAPIV3Schema: Schema };
      additionalPrinterColumns: PrinterColumn[];
    }[];
  };
}

const AGE: PrinterColumn = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" };

/** What one kind's definition says beyond its names. */
interface KindSchema {
  description: string;
  properties: Record<string, Schema>;
  columns: PrinterColumn[];
}

function crd(
  kind: string,
  plural: string,
  shortNames: string[],
  { description, properties, columns }: KindSchema,
): CustomResourceDefinition {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${plural}.${GROUP}`,
      // Same annotation as the original: the group is outside *.k8s.io's approval process.
      annotations: { "api-approved.kubernetes.io": "unapproved" },
    },
    spec: {
      group: GROUP,
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase(), shortNames },
      scope: "Namespaced",
      versions: [{
        name: VERSION,
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: "object",
            description,
            properties: {
              apiVersion: { type: "string" },
              kind: { type: "string" },
              metadata: { type: "object" },
              ...properties,
            },
          },
        },
        additionalPrinterColumns: [...columns, AGE],
      }],
    },
  };
}

/** A printer column over a string field unless `extra` says otherwise. */
const column = (name: string, jsonPath: string, extra: Partial<PrinterColumn> = {}): PrinterColumn => ({
  name,
  type: "string",
  jsonPath,
  ...extra,
});

const exceptionStatus: Schema = {
  type: "object",
  properties: { metadata: { type: "object" }, status: { type: "string" } },
};

export const CRDS: CustomResourceDefinition[] = [
  crd("AzureIdentity", "azureidentities", ["azid"], {
    description:
      "An Azure identity (user-assigned managed identity or service principal) pods can be bound to.",
    properties: { spec: identitySpec, status: replicaStatus },
    columns: [
      column("Type", ".spec.type", { type: "integer" }),
      column("ClientID", ".spec.clientID"),
      column("ResourceID", ".spec.resourceID", { priority: 1 }),
    ],
  }),
  crd("AzureIdentityBinding", "azureidentitybindings", ["azidb"], {
    description: "Binds an AzureIdentity to the pods labelled aadpodidbinding=<selector>.",
    properties: { spec: bindingSpec, status: replicaStatus },
    columns: [column("AzureIdentity", ".spec.azureIdentity"), column("Selector", ".spec.selector")],
  }),
  crd("AzureAssignedIdentity", "azureassignedidentities", ["azaid"], {
    description: "Written by MIC: an identity assigned to one pod on one node.",
    properties: { spec: assignedSpec, status: assignedStatus },
    columns: [
      column("Pod", ".spec.pod"),
      column("PodNamespace", ".spec.podNamespace"),
      column("Node", ".spec.nodename"),
      column("Status", ".status.status"),
    ],
  }),
  crd("AzurePodIdentityException", "azurepodidentityexceptions", ["azpie"], {
    description:
      "Pods matching these labels in this namespace bypass pod identity and use the node's identity.",
    properties: { spec: exceptionSpec, status: exceptionStatus },
    columns: [],
  }),
];
