// One step from wire JSON (either field casing, see casing.ts) to the internal shape in types.ts.
// When both spellings of a field are present, camelCase wins: the original's Go decoder prefers the exact
// match of its camelCase tag, so this reads such an object the way the original did.
// Malformed input raises InvalidObjectError naming the object and the field; nothing is half-read.

import {
  ASSIGNED_SPEC_ALIASES,
  ASSIGNED_STATUS_ALIASES,
  BINDING_SPEC_ALIASES,
  EXCEPTION_SPEC_ALIASES,
  IDENTITY_SPEC_ALIASES,
  SECRET_REF_ALIASES,
} from "./casing.ts";
import {
  AadPodIdentityObject,
  API_VERSION,
  AssignedIdentityState,
  AzureAssignedIdentity,
  AzureIdentity,
  AzureIdentityBinding,
  AzurePodIdentityException,
  EmbeddedObjectMeta,
  IdentityType,
  Kind,
  ObjectMeta,
  OwnerReference,
  ReplicaStatus,
  SecretReference,
} from "./types.ts";

export class InvalidObjectError extends Error {
  constructor(readonly object: string, readonly field: string, readonly detail: string) {
    super(`${object}: ${field} ${detail}`);
    this.name = "InvalidObjectError";
  }
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : `${typeof v} ${JSON.stringify(v)}`;
}

/** Reads fields of one JSON object, reporting errors with the object's name and the field's path. */
class Reader {
  constructor(readonly obj: Json, readonly path: string, readonly owner: string) {}

  static of(v: unknown, path: string, owner: string): Reader {
    if (v === undefined || v === null) return new Reader({}, path, owner);
    if (!isObject(v)) throw new InvalidObjectError(owner, path, `must be an object (got ${describe(v)})`);
    return new Reader(v, path, owner);
  }

  /** The value under `camel`, else under its legacy spelling; with the spelling that was used. */
  raw(camel: string, legacy?: string): { value: unknown; field: string } {
    if (this.obj[camel] !== undefined && this.obj[camel] !== null) {
      return { value: this.obj[camel], field: this.field(camel) };
    }
    if (legacy !== undefined && this.obj[legacy] !== undefined && this.obj[legacy] !== null) {
      return { value: this.obj[legacy], field: this.field(legacy) };
    }
    return { value: undefined, field: this.field(camel) };
  }

  field(name: string): string {
    return this.path ? `${this.path}.${name}` : name;
  }

  fail(field: string, detail: string): never {
    throw new InvalidObjectError(this.owner, field, detail);
  }

  string(camel: string, legacy?: string): string {
    const { value, field } = this.raw(camel, legacy);
    if (value === undefined) return "";
    if (typeof value !== "string") this.fail(field, `must be a string (got ${describe(value)})`);
    return value;
  }

  integer(camel: string, legacy?: string): number | undefined {
    const { value, field } = this.raw(camel, legacy);
    if (value === undefined) return undefined;
    if (typeof value !== "number" || !Number.isInteger(value)) {
      this.fail(field, `must be an integer (got ${describe(value)})`);
    }
    return value;
  }

  boolean(camel: string): boolean | undefined {
    const { value, field } = this.raw(camel);
    if (value === undefined) return undefined;
    if (typeof value !== "boolean") this.fail(field, `must be true or false (got ${describe(value)})`);
    return value;
  }

  /** Whether the field is there at all (null counts as absent, as in Go's decoding of a pointer). */
  has(camel: string, legacy?: string): boolean {
    return this.raw(camel, legacy).value !== undefined;
  }

  /** The readers of each element of a list of objects; [] when absent. */
  objects(camel: string): Reader[] {
    const { value, field } = this.raw(camel);
    if (value === undefined) return [];
    if (!Array.isArray(value)) this.fail(field, `must be a list (got ${describe(value)})`);
    return value.map((v, i) => Reader.of(v, `${field}[${i}]`, this.owner));
  }

  stringArray(camel: string, legacy?: string): string[] {
    const { value, field } = this.raw(camel, legacy);
    if (value === undefined) return [];
    if (!Array.isArray(value) || value.some((x) => typeof x !== "string")) {
      this.fail(field, `must be a list of strings (got ${describe(value)})`);
    }
    return [...value];
  }

  stringMap(camel: string, legacy?: string): Record<string, string> {
    const { value, field } = this.raw(camel, legacy);
    if (value === undefined) return {};
    if (!isObject(value)) this.fail(field, `must be a map of strings (got ${describe(value)})`);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(value)) {
      if (typeof v !== "string") this.fail(`${field}.${k}`, `must be a string (got ${describe(v)})`);
      out[k] = v;
    }
    return out;
  }

  child(camel: string, legacy?: string): Reader {
    const { value, field } = this.raw(camel, legacy);
    return Reader.of(value, field, this.owner);
  }
}

