// Following a long-running ARM operation to its end, per ARM's asynchronous protocol
// (https://learn.microsoft.com/en-us/azure/azure-resource-manager/management/async-operations) and as
// @azure/arm-compute 25.1.1's poller does for a PATCH (resourceLocationConfig "location"): poll
// `Azure-AsyncOperation` (or `Operation-Location`) until its status is terminal, then GET the resource
// (the `Location` header's URL, else the PATCHed URL); with only `Location`, poll it until it stops
// answering 202 and take that body; with neither, the PATCH's own answer is the result. When to poll is
// lro_timing.ts's decision; this module only reads answers.

import { parseRetryAfter } from "../retry_after.ts";
import { ArmError, armErrorDetail, type ArmOperation } from "./arm_error.ts";
import type { ArmAnswer } from "./arm_http.ts";
import { type DurationEstimate, nextPollDelay, type PollTiming } from "./lro_timing.ts";

type Status = "running" | "succeeded" | "failed" | "canceled";

/** An operation status body's `status`, read as @azure/core-lro reads it. */
function operationStatus(body: unknown): Status | undefined {
  const s = (body as { status?: unknown } | undefined)?.status;
  if (typeof s !== "string") return undefined;
  const l = s.toLowerCase();
  if (l.includes("succeeded")) return "succeeded";
  if (l.includes("fail")) return "failed";
  if (l === "canceled" || l === "cancelled") return "canceled";
  return "running";
}

/** endTime - startTime of an operation status body, when both are dates. */
function reportedDuration(body: unknown): number | undefined {
  const b = (body ?? {}) as { startTime?: unknown; endTime?: unknown };
  if (typeof b.startTime !== "string" || typeof b.endTime !== "string") return undefined;
  const d = Date.parse(b.endTime) - Date.parse(b.startTime);
  return Number.isFinite(d) && d >= 0 ? d : undefined;
}

export interface LroDeps {
  op: ArmOperation;
  /** Estimates are kept per kind (vm / vmss). */
  kind: string;
  /** An authorized GET of an ARM URL; throws ArmError for an answer that is not 2xx. */
  get: (url: string) => Promise<ArmAnswer>;
  wait: (ms: number) => Promise<unknown>;
  now: () => number;
  estimate: DurationEstimate;
  timing?: PollTiming;
  /** The ARM endpoint's origin: poll URLs elsewhere would receive MIC's token, they are refused. */
  origin: string;
  /** Added to a poll URL without one, as the SDK does. */
  apiVersion: string;
}

/** The final resource body of the operation a PATCH answered with `initial`. */
export async function followOperation(initial: ArmAnswer, patchUrl: string, d: LroDeps): Promise<unknown> {
  const h = initial.headers;
  const asyncUrl = h.get("azure-asyncoperation") ?? h.get("operation-location") ?? undefined;
  const location = h.get("location") ?? undefined;
  if (asyncUrl === undefined && location === undefined) return initial.body;
  const pollUrl = checkedUrl(asyncUrl ?? location!, d);
  const answeredAt = d.now();
  let polls = 0;
  let retryAfterMs = parseRetryAfter(h.get("retry-after"));
  for (;;) {
    const elapsedMs = d.now() - answeredAt;
    await d.wait(
      nextPollDelay({ polls, elapsedMs, retryAfterMs, estimateMs: d.estimate.get(d.kind) }, d.timing),
    );
    const a = await d.get(pollUrl);
    polls++;
    retryAfterMs = parseRetryAfter(a.headers.get("retry-after"));
    if (asyncUrl === undefined) {
      // Location polling: 202 while running, the result when done.
      if (a.status === 202) continue;
      d.estimate.observe(d.kind, d.now() - answeredAt);
      return a.body;
    }
    const status = operationStatus(a.body);
    if (status === undefined) {
      throw new ArmError(d.op, 0, "InvalidOperationStatus", "operation status answer without a status");
    }
    if (status === "running") continue;
    if (status !== "succeeded") {
      const e = armErrorDetail((a.body as { error?: unknown }).error ?? {});
      const name = status === "failed" ? "Failed" : "Canceled";
      throw new ArmError(
        d.op,
        0,
        e.code ?? `Operation${name}`,
        e.message ?? `operation ${name.toLowerCase()}`,
      );
    }
    d.estimate.observe(d.kind, reportedDuration(a.body) ?? d.now() - answeredAt);
    return (await d.get(checkedUrl(location ?? patchUrl, d))).body;
  }
}

function checkedUrl(raw: string, d: LroDeps): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ArmError(d.op, 0, "InvalidOperationUrl", "ARM answered an operation URL that is not a URL");
  }
  if (url.origin !== d.origin) {
    throw new ArmError(
      d.op,
      0,
      "InvalidOperationUrl",
      `ARM answered an operation URL on ${url.origin}, not ${d.origin}: not followed (it would get the token)`,
    );
  }
  if (!url.searchParams.get("api-version")) url.searchParams.set("api-version", d.apiVersion);
  return url.toString();
}
