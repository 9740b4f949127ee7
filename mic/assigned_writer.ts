// The Kubernetes side of MIC's work: AzureAssignedIdentity creates, updates, status changes and deletes,
// and the Events the original wrote about them (docs/upstream.md, "## Events": `binding applied`,
// `binding apply error`, `binding removed`, `binding remove error`, `status update error`). Every write
// is fenced by leadership first; a failure is counted, logged, reported as an Event and answered with
// undefined, never thrown, so one object cannot stop a cycle.

import {
  API_VERSION,
  ASSIGNED_IDENTITY_FINALIZER,
  AssignedIdentityState,
  type AzureAssignedIdentity,
} from "../lib/api/types.ts";
import { toWire } from "../lib/api/wire.ts";
import type { EventRecorder, EventType } from "../lib/kube/events.ts";
import { KubeApiError, type KubeClient, Resources } from "../lib/kube/rest.ts";
import type { KubeObject } from "../lib/kube/types.ts";
import type { Logger } from "../lib/log.ts";
import { type MicMetrics, recordAssignedIdentityWrite } from "./metrics.ts";
import type { ObservedCache } from "./observed_cache.ts";
import { keyOf, type ObjectRef, type Problem } from "./plan_types.ts";

/** The original's event reasons. */
export const Reasons = {
  applied: "binding applied",
  applyError: "binding apply error",
  removed: "binding removed",
  removeError: "binding remove error",
  statusError: "status update error",
} as const;

/** Kubernetes operations, as the metric `kubernetes_api_operations_errors_count` labels them. */
type KubeOp =
  | "assigned_identity_addition"
  | "assigned_identity_update"
  | "assigned_identity_deletion"
  | "update_azure_assigned_identity_status";

/** What every part of MIC that writes on the leader's behalf is given: its log, and the leadership fence. */
export interface FencedWork {
  log: Logger;
  /** Throws NotLeader when this replica may not write (not, or no longer, the leader). */
  fence: () => void;
}

interface AssignedWriterOptions extends FencedWork {
  client: KubeClient;
  cache: ObservedCache;
  recorder: EventRecorder;
  metrics: MicMetrics;
  /** Whether events may be written now (only the leader speaks). */
  leading: () => boolean;
  /** Our view was stale (conflict, not found): plan again once the watch caught up. */
  replan: () => void;
  /** A write failed: try again a little later. */
  retrySoon: () => void;
}

export function errText(e: unknown): string {
  const s = e instanceof Error ? e.message : String(e);
  return s.length > 500 ? `${s.slice(0, 497)}...` : s;
}

function pickMeta(o: KubeObject): { resourceVersion?: string; uid?: string } {
  return { resourceVersion: o.metadata.resourceVersion, uid: o.metadata.uid };
}

function refOf(a: AzureAssignedIdentity): ObjectRef {
  return {
    kind: a.kind,
    namespace: a.metadata.namespace,
    name: a.metadata.name,
    ...(a.metadata.uid ? { uid: a.metadata.uid } : {}),
  };
}

function bindingRef(a: AzureAssignedIdentity): ObjectRef {
  const b = a.spec.azureBindingRef.metadata;
  return {
    kind: "AzureIdentityBinding",
    namespace: b.namespace,
    name: b.name,
    ...(b.uid ? { uid: b.uid } : {}),
  };
}

export function identityRef(a: AzureAssignedIdentity): ObjectRef {
  const i = a.spec.azureIdentityRef.metadata;
  return { kind: "AzureIdentity", namespace: i.namespace, name: i.name, ...(i.uid ? { uid: i.uid } : {}) };
}

export class AssignedWriter {
  readonly #opts: AssignedWriterOptions;
  readonly #reported = new Set<string>();

  constructor(opts: AssignedWriterOptions) {
    this.#opts = opts;
  }

