// Protobuf decoders for the built-in kinds the services cache (pods, nodes, leases), each producing a slim
// projection: the metadata MIC and NMI read (pods and nodes: name, namespace, uid, resourceVersion, labels
// and the deletion fields; leases, which are written back: the whole ObjectMeta minus selfLink and
// managedFields) and the spec/status fields they read. The matching `project*` functions cut a
// JSON-decoded object to exactly the same shape, so a cache filled from either wire format holds equal
// objects. Field numbers: k8s.io/api v0.34 core/v1 and coordination/v1 generated.proto.
//
// Slim pod:  identity metadata, spec{nodeName, serviceAccountName, hostNetwork},
//            status{phase, hostIP, podIP, podIPs}
// Slim node: identity metadata, spec{providerID, unschedulable, taints}
// Lease:     whole metadata, spec (every field: the lease spec is small)
// A reader that needs more sets the informer's `encoding: "json"` and gets whole objects.

import { type Pod, type PodPhase } from "./core.ts";
import {
  type FieldTable,
  type MetaFields,
  nonEmpty,
  ProtoReader,
  readFields,
  readListMeta,
  readMicroTime,
  readObjectMeta,
  readTime,
} from "./protobuf.ts";
import type { ResourceType } from "./resource.ts";
import type { KubeList, KubeObject, ObjectMeta } from "./types.ts";

interface Taint {
  key: string;
  value?: string;
  effect: string;
  timeAdded?: string;
}

interface SlimNode extends KubeObject {
  spec: { providerID?: string; unschedulable?: boolean; taints?: Taint[] };
}

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
  strategy?: string;
  preferredHolder?: string;
}

interface SlimLease extends KubeObject {
  spec: LeaseSpec;
}

/** Decodes one object's protobuf message: the reader spans exactly that message (r.pos to r.end). */
export type ProtoObjectDecoder = (r: ProtoReader) => KubeObject;

export interface BuiltinCodec {
  decode: ProtoObjectDecoder;
  /** The same projection applied to a JSON-decoded object. */
  project: (obj: KubeObject) => KubeObject;
}

// ---- Pod

function readPodSpec(r: ProtoReader, spec: NonNullable<Pod["spec"]>): void {
  const end = r.lenEnd();
  let s: string;
  while (r.pos < end) {
    const t = r.varint();
    if (t === 82 /* 10:len nodeName */) {
      if ((s = r.interned()) !== "") spec.nodeName = s;
    } else if (t === 66 /* 8:len serviceAccountName */) {
      if ((s = r.interned()) !== "") spec.serviceAccountName = s;
    } else if (t === 88 /* 11:varint hostNetwork */) {
      if (r.varint() !== 0) spec.hostNetwork = true;
    } else r.skip(t);
  }
  r.closed(end);
}

type PodStatus = NonNullable<Pod["status"]> & { hostIP?: string };

function readPodIP(r: ProtoReader): { ip: string } {
  const end = r.lenEnd();
  let ip = "";
  while (r.pos < end) {
    const t = r.varint();
    if (t === 10 /* 1:len ip */) ip = r.string();
    else r.skip(t);
  }
  r.closed(end);
  return { ip };
}

function readPodStatus(r: ProtoReader, status: PodStatus): void {
  const end = r.lenEnd();
  let s: string;
  while (r.pos < end) {
    const t = r.varint();
    switch (t) {
      case 10 /* 1:len phase */:
        if ((s = r.interned()) !== "") status.phase = s as PodPhase;
        break;
      case 42 /* 5:len hostIP */:
        if ((s = r.interned()) !== "") status.hostIP = s;
        break;
      case 50 /* 6:len podIP */:
        if ((s = r.string()) !== "") status.podIP = s;
        break;
      case 98 /* 12:len podIPs */:
        (status.podIPs ??= []).push(readPodIP(r));
        break;
      default:
        r.skip(t);
    }
  }
  r.closed(end);
}

