// Matching modes with MIC as a real process: namespaced by flag, by env and by annotation; exceptions
// (they concern NMI, MIC assigns as before); immutable identities; service principals (no ARM call); and
// objects written in the pre-1.6 PascalCase spelling, rewritten once per cluster by the type upgrade.

import assert from "node:assert/strict";
import { Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { micEnv, waitForLog, waitUntil } from "./harness.ts";

const settle = () => new Promise((r) => setTimeout(r, 1_000));

Deno.test("MIC namespaced mode: --forceNamespaced, FORCENAMESPACED=true, the Behavior annotation", async (t) => {
  const env = await micEnv("mic-nsd");
  const other = await env.cluster.namespace("mic-nsd-other");
  try {
    const ss = env.vmss("pool");
    await env.node(`${env.ns}-n0`, ss, 0);
    const id1 = env.uami("id1");
    await env.identity("id1", { type: 0, resourceID: id1.id, clientID: id1.clientId });
    await env.binding("b1", "id1", `sel-${env.ns}`);

    const run = async (label: string, args: string[], extraEnv: Record<string, string>, n: number) => {
      const mic = await env.startMic(`mic-${n}`, args, extraEnv);
      await waitForLog(mic, /leading:/);
      await env.pod(`in-${n}`, `${env.ns}-n0`, `sel-${env.ns}`);
      await env.pod(`out-${n}`, `${env.ns}-n0`, `sel-${env.ns}`, other);
      await waitUntil(
        `${label}: in-${n} Assigned`,
        () => env.aai(`${env.ns}/in-${n}-${env.ns}-id1`)?.status?.status === "Assigned",
      );
      await settle();
      assert.equal(env.aaisOfPods(other).length, 0, `${label}: a pod of another namespace got the identity`);
      assert.equal(env.aai(`default/in-${n}-${env.ns}-id1`), undefined);
      assert.equal((await mic.kill("SIGTERM")).code, 0);
    };
    await t.step("--forceNamespaced", () => run("flag", ["--forceNamespaced"], {}, 1));
    await t.step("FORCENAMESPACED=true", () => run("env", [], { FORCENAMESPACED: "true" }, 2));

    await t.step("annotation on one identity; the other identity stays cluster-wide", async () => {
      const id2 = env.uami("id2");
      await env.identity("id2", { type: 0, resourceID: id2.id, clientID: id2.clientId }, {
        annotations: { "aadpodidentity.k8s.io/Behavior": "namespaced" },
      });
      await env.binding("b2", "id2", `sel-${env.ns}`);
      const mic = await env.startMic("mic-3");
      await waitForLog(mic, /leading:/);
      await env.pod("out-3", `${env.ns}-n0`, `sel-${env.ns}`, other);
      // id1 (no annotation): the other namespace's pod gets it, in `default` as the original
      await waitUntil(
        "out-3 has id1",
        () => env.aai(`default/out-3-${other}-id1`)?.status?.status === "Assigned",
      );
      await settle();
      assert.equal(env.aai(`default/out-3-${other}-id2`), undefined);
      assert.equal(env.aai(`${env.ns}/out-3-${other}-id2`), undefined);
      // and a pod of the identity's own namespace gets id2 in that namespace
      await env.pod("in-3", `${env.ns}-n0`, `sel-${env.ns}`);
      await waitUntil(
        "in-3 has id2",
        () => env.aai(`${env.ns}/in-3-${env.ns}-id2`)?.status?.status === "Assigned",
      );
      await env.deletePod("out-3", other);
      await waitUntil("out-3 released", () => !env.aai(`default/out-3-${other}-id1`));
    });
  } finally {
    await env.close();
  }
});

Deno.test("MIC: service principals need no ARM call; exceptions do not stop assignment; immutable ids stay", async (t) => {
  const env = await micEnv("mic-kinds");
  try {
    const ss = env.vmss("pool");
    await env.node(`${env.ns}-n0`, ss, 0);
    const keep = env.uami("keep");
    await env.identity("keep", { type: 0, resourceID: keep.id, clientID: keep.clientId });
    await env.identity("sp1", {
      type: 1,
      clientID: crypto.randomUUID(),
      tenantID: env.emu.tenantId,
      clientPassword: { name: "sp1-secret", namespace: env.ns },
    });
    await env.identity("sp2", {
      type: 2,
      clientID: crypto.randomUUID(),
      tenantID: env.emu.tenantId,
      clientPassword: { name: "sp2-cert", namespace: env.ns },
    });
    await env.binding("b-sp1", "sp1", `sp-${env.ns}`);
    await env.binding("b-sp2", "sp2", `sp-${env.ns}`);
    await env.binding("b-keep", "keep", `keep-${env.ns}`);
    const mic = await env.startMic("mic-a", [`--immutable-user-msis=${keep.clientId.toUpperCase()}`]);
    await waitForLog(mic, /leading:/);

    await t.step("type 1 and 2: Created -> Assigned with no ARM request at all", async () => {
      await env.pod("sp", `${env.ns}-n0`, `sp-${env.ns}`);
      for (const id of ["sp1", "sp2"]) {
        await waitUntil(
          `${id} Assigned`,
          () => env.aai(`default/sp-${env.ns}-${id}`)?.status?.status === "Assigned",
        );
      }
      assert.equal(env.emu.requests.count({ service: "arm" }), 0);
    });

    await t.step("an exception matching the pod changes nothing for MIC (NMI acts on it)", async () => {
      await env.client.create(Resources.azurePodIdentityExceptions, {
        apiVersion: "aadpodidentity.k8s.io/v1",
        kind: "AzurePodIdentityException",
        metadata: { name: "ex", namespace: env.ns },
        spec: { podLabels: { aadpodidbinding: `keep-${env.ns}` } },
      } as KubeObject);
      await env.pod("k", `${env.ns}-n0`, `keep-${env.ns}`);
      await waitUntil("k Assigned", () => env.aai(`default/k-${env.ns}-keep`)?.status?.status === "Assigned");
      assert.deepEqual(env.armIds(ss), [keep.id.toLowerCase()]);
    });

    await t.step("immutable (client id, any case): released without detaching", async () => {
      await env.deletePod("k");
      await waitUntil("k released", () => !env.aai(`default/k-${env.ns}-keep`));
      await settle();
      assert.deepEqual(env.armIds(ss), [keep.id.toLowerCase()]);
      assert.equal(env.armWrites(), 1);
    });

    await t.step("service principal released with no ARM request", async () => {
      const before = env.emu.requests.count({ service: "arm" });
      await env.deletePod("sp");
      await waitUntil(
        "sp released",
        () => !env.aai(`default/sp-${env.ns}-sp1`) && !env.aai(`default/sp-${env.ns}-sp2`),
      );
      assert.equal(env.emu.requests.count({ service: "arm" }), before);
    });
  } finally {
    await env.close();
  }
});

Deno.test("MIC: PascalCase objects are assigned, and rewritten in camelCase once per cluster", async (t) => {
  const env = await micEnv("mic-case");
  try {
    const ss = env.vmss("pool");
    await env.node(`${env.ns}-n0`, ss, 0);
    const old = env.uami("old");
    const raw = (kind: string, name: string, spec: Record<string, unknown>) =>
      ({
        apiVersion: "aadpodidentity.k8s.io/v1",
        kind,
        metadata: { name, namespace: env.ns },
        spec,
      }) as KubeObject;
    await env.client.create(
      Resources.azureIdentities,
      raw("AzureIdentity", "old", { Type: 0, ResourceID: old.id, ClientID: old.clientId }),
    );
    await env.client.create(
      Resources.azureIdentityBindings,
      raw("AzureIdentityBinding", "old-b", { AzureIdentity: "old", Selector: `old-${env.ns}` }),
    );
    const mic = await env.startMic("mic-a");
    await waitForLog(mic, /type upgrade: \d+ objects rewritten/);

    await t.step("the type upgrade rewrote both in camelCase and recorded it in the ConfigMap", async () => {
      const id = await env.client.get<KubeObject & { spec: Record<string, unknown> }>(
        Resources.azureIdentities,
        "old",
        env.ns,
      );
      assert.equal(id.spec.resourceID, old.id);
      assert.equal(id.spec.ResourceID, undefined);
      const b = await env.client.get<KubeObject & { spec: Record<string, unknown> }>(
        Resources.azureIdentityBindings,
        "old-b",
        env.ns,
      );
      assert.deepEqual(b.spec, { azureIdentity: "old", selector: `old-${env.ns}` });
      const cm = await env.client.get<KubeObject & { data: Record<string, string> }>(
        Resources.configMaps,
        "aad-pod-identity-config",
        env.ns,
      );
      assert.ok(cm.data["type-upgrade-status"]);
    });

    await t.step(
      "a PascalCase object written later is still read and assigned; not rewritten again",
      async () => {
        await mic.kill("SIGTERM");
        const late = env.uami("late");
        await env.client.create(
          Resources.azureIdentities,
          raw("AzureIdentity", "late", { Type: 0, ResourceID: late.id, ClientID: late.clientId }),
        );
        await env.client.create(
          Resources.azureIdentityBindings,
          raw("AzureIdentityBinding", "late-b", { AzureIdentity: "late", Selector: `old-${env.ns}` }),
        );
        const mic2 = await env.startMic("mic-b");
        await waitForLog(mic2, /leading:/);
        await env.pod("p", `${env.ns}-n0`, `old-${env.ns}`);
        await waitUntil(
          "both Assigned",
          () =>
            env.aai(`default/p-${env.ns}-old`)?.status?.status === "Assigned" &&
            env.aai(`default/p-${env.ns}-late`)?.status?.status === "Assigned",
        );
        assert.deepEqual(env.armIds(ss), [late.id.toLowerCase(), old.id.toLowerCase()].sort());
        const lateId = await env.client.get<KubeObject & { spec: Record<string, unknown> }>(
          Resources.azureIdentities,
          "late",
          env.ns,
        );
        assert.equal(lateId.spec.ResourceID, late.id);
        assert.ok(
          !mic2.lines.some((l) => /type upgrade: \d+ objects rewritten/.test(l)),
        );
      },
    );
  } finally {
    await env.close();
  }
});
