// One token request, after routing and parsing: caller pod -> authorised identity (re-checked on every
// request, before the cache) -> wait for its assignment if needed -> token -> authorisation checked again
// (a binding deleted while the token was being fetched still refuses). Returns a domain outcome for
// server.ts to render; never throws for anything a client or upstream can cause.

import { type Grant, grantsForPod } from "../lib/api/matching.ts";
import type { AzureAssignedIdentity, AzureIdentityBinding } from "../lib/api/types.ts";
import type { FederatedPod } from "./federated.ts";
import type { Logger } from "../lib/log.ts";
import type { NmiCaches } from "./caches.ts";
import { waitFor } from "./change_feed.ts";
import { type Refusal, refusal } from "./refusal.ts";
import type { TokenQuery } from "./request.ts";
import { type CallerPod, identityKey, selectIdentity, type Selection } from "./select.ts";
import { type CallContext, TokenError, type TokenService } from "./token_service.ts";
import type { Token } from "./token.ts";

interface FlowOptions {
  mode: "standard" | "managed";
  node: string;
  micNamespace: string;
  micServiceAccount: string;
  forceNamespaced: boolean;
  waitDeadlineMs: number;
  caches: NmiCaches;
  tokens: TokenService;
  log: Logger;
  /**
   * IMDS kept answering "Identity not found" for an identity whose AzureAssignedIdentity has been Assigned
   * for longer than `missingAfterMs`: something removed it from the VM / scale set. MIC re-checks it at once
   * (nmi/identity_not_found_event.ts writes the signal).
   */
  onMissingOnNode?: (assigned: AzureAssignedIdentity) => void;
  /** How long an assignment may be missing from IMDS before that is reported (ARM's propagation time). */
  missingAfterMs?: number;
  /** A Warning event on a binding (federated exchange refused); none when absent. */
  warnBinding?: (binding: AzureIdentityBinding, reason: string, message: string) => void;
}

const federatedPods = new WeakMap<CallerPod, FederatedPod>();

/** What a TokenRequest for a federated identity needs of the caller (made once per caller object). */
function federatedPod(pod: CallerPod): FederatedPod {
  let f = federatedPods.get(pod);
  if (!f) {
    f = {
      name: pod.name,
      namespace: pod.namespace,
      uid: pod.uid ?? "",
      serviceAccount: pod.serviceAccountName || "default",
      nodeName: pod.nodeName ?? "",
    };
    federatedPods.set(pod, f);
  }
  return f;
}

export type FlowResult =
  | { ok: true; token: Token; clientId: string; identity: string }
  | { ok: false; refusal: Refusal };

type Chosen = Exclude<Selection, { kind: "wait" } | { kind: "refuse" }>;

export class TokenFlow {
  #opts: FlowOptions;
  /**
   * The last selection per caller (nmi/caller.ts hands out one object per pod version), reused while the
   * caches' version and the (memoised, so identical) query are the same: selection is a pure function of
   * those, and every cache event bumps the version.
   */
  #selected = new WeakMap<CallerPod, { version: number; query: TokenQuery; selection: Selection }>();
  constructor(opts: FlowOptions) {
    this.#opts = opts;
  }

  #grants(pod: CallerPod): Grant[] {
    return grantsForPod(pod, this.#opts.caches.catalog(), this.#opts.forceNamespaced);
  }

  select(pod: CallerPod, query: TokenQuery): Selection {
    const version = this.#opts.caches.changes.version;
    // An object_id request also reads the principal ids learned from tokens, which no cache version tracks.
    const reusable = !query.objectId;
    const hit = reusable ? this.#selected.get(pod) : undefined;
    if (hit && hit.version === version && hit.query === query) return hit.selection;
    const selection = this.#select(pod, query);
    if (reusable) this.#selected.set(pod, { version, query, selection });
    return selection;
  }

