// Long-running operations as Compute runs them: a PATCH starts an operation that finishes after a fixed
// duration; clients poll `Azure-AsyncOperation`. Completion is evaluated lazily against the clock on every
// access, so no timers outlive a test. A newer operation on the same resource preempts the running one,
// as Compute does ("OperationPreempted").

import type { ArmErrorDetail } from "./arm_errors.ts";
import { idKey } from "./ids.ts";

type OperationStatus = "InProgress" | "Succeeded" | "Failed" | "Canceled";

export interface Operation {
  id: string;
  /** `idKey` of the resource the operation updates. */
  resourceKey: string;
  /** Epoch ms. */
  startTime: number;
  /** Epoch ms at which the operation succeeds. */
  doneAt: number;
  status: OperationStatus;
  endTime?: number;
  error?: ArmErrorDetail;
}

interface Tracked {
  op: Operation;
  onSucceeded: (op: Operation) => void;
  failure?: OperationFailure;
}

/** How an operation ends when a test made it fail: the error its status shows and the model rollback. */
interface OperationFailure {
  error: ArmErrorDetail;
  onFailed: () => void;
}

const PREEMPTED: ArmErrorDetail = {
  code: "OperationPreempted",
  message: "Operation execution has been preempted by a more recent operation.",
};

export class OperationTracker {
  #ops = new Map<string, Tracked>();

  constructor(readonly now: () => number = Date.now) {}

  /**
   * Starts an operation; `onSucceeded` runs (once) when it completes, before anyone can observe it. With
   * `failure` the operation ends `Failed` with that error instead and `failure.onFailed` runs.
   */
  start(
    resourceKey: string,
    durationMs: number,
    onSucceeded: (op: Operation) => void,
    failure?: OperationFailure,
  ): Operation {
    this.settle();
    const t = this.now();
    for (const tracked of this.#ops.values()) {
      const op = tracked.op;
      if (op.resourceKey === resourceKey && op.status === "InProgress") {
        op.status = "Canceled";
        op.endTime = t;
        op.error = { ...PREEMPTED };
      }
    }
    const op: Operation = {
      id: crypto.randomUUID(),
      resourceKey,
      startTime: t,
      doneAt: t + Math.max(0, durationMs),
      status: "InProgress",
    };
    this.#ops.set(op.id, { op, onSucceeded, failure });
    return op;
  }

  /** Completes every operation whose time has come, in start order. */
  settle(): void {
    const t = this.now();
    for (const tracked of this.#ops.values()) {
      const op = tracked.op;
      if (op.status === "InProgress" && op.doneAt <= t) {
        op.endTime = op.doneAt;
        if (tracked.failure) {
          op.status = "Failed";
          op.error = { ...tracked.failure.error };
          tracked.failure.onFailed();
        } else {
          op.status = "Succeeded";
          tracked.onSucceeded(op);
        }
      }
    }
  }

  get(id: string): Operation | undefined {
    this.settle();
    const tracked = this.#ops.get(id.toLowerCase()) ?? this.#ops.get(id);
    return tracked ? { ...tracked.op } : undefined;
  }

  running(resourceKey: string): Operation | undefined {
    this.settle();
    for (const { op } of this.#ops.values()) {
      if (op.resourceKey === resourceKey && op.status === "InProgress") return { ...op };
    }
    return undefined;
  }
}

interface OperationJson {
  name: string;
  status: OperationStatus;
  startTime: string;
  endTime?: string;
  error?: ArmErrorDetail;
}

/** The body of a GET on the `Azure-AsyncOperation` URL. */
export function operationToJson(op: Operation): OperationJson {
  const json: OperationJson = {
    startTime: new Date(op.startTime).toISOString(),
    status: op.status,
    name: op.id,
  };
  if (op.endTime !== undefined) json.endTime = new Date(op.endTime).toISOString();
  if (op.error) json.error = { ...op.error };
  return json;
}

/** Compute's generic answer for an operation that failed inside the platform. */
export const DEFAULT_OPERATION_ERROR: ArmErrorDetail = {
  code: "InternalExecutionError",
  message: "An internal execution error occurred. Please retry later.",
};

export interface OperationFailureSpec {
  /** Only operations on this VM / scale set (any casing); every resource when absent. */
  resourceId?: string;
  /** Error code in the failed operation's status (default `InternalExecutionError`). */
  code?: string;
  message?: string;
  /** How many operations fail; unlimited when absent. */
  times?: number;
}

/** Operations a test wants to end `Failed`: the PATCH is accepted, the asynchronous work then fails. */
export class OperationFaults {
  #next = 1;
  #specs: { id: number; spec: OperationFailureSpec; left: number }[] = [];

  inject(spec: OperationFailureSpec = {}): number {
    if (spec.times !== undefined && !(spec.times >= 1)) throw new RangeError("times must be >= 1");
    const id = this.#next++;
    this.#specs.push({ id, spec: { ...spec }, left: spec.times ?? Infinity });
    return id;
  }

  clear(id?: number): void {
    this.#specs = id === undefined ? [] : this.#specs.filter((s) => s.id !== id);
  }

  /** The error the next operation on `resourceKey` (an `idKey`) ends with, consuming one of its `times`. */
  take(resourceKey: string): ArmErrorDetail | undefined {
    const hit = this.#specs.find((s) =>
      s.left > 0 && (s.spec.resourceId === undefined || idKey(s.spec.resourceId) === resourceKey)
    );
    if (!hit) return undefined;
    hit.left -= 1;
    if (hit.left <= 0) this.#specs = this.#specs.filter((s) => s !== hit);
    return {
      code: hit.spec.code ?? DEFAULT_OPERATION_ERROR.code,
      message: hit.spec.message ?? DEFAULT_OPERATION_ERROR.message,
    };
  }
}

/** A fixed duration, or one drawn uniformly from a range for every operation. */
export type LroDuration = number | { minMs: number; maxMs: number };

/** What Compute takes to attach identities to a VM or scale set (seconds to about a minute, #1267). */
export const REALISTIC_LRO_DURATION: LroDuration = { minMs: 10_000, maxMs: 60_000 };

export function drawDuration(d: LroDuration, random: () => number = Math.random): number {
  if (typeof d === "number") return d;
  return d.minMs + Math.floor(random() * (d.maxMs - d.minMs + 1));
}
