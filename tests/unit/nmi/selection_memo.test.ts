// The token flow reuses a caller's selection while nothing changed (no grant lookup, sort or assignment scan
// per cached token) and never past a change: every cache event bumps the version the reuse is keyed on.

import assert from "node:assert/strict";
import type { IdentityCatalog } from "../../../lib/api/matching.ts";
import type { AzureAssignedIdentity } from "../../../lib/api/types.ts";
import { createLogger } from "../../../lib/log.ts";
import type { Pod } from "../../../lib/kube/core.ts";
import type { NmiCaches } from "../../../nmi/caches.ts";
import { callerPod } from "../../../nmi/caller.ts";
import { ChangeFeed } from "../../../nmi/change_feed.ts";
import { parseTokenQuery } from "../../../nmi/request.ts";
import { TokenFlow } from "../../../nmi/token_flow.ts";
import type { TokenService } from "../../../nmi/token_service.ts";
import { assigned, binding, identity } from "./fixtures.ts";

const NODE = "node-a";
const raw: Pod = {
  metadata: { name: "web", namespace: "apps", uid: "u1", labels: { aadpodidbinding: "sel" } },
  spec: { nodeName: NODE },
} as unknown as Pod;

function flowWithCounters() {
  const id = identity("apps", "id-a");
  const b = binding("apps", "b-a", "id-a", "sel");
  const changes = new ChangeFeed();
  let bindings = [b];
  const counts = { bindingLookups: 0 };
  const aai: AzureAssignedIdentity = assigned(id, b, callerPod(raw), NODE, "Assigned");
  const catalog: IdentityCatalog = {
    bindingsForSelector: (s) => {
      counts.bindingLookups++;
      return bindings.filter((x) => x.spec.selector === s);
    },
    identity: (ns, name) => (ns === id.metadata.namespace && name === id.metadata.name ? id : undefined),
  };
  const caches = { changes, catalog: () => catalog, exceptionsIn: () => [], assignedFor: () => [aai] };
  const flow = new TokenFlow({
    mode: "standard",
    node: NODE,
    micNamespace: "kube-system",
    micServiceAccount: "mic",
    forceNamespaced: false,
    waitDeadlineMs: 100,
    caches: caches as unknown as NmiCaches,
    tokens: { principalIdOf: () => undefined } as unknown as TokenService,
    log: createLogger({ format: "text", level: "error" }),
  });
  const unbind = () => {
    bindings = [];
    changes.notify();
  };
  return { flow, counts, unbind };
}

function query(raw: string) {
  const q = parseTokenQuery(raw);
  assert.ok(q.ok);
  return q.value;
}

Deno.test("token flow: one selection per caller and query while the caches are unchanged; a change re-selects", () => {
  const { flow, counts, unbind } = flowWithCounters();
  const pod = callerPod(raw);
  assert.equal(callerPod(raw), pod, "one caller object per pod object");
  const q = query("api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net");
  const first = flow.select(pod, q);
  assert.equal(first.kind, "identity");
  for (let i = 0; i < 100; i++) assert.equal(flow.select(pod, q), first);
  assert.equal(counts.bindingLookups, 1);
  // Another query is selected on its own.
  assert.equal(flow.select(pod, query("api-version=2018-02-01&resource=x&client_id=other")).kind, "refuse");
  unbind();
  const after = flow.select(pod, q);
  assert.equal(after.kind, "refuse");
  assert.equal(counts.bindingLookups, 3);
});

Deno.test("token flow: object_id requests are selected every time (learned principal ids carry no version)", () => {
  const { flow, counts } = flowWithCounters();
  const q = query("api-version=2018-02-01&resource=x&object_id=00000000-0000-0000-0000-000000000001");
  flow.select(callerPod(raw), q);
  flow.select(callerPod(raw), q);
  assert.equal(counts.bindingLookups, 2);
});
