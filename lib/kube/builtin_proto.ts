// Protobuf decoders for the built-in kinds the services cache (pods, nodes, leases), each producing a slim
// projection: the whole ObjectMeta (minus selfLink and managedFields) and the spec/status fields MIC and
// NMI read. The matching `project*` functions cut a JSON-decoded object to exactly the same shape, so a
// cache filled from either wire format holds equal objects. Field numbers: k8s.io/api v0.34
// core/v1 and coordination/v1 generated.proto.
//
// Slim pod:  metadata, spec{nodeName, serviceAccountName, hostNetwork}, status{phase, hostIP, podIP, podIPs}
// Slim node: metadata, spec{providerID, unschedulable, taints}
// Lease:     metadata, spec (every field: the lease spec is small)
// A reader that needs more sets the informer's `encoding: "json"` and gets whole objects.

import { type Pod, type PodPhase } from "./core.ts";
import {
  eachField,
  ProtoReader,
  readListMeta,
  readMicroTime,
  readObjectMeta,
  readTime,
  setString,
  Wire,
} from "./protobuf.ts";
import type { ResourceType } from "./rest.ts";
import type { KubeList, KubeObject, ObjectMeta } from "./types.ts";

export interface Taint {
  key: string;
  value?: string;
  effect: string;
  timeAdded?: string;
}

