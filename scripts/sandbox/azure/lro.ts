// Long-running operations as Compute runs them: a PATCH starts an operation that finishes after a fixed
// duration; clients poll `Azure-AsyncOperation`. Completion is evaluated lazily against the clock on every
// access, so no timers outlive a test. A newer operation on the same resource preempts the running one,
// as Compute does ("OperationPreempted").

import type { ArmErrorDetail } from "./arm_errors.ts";

export type OperationStatus = "InProgress" | "Succeeded" | "Failed" | "Canceled";

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
  onSucceeded: () => void;
}

export const PREEMPTED: ArmErrorDetail = {
  code: "OperationPreempted",
  message: "Operation execution has been preempted by a more recent operation.",
};

export class OperationTracker {
  #ops = new Map<string, Tracked>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Starts an operation; `onSucceeded` runs (once) when it completes, before anyone can observe it. */
  start(resourceKey: string, durationMs: number, onSucceeded: () => void): Operation {
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
    this.#ops.set(op.id, { op, onSucceeded });
    return op;
  }

  /** Completes every operation whose time has come, in start order. */
  settle(): void {
    const t = this.now();
    for (const tracked of this.#ops.values()) {
      const op = tracked.op;
      if (op.status === "InProgress" && op.doneAt <= t) {
        op.status = "Succeeded";
        op.endTime = op.doneAt;
        tracked.onSucceeded();
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

export interface OperationJson {
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
