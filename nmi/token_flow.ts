// One token request, after routing and parsing: caller pod -> authorised identity (re-checked on every
// request, before the cache) -> wait for its assignment if needed -> token -> authorisation checked again
// (a binding deleted while the token was being fetched still refuses). Returns an answer for server.ts to
// render; never throws for anything a client or upstream can cause.

import { grantsForPod } from "../lib/api/matching.ts";
import type { Logger } from "../lib/log.ts";
import type { NmiCaches } from "./caches.ts";
import { type ErrorAnswer, errorAnswer, type TokenQuery } from "./request.ts";
import { type CallerPod, identityKey, selectIdentity, type Selection } from "./select.ts";
import { TokenError, type TokenService } from "./token_service.ts";
import type { Token } from "./token.ts";
import { waitFor } from "./waiter.ts";

export interface FlowOptions {
  mode: "standard" | "managed";
  node: string;
  micNamespace: string;
  forceNamespaced: boolean;
  waitDeadlineMs: number;
  setRetryAfter: boolean;
  retryAfterSeconds: number;
  caches: NmiCaches;
  tokens: TokenService;
  log: Logger;
}

export type FlowResult =
  | { ok: true; token: Token; clientId: string; identity: string }
  | { ok: false; answer: ErrorAnswer };

export class TokenFlow {
  #o: FlowOptions;
  constructor(opts: FlowOptions) {
    this.#o = opts;
  }

  select(pod: CallerPod, query: TokenQuery): Selection {
    const o = this.#o;
    const { caches, tokens } = o;
    return selectIdentity({
      mode: o.mode,
      node: o.node,
      micNamespace: o.micNamespace,
      pod,
      request: { clientId: query.clientId, resourceId: query.resourceId, objectId: query.objectId },
      exceptions: caches.exceptionsIn(pod.namespace),
      grants: grantsForPod(pod, caches.catalog(), o.forceNamespaced),
      assigned: caches.assignedFor(pod.namespace, pod.name),
      principalIdOf: (i) => tokens.principalIdOf(i),
    });
  }

  #pending(description: string): ErrorAnswer {
    const o = this.#o;
    return o.setRetryAfter
      ? errorAnswer(503, "service_unavailable", description, { "retry-after": String(o.retryAfterSeconds) })
      : errorAnswer(404, "not_found", description);
  }

  async run(
    pod: CallerPod,
    query: TokenQuery,
    opts: { signal?: AbortSignal; allowRetryAfter?: boolean } = {},
  ): Promise<FlowResult> {
    const o = this.#o;
    const deadlineAt = performance.now() + o.waitDeadlineMs;
    const pending = (d: string) =>
      opts.allowRetryAfter === false ? errorAnswer(404, "not_found", d) : this.#pending(d);
    try {
      let sel = this.select(pod, query);
      if (sel.kind === "learn_principals") {
        // Only identities this pod is granted are fetched to learn their object ids.
        await Promise.allSettled(
          sel.identities.map((i) => o.tokens.forIdentity(i, query.resource, deadlineAt)),
        );
        sel = this.select(pod, query);
        if (sel.kind === "learn_principals") {
          return {
            ok: false,
            answer: errorAnswer(
              403,
              "forbidden",
              `object_id ${query.objectId} is not bound to pod ${pod.namespace}/${pod.name}`,
            ),
          };
        }
      }
      if (sel.kind === "wait") {
        const reason = sel.reason;
        const after = await waitFor(
          () => {
            const s = this.select(pod, query);
            return s.kind === "wait" ? undefined : s;
          },
          o.caches.changes,
          deadlineAt,
          opts.signal,
        );
        if (!after) return { ok: false, answer: pending(`${reason} after ${o.waitDeadlineMs} ms; retry`) };
        sel = after;
      }
      switch (sel.kind) {
        case "refuse":
          return { ok: false, answer: sel.answer };
        case "learn_principals":
          return { ok: false, answer: errorAnswer(403, "forbidden", "object_id is not bound to this pod") };
        case "node": {
          const token = await o.tokens.forNode(query.resource, {
            clientId: query.clientId,
            resourceId: query.resourceId,
            objectId: query.objectId,
          }, deadlineAt);
          return {
            ok: true,
            token,
            clientId: token.clientId || query.clientId || "",
            identity: `node (${sel.reason})`,
          };
        }
        case "identity": {
          const seen = o.caches.changes.version;
          const token = await o.tokens.forIdentity(sel.identity, query.resource, deadlineAt);
          // Authorisation again if anything changed during the (possibly long) fetch: the answer must hold
          // at the moment we send it.
          const now = o.caches.changes.version === seen ? sel : this.select(pod, query);
          if (now.kind !== "identity" || identityKey(now.identity) !== identityKey(sel.identity)) {
            return {
              ok: false,
              answer: now.kind === "refuse" ? now.answer : errorAnswer(
                403,
                "forbidden",
                `identity ${identityKey(sel.identity)} is no longer bound to this pod`,
              ),
            };
          }
          return {
            ok: true,
            token,
            clientId: sel.identity.spec.clientID,
            identity: identityKey(sel.identity),
          };
        }
      }
    } catch (e) {
      if (e instanceof TokenError) {
        return { ok: false, answer: e.pending ? pending(e.answer.description) : e.answer };
      }
      o.log.error("token request failed unexpectedly", { error: e instanceof Error ? e.message : String(e) });
      return { ok: false, answer: errorAnswer(500, "server_error", "internal error") };
    }
  }
}