  /** Creates `a`; the created object (with its uid and resourceVersion), or undefined. */
  async create(a: AzureAssignedIdentity): Promise<AzureAssignedIdentity | undefined> {
    const created = await this.#write(
      "assigned_identity_addition",
      a,
      () => this.#opts.client.create(Resources.azureAssignedIdentities, toWire(a) as unknown as KubeObject),
    );
    if (!created) return undefined;
    this.#opts.cache.expect(keyOf(a), created.metadata.resourceVersion ?? "");
    return { ...a, metadata: { ...a.metadata, ...pickMeta(created) } };
  }

  async update(next: AzureAssignedIdentity): Promise<AzureAssignedIdentity | undefined> {
    const updated = await this.#write(
      "assigned_identity_update",
      next,
      () =>
        this.#opts.client.update(Resources.azureAssignedIdentities, toWire(next) as unknown as KubeObject),
    );
    if (!updated) return undefined;
    this.#opts.cache.expect(keyOf(next), updated.metadata.resourceVersion ?? "");
    return { ...next, metadata: { ...next.metadata, ...pickMeta(updated) } };
  }

  async markAssigned(a: AzureAssignedIdentity | undefined): Promise<void> {
    if (!a) return;
    const done = await this.#write(
      "update_azure_assigned_identity_status",
      a,
      () =>
        this.#opts.client.patch<KubeObject>(Resources.azureAssignedIdentities, a.metadata.name, "merge", {
          metadata: { resourceVersion: a.metadata.resourceVersion },
          status: { status: AssignedIdentityState.Assigned, availableReplicas: 1 },
        }, { namespace: a.metadata.namespace }),
    );
    this.#opts.log.debug(`marked ${keyOf(a)}`, { ok: !!done });
    if (!done) return;
    this.#opts.cache.expect(keyOf(a), done.metadata.resourceVersion ?? "");
    await this.#bindingEvent(a, Reasons.applied, "applied on");
  }

  /** The original's Normal events: "Binding <name> applied on node <node> for pod <ns>/<pod>" (or removed). */
  #bindingEvent(
    a: AzureAssignedIdentity,
    reason: string,
    what: "applied on" | "removed from",
  ): Promise<void> {
    const { azureBindingRef, nodeName, podNamespace, pod } = a.spec;
    const message =
      `Binding ${azureBindingRef.metadata.name} ${what} node ${nodeName} for pod ${podNamespace}/${pod}`;
    return this.event(bindingRef(a), "Normal", reason, message);
  }

  /** Unassigned, finalizer dropped, deleted. */
  async release(a: AzureAssignedIdentity | undefined): Promise<void> {
    if (!a) return;
    const rest = a.metadata.finalizers.filter((f) => f !== ASSIGNED_IDENTITY_FINALIZER);
    const patched = await this.#write(
      "update_azure_assigned_identity_status",
      a,
      () =>
        this.#opts.client.patch<KubeObject>(Resources.azureAssignedIdentities, a.metadata.name, "merge", {
          metadata: { resourceVersion: a.metadata.resourceVersion, finalizers: rest.length ? rest : null },
          status: { status: AssignedIdentityState.Unassigned },
        }, { namespace: a.metadata.namespace }),
    );
    if (!patched) return;
    if (a.metadata.deletionTimestamp) {
      this.#opts.cache.expect(keyOf(a), null);
    } else {
      const deleted = await this.#write(
        "assigned_identity_deletion",
        a,
        () =>
          this.#opts.client.delete(Resources.azureAssignedIdentities, a.metadata.name, {
            namespace: a.metadata.namespace,
            preconditions: patched.metadata.uid ? { uid: patched.metadata.uid } : undefined,
          }),
      );
      this.#opts.cache.expect(keyOf(a), deleted ? null : patched.metadata.resourceVersion ?? "");
      if (!deleted) return;
    }
    await this.#bindingEvent(a, Reasons.removed, "removed from");
  }

  /** One Warning event and one log line per problem and object version. */
  async report(problems: Problem[]): Promise<void> {
    for (const pr of problems) {
      const o = pr.object;
      const key = [o.kind, o.namespace, o.name, o.uid, o.resourceVersion, pr.reason, pr.message].join(
        "\u0000",
      );
      if (this.#reported.has(key)) continue;
      if (this.#reported.size > 50_000) this.#reported.clear();
      this.#reported.add(key);
      this.#opts.log.warn(pr.message, { object: `${o.kind} ${o.namespace}/${o.name}`, reason: pr.reason });
      await this.event(o, "Warning", pr.reason, pr.message);
    }
  }

  /** One Warning per binding (not per pod), so a scale set's failure is not hundreds of events. */
  async warnBindings(
    list: (AzureAssignedIdentity | undefined)[],
    reason: string,
    message: string,
  ): Promise<void> {
    const seen = new Set<string>();
    for (const a of list) {
      if (!a) continue;
      const b = bindingRef(a);
      const k = `${b.namespace}/${b.name}`;
      if (seen.has(k)) continue;
      seen.add(k);
      await this.event(b, "Warning", reason, message);
    }
  }

  async event(o: ObjectRef, type: EventType, reason: string, message: string): Promise<void> {
    if (!this.#opts.leading()) return;
    this.#opts.log.debug(`event ${reason} on ${o.kind} ${o.name}`);
    await this.#opts.recorder.record(
      {
        apiVersion: API_VERSION,
        kind: o.kind,
        metadata: {
          name: o.name,
          namespace: o.namespace,
          ...(o.uid ? { uid: o.uid } : {}),
          ...(o.resourceVersion ? { resourceVersion: o.resourceVersion } : {}),
        },
      },
      type,
      reason,
      message.length > 1000 ? `${message.slice(0, 997)}...` : message,
    );
  }

  /** A fenced Kubernetes write; failures are counted, logged, reported and answered with undefined. */
  async #write<T>(op: KubeOp, a: AzureAssignedIdentity, fn: () => Promise<T>): Promise<T | undefined> {
    this.#opts.fence();
    try {
      const t0 = performance.now();
      const done = await fn();
      recordAssignedIdentityWrite(this.#opts.metrics, op, (performance.now() - t0) / 1000);
      return done;
    } catch (e) {
      if (e instanceof KubeApiError && (e.isConflict || e.isNotFound)) {
        // Our view was stale; the watch brings the current object and the next cycle decides again.
        this.#opts.replan();
        return undefined;
      }
      this.#opts.metrics.kubeErrors.inc({ operation_type: op });
      this.#opts.log.warn(`${op} ${keyOf(a)} failed`, { error: e });
      await this.#reportFailure(op, a, e);
      this.#opts.retrySoon();
      return undefined;
    }
  }

  #reportFailure(op: KubeOp, a: AzureAssignedIdentity, e: unknown): Promise<void> {
    const what = `${op} ${keyOf(a)}: ${errText(e)}`;
    switch (op) {
      case "update_azure_assigned_identity_status":
        return this.event(refOf(a), "Warning", Reasons.statusError, `${keyOf(a)}: ${errText(e)}`);
      case "assigned_identity_deletion":
        return this.event(bindingRef(a), "Warning", Reasons.removeError, what);
      default:
        return this.event(bindingRef(a), "Warning", Reasons.applyError, what);
    }
  }
}
