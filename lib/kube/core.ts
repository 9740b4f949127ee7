// The slice of core/v1 Pod and Node that MIC and NMI read. Everything else in those objects passes through
// the cache untouched (and unread).

import type { KubeObject } from "./types.ts";

export type PodPhase = "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown";

export interface Pod extends KubeObject {
  spec?: {
    nodeName?: string;
    serviceAccountName?: string;
    hostNetwork?: boolean;
  };
  status?: {
    phase?: PodPhase;
    podIP?: string;
    podIPs?: { ip: string }[];
  };
}

export interface Node extends KubeObject {
  spec?: {
    providerID?: string;
    taints?: { key: string; value?: string; effect: string }[];
  };
}

/** Every IP a pod holds (IPv4 and IPv6 on dual-stack clusters). */
export function podIPs(pod: Pod): string[] {
  const ips = new Set<string>();
  if (pod.status?.podIP) ips.add(pod.status.podIP);
  for (const p of pod.status?.podIPs ?? []) if (p.ip) ips.add(p.ip);
  return [...ips];
}

/** A pod that may still send requests: the original served only Pending and Running pods. */
export function isPodLive(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase === "Pending" || phase === "Running";
}