function ownerName(kind: string, raw: Json): string {
  const meta = isObject(raw.metadata) ? raw.metadata : {};
  const ns = typeof meta.namespace === "string" ? meta.namespace : "";
  const name = typeof meta.name === "string" ? meta.name : "<unnamed>";
  return `${kind} ${ns ? `${ns}/` : ""}${name}`;
}

function readMetadata(r: Reader): ObjectMeta {
  const m = r.child("metadata");
  const meta: ObjectMeta = {
    name: m.string("name"),
    namespace: m.string("namespace"),
    labels: m.stringMap("labels"),
    annotations: m.stringMap("annotations"),
    finalizers: m.stringArray("finalizers"),
  };
  const optional = [
    "generateName",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
  ] as const;
  for (const key of optional) {
    const v = m.string(key);
    if (v) meta[key] = v;
  }
  const generation = m.integer("generation");
  if (generation !== undefined) meta.generation = generation;
  const grace = m.integer("deletionGracePeriodSeconds");
  if (grace !== undefined) meta.deletionGracePeriodSeconds = grace;
  const owners = m.objects("ownerReferences").map(readOwnerReference);
  if (owners.length) meta.ownerReferences = owners;
  return meta;
}

function readOwnerReference(o: Reader): OwnerReference {
  const ref: OwnerReference = {
    apiVersion: o.string("apiVersion"),
    kind: o.string("kind"),
    name: o.string("name"),
    uid: o.string("uid"),
  };
  const controller = o.boolean("controller");
  if (controller !== undefined) ref.controller = controller;
  const block = o.boolean("blockOwnerDeletion");
  if (block !== undefined) ref.blockOwnerDeletion = block;
  return ref;
}

/** `status.availableReplicas` of identities and bindings, present only when the object has a status. */
function readReplicaStatus(r: Reader): { status?: ReplicaStatus } {
  if (!r.has("status")) return {};
  const st = r.child("status");
  return { status: { availableReplicas: st.integer("availableReplicas") ?? 0, ...readEmbeddedMeta(st) } };
}

/** The unused ObjectMeta the original embeds in specs and statuses, kept verbatim when there. */
function readEmbeddedMeta(r: Reader): { metadata?: EmbeddedObjectMeta } {
  const { value, field } = r.raw("metadata");
  if (value === undefined) return {};
  if (!isObject(value)) r.fail(field, `must be an object (got ${describe(value)})`);
  return { metadata: structuredClone(value) };
}

/** The original's unused `replicas *int32`: absent and null stay absent, 0 is kept. */
function readReplicas(spec: Reader): { replicas?: number } {
  const replicas = spec.integer("replicas", "Replicas");
  return replicas === undefined ? {} : { replicas };
}

/** Checks kind/apiVersion when present; embedded refs written by the original may omit them. */
function start(raw: unknown, kind: Kind, requireTypeMeta: boolean): Reader {
  if (!isObject(raw)) {
    throw new InvalidObjectError(kind, "object", `must be a JSON object (got ${describe(raw)})`);
  }
  const owner = ownerName(kind, raw);
  const r = new Reader(raw, "", owner);
  const gotKind = r.string("kind");
  const gotVersion = r.string("apiVersion");
  if (requireTypeMeta || gotKind) {
    if (gotKind !== kind) r.fail("kind", `must be ${kind} (got ${describe(raw.kind)})`);
  }
  if (requireTypeMeta || gotVersion) {
    if (gotVersion !== API_VERSION) {
      r.fail("apiVersion", `must be ${API_VERSION} (got ${describe(raw.apiVersion)})`);
    }
  }
  return r;
}

function readSecretRef(r: Reader): SecretReference | undefined {
  const a = SECRET_REF_ALIASES;
  const name = r.string("name", a.name);
  const namespace = r.string("namespace", a.namespace);
  return name || namespace ? { name, namespace } : undefined;
}

function isIdentityType(n: number): n is IdentityType {
  return (Object.values(IdentityType) as number[]).includes(n);
}

function readIdentity(raw: unknown, requireTypeMeta: boolean): AzureIdentity {
  const r = start(raw, "AzureIdentity", requireTypeMeta);
  const s = r.child("spec");
  const a = IDENTITY_SPEC_ALIASES;
  const type = s.integer("type", a.type) ?? IdentityType.UserAssignedMSI;
  if (!isIdentityType(type)) {
    return s.fail(
      s.raw("type", a.type).field,
      `must be 0 (user-assigned MSI), 1 (service principal) or 2 (certificate); got ${type}`,
    );
  }
  const clientPassword = readSecretRef(s.child("clientPassword", a.clientPassword));
  return {
    apiVersion: API_VERSION,
    kind: "AzureIdentity",
    metadata: readMetadata(r),
    spec: {
      type,
      resourceID: s.string("resourceID", a.resourceID),
      clientID: s.string("clientID", a.clientID),
      ...(clientPassword ? { clientPassword } : {}),
      tenantID: s.string("tenantID", a.tenantID),
      auxiliaryTenantIDs: s.stringArray("auxiliaryTenantIDs", a.auxiliaryTenantIDs),
      adResourceID: s.string("adResourceID", a.adResourceID),
      adEndpoint: s.string("adEndpoint", a.adEndpoint),
      ...readReplicas(s),
      ...readEmbeddedMeta(s),
    },
    ...readReplicaStatus(r),
  };
}

