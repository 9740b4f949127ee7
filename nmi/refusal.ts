// Why NMI does not serve a request, in domain terms. Selection, caller resolution and the token service
// return these; only nmi/server.ts turns them into HTTP statuses and bodies.

type RefusalKind =
  /** The request itself is unacceptable (no binding selects the pod, bad source address). */
  | "invalid"
  /** The caller may not have what it asked for (or an upstream refused it: `code` is their error code). */
  | "forbidden"
  /** No such caller. */
  | "not_found"
  /** The identity is bound but not usable yet; the client should retry. */
  | "pending"
  /** NMI cannot decide or fetch now (apiserver, IMDS or Azure AD unreachable, caches not fresh). */
  | "unavailable"
  | "internal";

export interface Refusal {
  kind: RefusalKind;
  message: string;
  /** The error code to show instead of the kind's default (an upstream's own `error`, `invalid_client`). */
  code?: string;
}

export function refusal(kind: RefusalKind, message: string, code?: string): Refusal {
  return code === undefined ? { kind, message } : { kind, message, code };
}