export function decodePod(r: ProtoReader): Pod {
  let metadata: ObjectMeta = {};
  const spec: NonNullable<Pod["spec"]> = {};
  const status: PodStatus = {};
  while (r.pos < r.end) {
    const t = r.varint();
    if (t === 10 /* 1:len metadata */) metadata = readObjectMeta(r, "identity");
    else if (t === 18 /* 2:len spec */) readPodSpec(r, spec);
    else if (t === 26 /* 3:len status */) readPodStatus(r, status);
    else r.skip(t);
  }
  return { apiVersion: "v1", kind: "Pod", metadata, spec, status };
}

export function projectPod(obj: KubeObject): Pod {
  const p = obj as Pod & { status?: PodStatus };
  const spec: NonNullable<Pod["spec"]> = {};
  if (p.spec?.nodeName) spec.nodeName = p.spec.nodeName;
  if (p.spec?.serviceAccountName) spec.serviceAccountName = p.spec.serviceAccountName;
  if (p.spec?.hostNetwork) spec.hostNetwork = true;
  const status: PodStatus = {};
  const s = p.status;
  if (s?.phase) status.phase = s.phase;
  if (s?.hostIP) status.hostIP = s.hostIP;
  if (s?.podIP) status.podIP = s.podIP;
  if (s?.podIPs?.length) status.podIPs = s.podIPs.map((x) => ({ ip: x.ip ?? "" }));
  return { apiVersion: "v1", kind: "Pod", metadata: projectMeta(p.metadata, "identity"), spec, status };
}

// ---- Node

// Nodes change rarely (MIC and NMI watch a few hundred at most): their fields are read from tables.
const TAINT: FieldTable<Taint> = {
  10 /* 1:len key */: (r, taint) => taint.key = r.string(),
  18 /* 2:len value */: nonEmpty((taint, s) => taint.value = s),
  26 /* 3:len effect */: (r, taint) => taint.effect = r.string(),
  34 /* 4:len timeAdded */: (r, taint) => taint.timeAdded = readTime(r),
};

const NODE_SPEC: FieldTable<SlimNode["spec"]> = {
  26 /* 3:len providerID */: nonEmpty((spec, s) => spec.providerID = s),
  42 /* 5:len taints */: (r, spec) =>
    (spec.taints ??= []).push(readFields(r, { key: "", effect: "" }, TAINT)),
  32 /* 4:varint unschedulable */: (r, spec) => {
    if (r.varint() !== 0) spec.unschedulable = true;
  },
};

const readNodeSpec = (r: ProtoReader, spec: SlimNode["spec"]) => void readFields(r, spec, NODE_SPEC);

export function decodeNode(r: ProtoReader): SlimNode {
  const spec: SlimNode["spec"] = {};
  const metadata = readMetadataAndSpec(r, spec, readNodeSpec, "identity");
  return { apiVersion: "v1", kind: "Node", metadata, spec };
}

/** The metadata (field 1) and spec (field 2) of a Node or a Lease; the status, if any, is skipped. */
function readMetadataAndSpec<S>(
  r: ProtoReader,
  spec: S,
  readSpec: (r: ProtoReader, spec: S) => void,
  fields: MetaFields,
): ObjectMeta {
  let metadata: ObjectMeta = {};
  while (r.pos < r.end) {
    const t = r.varint();
    if (t === 10 /* 1:len metadata */) metadata = readObjectMeta(r, fields);
    else if (t === 18 /* 2:len spec */) readSpec(r, spec);
    else r.skip(t);
  }
  return metadata;
}

function projectNode(obj: KubeObject): SlimNode {
  const n = obj as KubeObject & { spec?: SlimNode["spec"] };
  const spec: SlimNode["spec"] = {};
  if (n.spec?.providerID) spec.providerID = n.spec.providerID;
  if (n.spec?.unschedulable) spec.unschedulable = true;
  if (n.spec?.taints?.length) {
    spec.taints = n.spec.taints.map((t) => {
      const out: Taint = { key: t.key ?? "", effect: t.effect ?? "" };
      if (t.value) out.value = t.value;
      if (t.timeAdded) out.timeAdded = t.timeAdded;
      return out;
    });
  }
  return { apiVersion: "v1", kind: "Node", metadata: projectMeta(n.metadata, "identity"), spec };
}

// ---- Lease

