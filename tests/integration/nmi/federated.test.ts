// Federated identities through NMI as a real process: the caller pod's service-account token (TokenRequest on
// the real apiserver, whose issuer the emulated Azure AD verifies by discovery) exchanged at Azure AD; no
// IMDS call; one TokenRequest and one exchange for 1,000 concurrent requests; each wrong credential gives
// the pod a clear error and the binding a Warning event with the AADSTS code, and fixing it heals at once.

import assert from "node:assert/strict";
import type { AzureIdentity, AzureIdentityBinding } from "../../../lib/api/types.ts";
import { Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { decodeJwt } from "../../../scripts/sandbox/azure/jwt.ts";
import { sharedCluster } from "../../support/cluster.ts";
import { clusterCaPem } from "../../support/federation.ts";
import { type Harness, msiSpec, request, startHarness, tokenPath, waitUntil } from "./harness.ts";

const EXCHANGE = "api://AzureADTokenExchange";

async function kubeCalls(h: Harness): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${h.nmi.probePort}/metrics`);
  const text = await res.text();
  const m =
    /aadpodidentity_imds_operations_duration_seconds_count\{operation_type="service_account_token"\} (\d+)/
      .exec(text);
  return m ? Number(m[1]) : 0;
}

async function warnings(h: Harness, binding: string): Promise<string[]> {
  const list = await h.kube.list<KubeObject & { reason: string; message: string; type: string }>(
    Resources.events,
    { namespace: h.ns, fieldSelector: `involvedObject.name=${binding}` },
  );
  return list.items.filter((e) => e.type === "Warning").map((e) => `${e.reason}: ${e.message}`);
}

interface Setup {
  h: Harness;
  identity: AzureIdentity;
  binding: AzureIdentityBinding;
  pod: { name: string; ip: string; uid: string };
  subject: string;
  put(p: { issuer?: string; subject?: string; audiences?: string[] }): void;
}

async function setup(
  o: { annotation?: string; nmiArgs?: string[] } = { annotation: "true" },
): Promise<Setup> {
  const cluster = await sharedCluster();
  const h = await startHarness({
    detached: ["fed"],
    emulator: { federationCaCerts: [await clusterCaPem(cluster)] },
    nmiArgs: ["--tenant-id", "placeholder"],
    startNmi: false,
  });
  await h.startNmi(["--tenant-id", h.emu.tenantId, ...(o.nmiArgs ?? [])]);
  await h.kube.create(
    Resources.serviceAccounts,
    { metadata: { name: "workload", namespace: h.ns } } as KubeObject,
  );
  const subject = `system:serviceaccount:${h.ns}:workload`;
  const fed = h.ids.fed;
  const put: Setup["put"] = (p) =>
    h.emu.putFederatedCredential(fed.id, {
      name: "pod-sa",
      issuer: p.issuer ?? cluster.server,
      subject: p.subject ?? subject,
      audiences: p.audiences ?? [EXCHANGE],
    });
  put({});
  const identity = await h.createIdentity(
    "fed",
    msiSpec(fed),
    h.ns,
    o.annotation === undefined ? {} : { "aadpodidentity.k8s.io/federated": o.annotation },
  );
  const binding = await h.createBinding("b-fed", "fed", `fed-${h.ns}`);
  const pod = await h.createPod("app", { aadpodidbinding: `fed-${h.ns}` }, {
    serviceAccountName: "workload",
  });
  await h.assign(pod, identity, binding, "Assigned");
  return { h, identity, binding, pod, subject, put };
}

Deno.test("NMI federated: a token by exchange, no IMDS call, IMDS JSON with string fields, claims of the identity", async () => {
  const s = await setup();
  const { h } = s;
  try {
    const r = await h.get(s.pod.ip, tokenPath("https://management.azure.com/"));
    assert.equal(r.status, 200, r.text);
    for (const [k, v] of Object.entries(r.json)) assert.equal(typeof v, "string", `${k} is a string`);
    assert.equal(r.json.resource, "https://management.azure.com/");
    assert.equal(r.json.client_id, h.ids.fed.clientId);
    const claims = await h.emu.verifyToken(r.json.access_token, {
      audience: "https://management.azure.com/",
    });
    assert.equal(claims.appid, h.ids.fed.clientId);
    assert.equal(claims.xms_mirid, h.ids.fed.id);
    assert.equal(h.emu.requests.count({ route: "imds.token" }), 0);
    assert.deepEqual(h.emu.getIdentities(h.vmssId).userAssignedIdentities ?? {}, {});
    // What NMI presented: a token of the pod's service account, bound to the pod, 10 minutes.
    const exchange = h.emu.requests.list({ route: "aad.token" });
    assert.equal(exchange.length, 1);
    assert.equal(await kubeCalls(h), 1);
    // The token of a resource without a trailing slash is for exactly that resource.
    const vault = await h.get(s.pod.ip, tokenPath("https://vault.azure.net"));
    assert.equal(vault.status, 200, vault.text);
    assert.equal(decodeJwt(vault.json.access_token).payload.aud, "https://vault.azure.net");
    // The service-account token is reused for the second exchange.
    assert.equal(await kubeCalls(h), 1);
    // A pod on this node with another service account has no credential: refused with Azure AD's reason.
    await h.kube.create(
      Resources.serviceAccounts,
      { metadata: { name: "other", namespace: h.ns } } as KubeObject,
    );
    const other = await h.createPod("other", { aadpodidbinding: `fed-${h.ns}` }, {
      serviceAccountName: "other",
    });
    await h.assign(other, s.identity, s.binding, "Assigned");
    const refused = await h.get(other.ip, tokenPath("https://vault.azure.net"));
    assert.equal(refused.status, 403, refused.text);
    assert.match(refused.json.error_description, /AADSTS700213/);
    assert.match(refused.json.error_description, new RegExp(`system:serviceaccount:${h.ns}:other`));
    // Nothing secret in the logs.
    const logs = h.nmi.logs.join("\n");
    assert.ok(!logs.includes(r.json.access_token));
    assert.ok(!/eyJ[\w-]{20,}\.eyJ/.test(logs), "no JWT in NMI's logs");
  } finally {
    await h.close();
  }
});

Deno.test("NMI federated: 1,000 concurrent requests -> one TokenRequest and one exchange", async () => {
  const s = await setup();
  const { h } = s;
  try {
    const answers = await Promise.all(
      Array.from(
        { length: 1000 },
        () =>
          request(h.nmi.port, s.pod.ip, tokenPath("https://storage.azure.com/"), {
            headers: { Metadata: "true" },
          }),
      ),
    );
    const statuses = new Map<number, number>();
    for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
    assert.deepEqual([...statuses], [[200, 1000]]);
    assert.equal(new Set(answers.map((a) => a.json.access_token)).size, 1);
    assert.equal(h.emu.requests.count({ route: "aad.token" }), 1);
    assert.equal(await kubeCalls(h), 1);
  } finally {
    await h.close();
  }
});

Deno.test("NMI federated: wrong subject, issuer or audience -> clear error and a Warning event with the AADSTS code; fixing heals", async (t) => {
  const s = await setup();
  const { h } = s;
  const cluster = await sharedCluster();
  try {
    const cases: [string, Parameters<Setup["put"]>[0], number, RegExp][] = [
      ["subject", { subject: s.subject.toUpperCase() }, 700213, new RegExp(`subject must be '${s.subject}'`)],
      ["issuer", { issuer: `${cluster.server}/elsewhere` }, 700211, new RegExp(`issuer '${cluster.server}'`)],
      ["audience", { audiences: ["api://other"] }, 700212, /audience must be 'api:\/\/AzureADTokenExchange'/],
    ];
    let n = 0;
    for (const [what, wrong, code, hint] of cases) {
      await t.step(`wrong ${what}`, async () => {
        s.put(wrong);
        // A resource not asked for before, so nothing cached answers.
        const resource = `https://vault.azure.net/${what}`;
        h.emu.registerResource(resource);
        const r = await h.get(s.pod.ip, tokenPath(resource));
        assert.equal(r.status, 403, r.text);
        assert.equal(r.json.error, "invalid_client");
        assert.match(r.json.error_description, new RegExp(`AADSTS${code}`));
        assert.match(r.json.error_description, hint);
        await waitUntil(
          `Warning event with AADSTS${code}`,
          async () =>
            (await warnings(h, "b-fed")).some((w) =>
              w.startsWith("FederatedTokenExchangeFailed") && w.includes(`AADSTS${code}`) && hint.test(w)
            ),
        );
        s.put({});
        const healed = await h.get(s.pod.ip, tokenPath(resource));
        assert.equal(healed.status, 200, healed.text);
        n++;
      });
    }
    assert.equal(n, 3);
  } finally {
    await h.close();
  }
});