function readBinding(raw: unknown, requireTypeMeta: boolean): AzureIdentityBinding {
  const r = start(raw, "AzureIdentityBinding", requireTypeMeta);
  const s = r.child("spec");
  const a = BINDING_SPEC_ALIASES;
  return {
    apiVersion: API_VERSION,
    kind: "AzureIdentityBinding",
    metadata: readMetadata(r),
    spec: {
      azureIdentity: s.string("azureIdentity", a.azureIdentity),
      selector: s.string("selector", a.selector),
      weight: s.integer("weight", a.weight) ?? 0,
      ...readEmbeddedMeta(s),
    },
    ...readReplicaStatus(r),
  };
}

export function normalizeAzureIdentity(raw: unknown): AzureIdentity {
  return readIdentity(raw, true);
}

export function normalizeAzureIdentityBinding(raw: unknown): AzureIdentityBinding {
  return readBinding(raw, true);
}

const STATES: readonly string[] = ["", ...Object.values(AssignedIdentityState)];

export function normalizeAzureAssignedIdentity(raw: unknown): AzureAssignedIdentity {
  const r = start(raw, "AzureAssignedIdentity", true);
  const s = r.child("spec");
  const a = ASSIGNED_SPEC_ALIASES;
  const st = r.child("status", "Status");
  const sa = ASSIGNED_STATUS_ALIASES;
  const state = st.string("status", sa.status);
  if (!STATES.includes(state)) {
    st.fail(
      st.raw("status", sa.status).field,
      `must be one of Created, Assigned, Unassigned (got "${state}")`,
    );
  }
  const ref = (camel: string, legacy: string) => s.raw(camel, legacy).value ?? {};
  return {
    apiVersion: API_VERSION,
    kind: "AzureAssignedIdentity",
    metadata: readMetadata(r),
    spec: {
      azureIdentityRef: withRefContext(
        r.obj,
        "spec.azureIdentityRef",
        () => readIdentity(ref("azureIdentityRef", a.azureIdentityRef), false),
      ),
      azureBindingRef: withRefContext(
        r.obj,
        "spec.azureBindingRef",
        () => readBinding(ref("azureBindingRef", a.azureBindingRef), false),
      ),
      pod: s.string("pod", a.pod),
      podNamespace: s.string("podNamespace", a.podNamespace),
      nodeName: s.string("nodename", a.nodename),
      ...readReplicas(s),
      ...readEmbeddedMeta(s),
    },
    status: {
      status: state as AssignedIdentityState,
      availableReplicas: st.integer("availableReplicas", sa.availableReplicas) ?? 0,
      ...readEmbeddedMeta(st),
    },
  };
}

/** Reports an error inside an embedded ref against the assigned identity that holds it. */
function withRefContext<T>(holder: Json, path: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof InvalidObjectError) {
      throw new InvalidObjectError(
        ownerName("AzureAssignedIdentity", holder),
        `${path}.${e.field}`,
        e.detail,
      );
    }
    throw e;
  }
}

export function normalizeAzurePodIdentityException(raw: unknown): AzurePodIdentityException {
  const r = start(raw, "AzurePodIdentityException", true);
  const s = r.child("spec");
  return {
    apiVersion: API_VERSION,
    kind: "AzurePodIdentityException",
    metadata: readMetadata(r),
    spec: { podLabels: s.stringMap("podLabels", EXCEPTION_SPEC_ALIASES.podLabels), ...readEmbeddedMeta(s) },
    ...(r.has("status")
      ? { status: { status: r.child("status").string("status"), ...readEmbeddedMeta(r.child("status")) } }
      : {}),
  };
}

const NORMALIZERS: Record<AadPodIdentityObject["kind"], (raw: unknown) => AadPodIdentityObject> = {
  AzureIdentity: normalizeAzureIdentity,
  AzureIdentityBinding: normalizeAzureIdentityBinding,
  AzureAssignedIdentity: normalizeAzureAssignedIdentity,
  AzurePodIdentityException: normalizeAzurePodIdentityException,
};

/** Normalises any of the four kinds, dispatching on `kind`. */
export function normalize(raw: unknown): AadPodIdentityObject {
  const kind = isObject(raw) ? raw.kind : undefined;
  if (typeof kind === "string" && Object.hasOwn(NORMALIZERS, kind)) {
    return NORMALIZERS[kind as AadPodIdentityObject["kind"]](raw);
  }
  throw new InvalidObjectError("object", "kind", `is not an ${API_VERSION} kind (got ${describe(kind)})`);
}
