// The error every apiserver call throws: built from the apiserver's Status object (or a transport failure or
// timeout), so callers branch on status/reason, never on message text.

import type { KubeStatus } from "./types.ts";

/**
 * What kind of failure a KubeApiError is: an answer from the apiserver, no answer at all, or no answer
 * within the client's request timeout. A caller's own abort is never a KubeApiError: it rethrows the
 * caller's abort reason, so "I gave up" and "the server is slow" stay apart.
 */
type KubeErrorKind = "status" | "transport" | "timeout";

/** Reason of the KubeApiError thrown when the client's own request timeout ends a request. */
export const TIMEOUT_REASON = "Timeout";

/** An error answer from the apiserver (or a transport failure or timeout, status 0). */
export class KubeApiError extends Error {
  constructor(
    /** HTTP status; 0 when no HTTP answer arrived (connection refused, TLS failure, reset). */
    readonly status: number,
    /** metav1.StatusReason (NotFound, Conflict, Expired, Gone, ...), or a transport label. */
    readonly reason: string,
    message: string,
    readonly details?: KubeStatus["details"],
    /** From a Retry-After header or Status.details.retryAfterSeconds. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "KubeApiError";
  }

  static fromStatus(s: KubeStatus, httpStatus?: number, retryAfterMs?: number): KubeApiError {
    const code = httpStatus ?? s.code ?? 500;
    const retry = retryAfterMs ??
      (s.details?.retryAfterSeconds !== undefined ? s.details.retryAfterSeconds * 1000 : undefined);
    return new KubeApiError(code, s.reason ?? "Unknown", s.message ?? `HTTP ${code}`, s.details, retry);
  }

  get kind(): KubeErrorKind {
    if (this.status !== 0) return "status";
    return this.reason === TIMEOUT_REASON ? "timeout" : "transport";
  }
  /** The client's request timeout ended the request before a full answer arrived. */
  get isTimeout(): boolean {
    return this.kind === "timeout";
  }

  /** True for "resourceVersion too old": the caller must list again. */
  get isGone(): boolean {
    return this.status === 410 || this.reason === "Expired" || this.reason === "Gone";
  }
  get isNotFound(): boolean {
    return this.status === 404;
  }
  get isConflict(): boolean {
    return this.status === 409;
  }
  get isAlreadyExists(): boolean {
    return this.status === 409 && this.reason === "AlreadyExists";
  }
}
