// One ARM request with fetch: bearer token, User-Agent, JSON both ways, the answer's body read with a cap,
// and every failure (transport, abort, a body too large, an error status) as an ArmError carrying ARM's
// error code and the answer's Retry-After (lib/retry_after.ts).

import { parseRetryAfter } from "../retry_after.ts";
import { ArmError, armErrorDetail, type ArmOperation } from "./arm_error.ts";
import { BodyTooLarge, readBoundedJson } from "./bounded_body.ts";

export interface ArmAnswer {
  status: number;
  headers: Headers;
  /** Parsed JSON; undefined when empty or not JSON. */
  body: unknown;
}

interface ArmRequest {
  op: ArmOperation;
  method: "GET" | "PATCH";
  url: string;
  token: string;
  userAgent: string;
  body?: unknown;
  signal?: AbortSignal;
}

export async function armFetch(r: ArmRequest): Promise<ArmAnswer> {
  const headers: Record<string, string> = {
    "authorization": `Bearer ${r.token}`,
    "accept": "application/json",
    "user-agent": r.userAgent,
    "x-ms-client-request-id": crypto.randomUUID(),
  };
  if (r.body !== undefined) headers["content-type"] = "application/json";
  try {
    const res = await fetch(r.url, {
      method: r.method,
      headers,
      body: r.body === undefined ? undefined : JSON.stringify(r.body),
      signal: r.signal,
    });
    return {
      status: res.status,
      headers: res.headers,
      body: await readBoundedJson(res, `${r.method} ${path(r)}`),
    };
  } catch (e) {
    if (e instanceof BodyTooLarge) throw new ArmError(r.op, 0, "BodyTooLarge", e.message);
    if (r.signal?.aborted) throw new ArmError(r.op, 0, "Aborted", `${r.method} ${path(r)}: aborted`);
    const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new ArmError(r.op, 0, "RequestFailed", `${r.method} ${path(r)}: ${msg}`);
  }
}

/** The ArmError for an answer that was not success. */
export function armErrorOf(op: ArmOperation, a: ArmAnswer, now = Date.now()): ArmError {
  const d = armErrorDetail(a.body);
  return new ArmError(
    op,
    a.status,
    d.code ?? `HTTP${a.status}`,
    d.message ?? `ARM answered ${a.status}`,
    parseRetryAfter(a.headers.get("retry-after"), now),
  );
}

/** The request's path without its query, for messages. */
function path(r: ArmRequest): string {
  try {
    return new URL(r.url).pathname;
  } catch {
    return "(bad URL)";
  }
}