  #select(pod: CallerPod, query: TokenQuery): Selection {
    const o = this.#opts;
    const { caches, tokens } = o;
    return selectIdentity({
      mode: o.mode,
      node: o.node,
      micNamespace: o.micNamespace,
      micServiceAccount: o.micServiceAccount,
      pod,
      request: { clientId: query.clientId, resourceId: query.resourceId, objectId: query.objectId },
      exceptions: caches.exceptionsIn(pod.namespace),
      grants: this.#grants(pod),
      assigned: caches.assignedFor(pod.namespace, pod.name),
      principalIdOf: (i) => tokens.principalIdOf(i),
    });
  }

  async run(pod: CallerPod, query: TokenQuery, signal?: AbortSignal): Promise<FlowResult> {
    const call: CallContext = {
      deadlineAt: performance.now() + this.#opts.waitDeadlineMs,
      signal,
      source: `${pod.namespace}/${pod.name}`,
    };
    try {
      if (query.objectId) {
        // Only identities this pod is granted are fetched to learn their object ids.
        const granted = this.#grants(pod).map((g) => g.identity);
        await this.#opts.tokens.learnPrincipals(
          granted,
          query.objectId,
          query.resource,
          call,
          federatedPod(pod),
        );
      }
      const selected = this.select(pod, query);
      const sel = selected.kind === "wait" ? await this.#settle(selected, pod, query, call) : selected;
      if (sel.kind === "refuse") return { ok: false, refusal: sel.refusal };
      if (sel.kind === "node") return await this.#nodeToken(sel.reason, query, call);
      return await this.#identityToken(sel, pod, query, call);
    } catch (e) {
      if (e instanceof TokenError) return { ok: false, refusal: e.refusal };
      this.#opts.log.error("token request failed unexpectedly", {
        error: e instanceof Error ? e.message : String(e),
      });
      return { ok: false, refusal: refusal("internal", "internal error") };
    }
  }

  /** A "wait" selection waits (woken by the watch) until it becomes something else or the deadline. */
  async #settle(
    sel: Selection,
    pod: CallerPod,
    query: TokenQuery,
    call: CallContext,
  ): Promise<Chosen | { kind: "refuse"; refusal: Refusal }> {
    if (sel.kind !== "wait") return sel;
    const after = await waitFor(
      () => {
        const s = this.select(pod, query);
        return s.kind === "wait" ? undefined : s;
      },
      this.#opts.caches.changes,
      call.deadlineAt,
      call.signal,
    );
    if (after) return after;
    return {
      kind: "refuse",
      refusal: refusal("pending", `${sel.reason} after ${this.#opts.waitDeadlineMs} ms; retry`),
    };
  }

  async #nodeToken(
    reason: string,
    query: TokenQuery,
    call: CallContext,
  ): Promise<FlowResult> {
    const selector = { clientId: query.clientId, resourceId: query.resourceId, objectId: query.objectId };
    const token = await this.#opts.tokens.forNode(query.resource, selector, call);
    return {
      ok: true,
      token,
      clientId: token.clientId || query.clientId || "",
      identity: `node (${reason})`,
    };
  }

  async #identityToken(
    sel: Extract<Selection, { kind: "identity" }>,
    pod: CallerPod,
    query: TokenQuery,
    call: CallContext,
  ): Promise<FlowResult> {
    const o = this.#opts;
    const seen = o.caches.changes.version;
    let token: Token;
    try {
      token = await o.tokens.forIdentity(sel.identity, query.resource, call, federatedPod(pod));
    } catch (e) {
      if (e instanceof TokenError && e.federation) this.#warnFederation(sel, pod, e.federation);
      if (e instanceof TokenError && e.missingOnNode) this.#reportMissing(sel.assigned);
      throw e;
    }
    // Authorisation again if anything changed during the (possibly long) fetch: the answer must hold at the
    // moment we send it.
    const now = o.caches.changes.version === seen ? sel : this.select(pod, query);
    if (now.kind !== "identity" || identityKey(now.identity) !== identityKey(sel.identity)) {
      return {
        ok: false,
        refusal: now.kind === "refuse"
          ? now.refusal
          : refusal("forbidden", `identity ${identityKey(sel.identity)} is no longer bound to this pod`),
      };
    }
    return { ok: true, token, clientId: sel.identity.spec.clientID, identity: identityKey(sel.identity) };
  }

  #reportMissing(assigned: AzureAssignedIdentity | undefined): void {
    const o = this.#opts;
    const created = Date.parse(assigned?.metadata.creationTimestamp ?? "");
    if (!assigned || !o.onMissingOnNode || Number.isNaN(created)) return;
    if (Date.now() - created < (o.missingAfterMs ?? 60_000)) return;
    o.onMissingOnNode(assigned);
  }

  #warnFederation(
    sel: Extract<Selection, { kind: "identity" }>,
    pod: CallerPod,
    federation: { code?: number; hint: string },
  ): void {
    const code = federation.code !== undefined ? `AADSTS${federation.code}` : "an Azure AD error";
    this.#opts.warnBinding?.(
      sel.grant.binding,
      "FederatedTokenExchangeFailed",
      `Azure AD refused the federated token exchange for identity ${identityKey(sel.identity)} ` +
        `(pod ${pod.namespace}/${pod.name}) with ${code}: ${federation.hint}`,
    );
  }
}
