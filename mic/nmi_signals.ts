// MIC hears NMI: when IMDS keeps answering "Identity not found" for an Assigned identity past the
// propagation window, NMI writes a Warning Event `IdentityNotFoundOnNode` on its AzureAssignedIdentity
// (nmi/identity_not_found_event.ts). MIC watches only those Events and re-checks that one VM / scale set
// at once, instead of waiting for the drift-repair interval (the original's issue #633: identities removed
// by an AKS upgrade or node-image update).

import { IDENTITY_NOT_FOUND_ON_NODE } from "../lib/api/types.ts";
import type { CoreEvent } from "../lib/kube/events.ts";
import { Informer } from "../lib/kube/informer.ts";
import { type KubeClient, Resources } from "../lib/kube/rest.ts";
import type { Logger } from "../lib/log.ts";
import type { ObservedCache } from "./observed_cache.ts";

interface NmiSignalOptions {
  client: KubeClient;
  log: Logger;
  cache: ObservedCache;
  /** Asks for a re-check of one VM / scale set; false when one ran too recently. */
  recheck: (targetKey: string) => boolean;
  /** Events older than this when first seen (a re-list) are history, not a signal (default 2 min). */
  maxAgeMs?: number;
  watchTimeoutSeconds?: number;
}

const NMI_SIGNAL_SELECTOR = `involvedObject.kind=AzureAssignedIdentity,reason=${IDENTITY_NOT_FOUND_ON_NODE}`;

/** Starts the watch; it ends with `signal`. */
export function watchNmiSignals(o: NmiSignalOptions, signal: AbortSignal): Informer<CoreEvent> {
  const events = new Informer<CoreEvent>({
    client: o.client,
    log: o.log,
    resource: Resources.events,
    fieldSelector: NMI_SIGNAL_SELECTOR,
    ...(o.watchTimeoutSeconds ? { watchTimeoutSeconds: o.watchTimeoutSeconds } : {}),
  });
  const maxAge = o.maxAgeMs ?? 120_000;
  const onSignal = (e: CoreEvent) => {
    const last = Date.parse(e.lastTimestamp || e.metadata.creationTimestamp || "");
    if (!(Date.now() - last < maxAge)) return;
    const ref = e.involvedObject;
    const key = `${ref.namespace ?? ""}/${ref.name ?? ""}`;
    const target = o.cache.targetOfAssigned(key);
    if (!target) return;
    if (o.recheck(target.key)) {
      o.log.info(`NMI reports identity not found for ${key}: re-checking ${target.resourceId}`, {
        node: e.source?.host,
      });
    }
  };
  events.addHandler({
    onAdd: onSignal,
    onUpdate: (before, after) => before.count !== after.count && onSignal(after),
    onDelete: () => {},
  });
  events.start(signal);
  return events;
}
