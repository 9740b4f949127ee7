// IMDS request rules (pure): token query parsing, choosing the identity a request names, api-versions,
// and the instance-metadata document and its path lookup (docs/protocols.md, "## IMDS token protocol" and
// "## Other IMDS paths").

interface ImdsErrorBody {
  error: string;
  error_description?: string;
  "newest-versions"?: string[];
}

export interface ImdsError {
  status: number;
  body: ImdsErrorBody;
}

export const IMDS_API_VERSIONS = [
  "2017-03-01",
  "2017-04-02",
  "2017-08-01",
  "2017-10-01",
  "2017-12-01",
  "2018-02-01",
  "2018-04-02",
  "2018-10-01",
  "2019-02-01",
  "2019-03-11",
  "2019-04-30",
  "2019-06-01",
  "2019-06-04",
  "2019-08-01",
  "2019-08-15",
  "2019-11-01",
  "2020-06-01",
  "2020-07-15",
  "2020-09-01",
  "2020-10-01",
  "2020-12-01",
  "2021-01-01",
  "2021-02-01",
  "2021-03-01",
  "2021-05-01",
  "2021-10-01",
  "2021-11-01",
  "2021-11-15",
  "2021-12-13",
  "2023-07-01",
  "2023-11-15",
  "2024-03-15",
  "2024-07-17",
  "2025-04-07",
];

/** The identity category exists from 2018-02-01. */
const IMDS_IDENTITY_API_VERSIONS = IMDS_API_VERSIONS.filter((v) => v >= "2018-02-01");

export const NEWEST_VERSIONS = IMDS_API_VERSIONS.slice(-3).reverse();

const invalid = (description: string): ImdsError => ({
  status: 400,
  body: { error: "invalid_request", error_description: description },
});

const IDENTITY_NOT_FOUND = invalid("Identity not found");
const MULTIPLE_IDENTITIES = invalid(
  "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request",
);
export const METADATA_HEADER_MISSING = invalid("Required metadata header not specified");

type IdentitySelector =
  | { by: "default" }
  | { by: "client_id" | "object_id" | "msi_res_id"; value: string };

interface TokenQuery {
  apiVersion: string;
  resource: string;
  selector: IdentitySelector;
}

const SELECTOR_PARAMS = ["client_id", "object_id", "msi_res_id", "mi_res_id"] as const;

export function parseTokenQuery(
  params: URLSearchParams,
): { ok: true; value: TokenQuery } | { ok: false; error: ImdsError } {
  const seen = new Set<string>();
  for (const k of params.keys()) {
    if (seen.has(k)) return { ok: false, error: invalid(`Duplicate query parameter '${k}' is not allowed`) };
    seen.add(k);
  }
  const apiVersion = params.get("api-version");
  if (!apiVersion) return { ok: false, error: invalid("Required query variable 'api-version' is missing") };
  if (!IMDS_IDENTITY_API_VERSIONS.includes(apiVersion)) {
    return { ok: false, error: invalid(`Invalid value for api-version '${apiVersion}'`) };
  }
  const resource = params.get("resource");
  if (!resource) return { ok: false, error: invalid("Required query variable 'resource' is missing") };
  const given = SELECTOR_PARAMS.filter((p) => params.has(p));
  if (given.length > 1) {
    return {
      ok: false,
      error: invalid(
        `Only one of client_id, object_id or msi_res_id may be specified; got ${given.join(", ")}`,
      ),
    };
  }
  if (given.length === 0) return { ok: true, value: { apiVersion, resource, selector: { by: "default" } } };
  const name = given[0];
  const by = name === "mi_res_id" ? "msi_res_id" : name;
  return { ok: true, value: { apiVersion, resource, selector: { by, value: params.get(name)! } } };
}

interface ServableIdentity {
  clientId: string;
  principalId: string;
  /** The identity resource (user-assigned) or the VM / scale set (system-assigned). */
  resourceId: string;
  system: boolean;
}

export interface AttachedIdentities {
  system?: ServableIdentity;
  user: ServableIdentity[];
}

/** Picks the identity a token request names, with IMDS's answer when it names none or several exist. */
export function selectIdentity(
  selector: IdentitySelector,
  attached: AttachedIdentities,
): { ok: true; value: ServableIdentity } | { ok: false; error: ImdsError } {
  const all = attached.system ? [attached.system, ...attached.user] : attached.user;
  const eq = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  let found: ServableIdentity | undefined;
  switch (selector.by) {
    case "default":
      if (attached.system) found = attached.system;
      else if (attached.user.length === 1) found = attached.user[0];
      else if (attached.user.length > 1) return { ok: false, error: MULTIPLE_IDENTITIES };
      break;
    case "client_id":
      found = all.find((i) => eq(i.clientId, selector.value));
      break;
    case "object_id":
      found = all.find((i) => eq(i.principalId, selector.value));
      break;
    case "msi_res_id":
      found = attached.user.find((i) =>
        eq(i.resourceId.replace(/\/+$/, ""), selector.value.replace(/\/+$/, ""))
      );
      break;
  }
  return found ? { ok: true, value: found } : { ok: false, error: IDENTITY_NOT_FOUND };
}

export interface InstanceDescription {
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  /** VM name, or `<scaleSet>_<instance>` for a scale-set instance. */
  name: string;
  /** VM id, or `<scaleSetId>/virtualMachines/<instance>`. */
  resourceId: string;
  vmId: string;
  vmScaleSetName: string;
  privateIpAddress: string;
  macAddress: string;
}

type MetadataNode = string | MetadataNode[] | { [k: string]: MetadataNode };

/** The `/metadata/instance` document; IMDS renders every primitive as a string and missing ones as "". */
export function instanceDocument(d: InstanceDescription): MetadataNode {
  return {
    compute: {
      azEnvironment: "AzurePublicCloud",
      isHostCompatibilityLayerVm: "false",
      location: d.location,
      name: d.name,
      offer: "",
      osType: "Linux",
      placementGroupId: "",
      platformFaultDomain: "0",
      platformUpdateDomain: "0",
      provider: "Microsoft.Compute",
      publisher: "",
      resourceGroupName: d.resourceGroup,
      resourceId: d.resourceId,
      sku: "",
      subscriptionId: d.subscriptionId,
      tags: "",
      tagsList: [],
      version: "",
      vmId: d.vmId,
      vmScaleSetName: d.vmScaleSetName,
      vmSize: "Standard_D2s_v3",
      zone: "",
    },
    network: {
      interface: [
        {
          ipv4: {
            ipAddress: [{ privateIpAddress: d.privateIpAddress, publicIpAddress: "" }],
            subnet: [{ address: d.privateIpAddress.replace(/\.\d+$/, ".0"), prefix: "24" }],
          },
          ipv6: { ipAddress: [] },
          macAddress: d.macAddress,
        },
      ],
    },
  };
}

/** Walks `/metadata/instance/<a>/<b>/<index>`; undefined when the element does not exist. */
export function lookupMetadata(doc: MetadataNode, segments: string[]): MetadataNode | undefined {
  let node: MetadataNode | undefined = doc;
  for (const seg of segments) {
    if (node === undefined || typeof node === "string") return undefined;
    if (Array.isArray(node)) {
      node = /^\d+$/.test(seg) ? node[Number(seg)] : undefined;
    } else {
      node = Object.hasOwn(node, seg) ? node[seg] : undefined;
    }
  }
  return node;
}