export interface SlimNode extends KubeObject {
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

export interface SlimLease extends KubeObject {
  spec: LeaseSpec;
}

/** Decodes one object's protobuf message (the `raw` of its envelope). */
export type ProtoObjectDecoder = (r: ProtoReader) => KubeObject;

export interface BuiltinCodec {
  decode: ProtoObjectDecoder;
  /** The same projection applied to a JSON-decoded object. */
  project: (obj: KubeObject) => KubeObject;
}

// ---- Pod

function readPodSpec(outer: ProtoReader, spec: NonNullable<Pod["spec"]>): void {
  const r = outer.message();
  eachField(r, (n, w) => {
    if (w === Wire.LEN && n === 10) setString(spec, "nodeName", r.string());
    else if (w === Wire.LEN && n === 8) setString(spec, "serviceAccountName", r.string());
    else if (w === Wire.VARINT && n === 11) {
      if (r.varint() !== 0) spec.hostNetwork = true;
    } else r.skip(w);
  });
}

type PodStatus = NonNullable<Pod["status"]> & { hostIP?: string };

function readPodStatus(outer: ProtoReader, status: PodStatus): void {
  const r = outer.message();
  eachField(r, (n, w) => {
    if (w !== Wire.LEN) return r.skip(w);
    switch (n) {
      case 1:
        setString(status, "phase", r.string() as PodPhase);
        return;
      case 5:
        setString(status, "hostIP", r.string());
        return;
      case 6:
        setString(status, "podIP", r.string());
        return;
      case 12: {
        const ipMsg = r.message();
        let ip = "";
        eachField(ipMsg, (m, mw) => {
          if (m === 1 && mw === Wire.LEN) ip = ipMsg.string();
          else ipMsg.skip(mw);
        });
        (status.podIPs ??= []).push({ ip });
        return;
      }
    }
    r.skip(w);
  });
}

export function decodePod(r: ProtoReader): Pod {
  let metadata: ObjectMeta = {};
  const spec: NonNullable<Pod["spec"]> = {};
  const status: PodStatus = {};
  eachField(r, (n, w) => {
    if (w === Wire.LEN && n === 1) metadata = readObjectMeta(r);
    else if (w === Wire.LEN && n === 2) readPodSpec(r, spec);
    else if (w === Wire.LEN && n === 3) readPodStatus(r, status);
    else r.skip(w);
  });
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
  return { apiVersion: "v1", kind: "Pod", metadata: projectMeta(p.metadata), spec, status };
}

// ---- Node

function readTaint(outer: ProtoReader): Taint {
  const r = outer.message();
  const t: Taint = { key: "", effect: "" };
  eachField(r, (n, w) => {
    if (w !== Wire.LEN) return r.skip(w);
    if (n === 1) t.key = r.string();
    else if (n === 2) setString(t, "value", r.string());
    else if (n === 3) t.effect = r.string();
    else if (n === 4) t.timeAdded = readTime(r);
    else r.skip(w);
  });
  return t;
}

export function decodeNode(r: ProtoReader): SlimNode {
  let metadata: ObjectMeta = {};
  const spec: SlimNode["spec"] = {};
  eachField(r, (n, w) => {
    if (w === Wire.LEN && n === 1) metadata = readObjectMeta(r);
    else if (w === Wire.LEN && n === 2) {
      const s = r.message();
      eachField(s, (m, mw) => {
        if (mw === Wire.LEN && m === 3) setString(spec, "providerID", s.string());
        else if (mw === Wire.LEN && m === 5) (spec.taints ??= []).push(readTaint(s));
        else if (mw === Wire.VARINT && m === 4) {
          if (s.varint() !== 0) spec.unschedulable = true;
        } else s.skip(mw);
      });
    } else r.skip(w);
  });
  return { apiVersion: "v1", kind: "Node", metadata, spec };
}

export function projectNode(obj: KubeObject): SlimNode {
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
  return { apiVersion: "v1", kind: "Node", metadata: projectMeta(n.metadata), spec };
}

// ---- Lease

export function decodeLease(r: ProtoReader): SlimLease {
  let metadata: ObjectMeta = {};
  const spec: LeaseSpec = {};
  eachField(r, (n, w) => {
    if (w === Wire.LEN && n === 1) metadata = readObjectMeta(r);
    else if (w === Wire.LEN && n === 2) {
      const s = r.message();
      eachField(s, (m, mw) => {
        if (mw === Wire.LEN && m === 1) spec.holderIdentity = s.string();
        else if (mw === Wire.VARINT && m === 2) spec.leaseDurationSeconds = s.int();
        else if (mw === Wire.LEN && m === 3) spec.acquireTime = readMicroTime(s);
        else if (mw === Wire.LEN && m === 4) spec.renewTime = readMicroTime(s);
        else if (mw === Wire.VARINT && m === 5) spec.leaseTransitions = s.int();
        else if (mw === Wire.LEN && m === 6) spec.strategy = s.string();
        else if (mw === Wire.LEN && m === 7) spec.preferredHolder = s.string();
        else s.skip(mw);
      });
    } else r.skip(w);
  });
  return { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata, spec };
}

export function projectLease(obj: KubeObject): SlimLease {
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

/** ObjectMeta as readObjectMeta leaves it: no selfLink/managedFields, empty strings and maps dropped. */
export function projectMeta(m: ObjectMeta | undefined): ObjectMeta {
  const out: ObjectMeta = {};
  if (!m) return out;
  if (m.name) out.name = m.name;
  if (m.generateName) out.generateName = m.generateName;
  if (m.namespace) out.namespace = m.namespace;
  if (m.uid) out.uid = m.uid;
  if (m.resourceVersion) out.resourceVersion = m.resourceVersion;
  if (m.generation) out.generation = m.generation;
  if (m.creationTimestamp) out.creationTimestamp = m.creationTimestamp;
  if (m.deletionTimestamp) out.deletionTimestamp = m.deletionTimestamp;
  if (m.deletionGracePeriodSeconds !== undefined) {
    out.deletionGracePeriodSeconds = m.deletionGracePeriodSeconds;
  }
  if (m.labels && Object.keys(m.labels).length) out.labels = { ...m.labels };
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
  eachField(r, (n, w) => {
    if (w === Wire.LEN && n === 1) list.metadata = readListMeta(r);
    else if (w === Wire.LEN && n === 2) list.items.push(decode(r.message()) as T);
    else r.skip(w);
  });
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