const LEASE_SPEC: FieldTable<LeaseSpec> = {
  10 /* 1:len holderIdentity */: (r, spec) => spec.holderIdentity = r.string(),
  16 /* 2:varint leaseDurationSeconds */: (r, spec) => spec.leaseDurationSeconds = r.int(),
  26 /* 3:len acquireTime */: (r, spec) => spec.acquireTime = readMicroTime(r),
  34 /* 4:len renewTime */: (r, spec) => spec.renewTime = readMicroTime(r),
  40 /* 5:varint leaseTransitions */: (r, spec) => spec.leaseTransitions = r.int(),
  50 /* 6:len strategy */: (r, spec) => spec.strategy = r.string(),
  58 /* 7:len preferredHolder */: (r, spec) => spec.preferredHolder = r.string(),
};

const readLeaseSpec = (r: ProtoReader, spec: LeaseSpec) => void readFields(r, spec, LEASE_SPEC);

function decodeLease(r: ProtoReader): SlimLease {
  const spec: LeaseSpec = {};
  const metadata = readMetadataAndSpec(r, spec, readLeaseSpec, "whole");
  return { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata, spec };
}

function projectLease(obj: KubeObject): SlimLease {
  const l = obj as KubeObject & { spec?: LeaseSpec };
  // Every LeaseSpec field is a pointer in Go: present on the wire exactly when present in JSON.
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: projectMeta(l.metadata),
    spec: { ...(l.spec ?? {}) },
  };
}

// ---- shared

/** ObjectMeta as readObjectMeta(fields) leaves it: no selfLink/managedFields, empty strings and maps dropped. */
export function projectMeta(m: ObjectMeta | undefined, fields: MetaFields = "whole"): ObjectMeta {
  const out: ObjectMeta = {};
  if (!m) return out;
  const whole = fields === "whole";
  if (m.name) out.name = m.name;
  if (whole && m.generateName) out.generateName = m.generateName;
  if (m.namespace) out.namespace = m.namespace;
  if (m.uid) out.uid = m.uid;
  if (m.resourceVersion) out.resourceVersion = m.resourceVersion;
  if (whole && m.generation) out.generation = m.generation;
  if (whole && m.creationTimestamp) out.creationTimestamp = m.creationTimestamp;
  if (m.deletionTimestamp) out.deletionTimestamp = m.deletionTimestamp;
  if (m.deletionGracePeriodSeconds !== undefined) {
    out.deletionGracePeriodSeconds = m.deletionGracePeriodSeconds;
  }
  if (m.labels && Object.keys(m.labels).length) out.labels = { ...m.labels };
  if (!whole) return out;
  if (m.annotations && Object.keys(m.annotations).length) out.annotations = { ...m.annotations };
  if (m.ownerReferences?.length) out.ownerReferences = m.ownerReferences.map((o) => ({ ...o }));
  if (m.finalizers?.length) out.finalizers = [...m.finalizers];
  return out;
}

/** A `<Kind>List` message: ListMeta (1) and repeated items (2), decoded item by item. */
export function decodeList<T extends KubeObject>(
  raw: Uint8Array,
  decode: ProtoObjectDecoder,
): KubeList<T> {
  const r = new ProtoReader(raw);
  const list: KubeList<T> = { metadata: {}, items: [] };
  while (!r.done) {
    const t = r.varint();
    if (t === 10 /* 1:len metadata */) list.metadata = readListMeta(r);
    else if (t === 18 /* 2:len items */) {
      const end = r.lenEnd();
      list.items.push(decode(new ProtoReader(raw, r.pos, end)) as T);
      r.pos = end;
    } else r.skip(t);
  }
  return list;
}

const CODECS: Record<string, BuiltinCodec> = {
  "/v1/pods": { decode: decodePod, project: projectPod },
  "/v1/nodes": { decode: decodeNode, project: projectNode },
  "coordination.k8s.io/v1/leases": { decode: decodeLease, project: projectLease },
};

/**
 * The protobuf codec for a resource, or undefined: CRDs (the apiserver serves them in JSON only) and
 * built-in kinds nobody here caches go on as JSON.
 */
export function builtinCodec(rt: ResourceType): BuiltinCodec | undefined {
  return CODECS[`${rt.group}/${rt.version}/${rt.plural}`];
}
