// The errors of MIC's ARM client: an answer that was not success (or a failed long-running operation), and
// a call refused locally because ARM's Retry-After deadline has not passed.

import { isoTime } from "../time_text.ts";

export type ArmOperation = "vm_get" | "vm_update" | "vmss_get" | "vmss_update";

/** An ARM answer that was not success (or a failed long-running operation). */
export class ArmError extends Error {
  override name = "ArmError";
  constructor(
    readonly operation: ArmOperation,
    /** HTTP status; 0 when no answer came or the LRO ended Failed/Canceled without one. */
    readonly status: number,
    /** ARM error code, e.g. LinkedAuthorizationFailed, OperationNotAllowed, AuthorizationFailed. */
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** Refused here: a Retry-After deadline has not passed yet. */
export class ThrottledLocally extends Error {
  override name = "ThrottledLocally";
  constructor(readonly operation: ArmOperation, readonly until: number) {
    super(`${operation}: ARM asked us to wait until ${isoTime(until)}`);
  }
}

/** ARM's error body `{error: {code, message}}` (some RPs answer `{code, message}` at the top). */
export function armErrorDetail(body: unknown): { code?: string; message?: string } {
  const b = (body ?? {}) as Record<string, unknown>;
  const e = (typeof b.error === "object" && b.error !== null ? b.error : b) as Record<string, unknown>;
  return {
    code: typeof e.code === "string" ? e.code : undefined,
    message: typeof e.message === "string" ? e.message.slice(0, 2_000) : undefined,
  };
}