Deno.test("NMI federated: a pod on another node gets nothing through this NMI, and no TokenRequest is made", async () => {
  const s = await setup();
  const { h } = s;
  try {
    const elsewhere = await h.createPod("far", { aadpodidbinding: `fed-${h.ns}` }, {
      serviceAccountName: "workload",
      node: `${h.node}-other`,
    });
    await h.assign(elsewhere, s.identity, s.binding, "Assigned", `${h.node}-other`);
    const r = await h.get(elsewhere.ip, tokenPath("https://vault.azure.net"));
    assert.notEqual(r.status, 200, r.text);
    assert.equal(await kubeCalls(h), 0);
    assert.equal(h.emu.requests.count({ route: "aad.token" }), 0);
  } finally {
    await h.close();
  }
});

Deno.test('NMI --federated-by-default: an identity without the annotation is federated; "false" is not', async () => {
  const s = await setup({ nmiArgs: ["--federated-by-default"] });
  const { h } = s;
  try {
    assert.deepEqual(s.identity.metadata.annotations, {});
    const r = await h.get(s.pod.ip, tokenPath("https://vault.azure.net"));
    assert.equal(r.status, 200, r.text);
    assert.equal(h.emu.requests.count({ route: "imds.token" }), 0);
    assert.equal(h.emu.requests.count({ route: "aad.token" }), 1);
  } finally {
    await h.close();
  }
  const off = await setup({ annotation: "false", nmiArgs: ["--federated-by-default"] });
  try {
    // Not federated, and not attached to the scale set: the node's IMDS has nothing for it.
    const r = await off.h.get(off.pod.ip, tokenPath("https://vault.azure.net"));
    assert.notEqual(r.status, 200, r.text);
    assert.ok(off.h.emu.requests.count({ route: "imds.token" }) > 0);
    assert.equal(off.h.emu.requests.count({ route: "aad.token" }), 0);
  } finally {
    await off.h.close();
  }
});
