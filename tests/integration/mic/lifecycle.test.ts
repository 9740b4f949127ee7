// MIC as a real process against the real apiserver and the Azure emulator: the AzureAssignedIdentity
// lifecycle of the original (docs/upstream.md, "## MIC assignment algorithm") and the ARM state behind it,
// for scale-set nodes and a standalone VM.

import assert from "node:assert/strict";
import { Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { micEnv, waitForLog, waitUntil } from "./harness.ts";

Deno.test("MIC lifecycle: assign, share, release, move, edit, delete (scale sets and a VM)", async (t) => {
  const env = await micEnv("mic-life");
  const { ns, client } = env;
  try {
    const ss1 = env.vmss("pool1");
    const vm1 = env.vm("vm1");
    const id1 = env.uami("id1");
    const id2 = env.uami("id2");
    await env.node(`${ns}-ss1-0`, ss1, 0);
    await env.node(`${ns}-ss1-1`, ss1, 1);
    await env.node(`${ns}-vm1`, vm1);
    await env.identity("id1", { type: 0, resourceID: id1.id, clientID: id1.clientId });
    // Bindings select pods in every namespace: a selector of this test's own keeps other tests' leftovers out.
    const web = `web-${ns}`;
    await env.binding("b1", "id1", web);
    const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const probePort = (free.addr as Deno.NetAddr).port;
    free.close();
    const mic = await env.startMic("mic-a", [
      `--http-probe-port=${probePort}`,
      `--prometheus-port=${probePort}`,
    ]);
    await waitForLog(mic, /leading:/);
    const key = (pod: string, id = "id1") => `default/${pod}-${ns}-${id}`;
    const status = (k: string) => env.aai(k)?.status?.status;

    await t.step(
      "bound pod -> Created, then Assigned, and the identity on the node's scale set",
      async () => {
        await env.pod("web-0", `${ns}-ss1-0`, web);
        await waitUntil("web-0 Assigned", () => status(key("web-0")) === "Assigned");
        assert.deepEqual(env.statuses.get(key("web-0")), ["Created", "Assigned"]);
        assert.deepEqual(env.armIds(ss1), [id1.id.toLowerCase()]);
        const a = env.aai(key("web-0"))!;
        assert.deepEqual(a.metadata.labels, { nodename: `${ns}-ss1-0`, podname: "web-0", podnamespace: ns });
        assert.deepEqual(a.metadata.finalizers, ["azureassignedidentity.finalizers.aadpodidentity.k8s.io"]);
        const spec = a.spec as Record<string, Record<string, unknown>>;
        assert.equal(spec.azureIdentityRef.kind, "AzureIdentity");
        assert.equal(spec.azureIdentityRef.apiVersion, "aadpodidentity.k8s.io/v1");
        assert.equal(spec.azureBindingRef.kind, "AzureIdentityBinding");
        assert.equal(env.armWrites(), 1);
      },
    );

    await t.step("second pod on the same scale set: Assigned with no PATCH (already there)", async () => {
      await env.pod("web-1", `${ns}-ss1-1`, web);
      await waitUntil("web-1 Assigned", () => status(key("web-1")) === "Assigned");
      assert.equal(env.armWrites(), 1);
    });

    await t.step(
      "one of two pods deleted: Unassigned -> gone, identity kept (still used on the set)",
      async () => {
        await env.deletePod("web-0");
        await waitUntil("web-0 gone", () => !env.aai(key("web-0")));
        assert.deepEqual(env.statuses.get(key("web-0")), ["Created", "Assigned", "Unassigned", "<deleted>"]);
        assert.deepEqual(env.armIds(ss1), [id1.id.toLowerCase()]);
        assert.equal(env.armWrites(), 1);
      },
    );

    await t.step("standalone VM node beside scale-set nodes", async () => {
      await env.pod("web-2", `${ns}-vm1`, web);
      await waitUntil("web-2 Assigned", () => status(key("web-2")) === "Assigned");
      assert.deepEqual(env.armIds(vm1), [id1.id.toLowerCase()]);
      assert.equal(env.emu.requests.count({ route: "vm.patch", caller: env.sp.clientId }), 1);
    });

    await t.step("last pod on the scale set deleted: identity removed from it", async () => {
      await env.deletePod("web-1");
      await waitUntil("web-1 gone", () => !env.aai(key("web-1")));
      await waitUntil("id1 off pool1", () => env.armIds(ss1).length === 0);
      assert.deepEqual(env.armIds(vm1), [id1.id.toLowerCase()]);
    });

    await t.step("pod moves node (recreated under the same name): follows it, old VM released", async () => {
      await env.deletePod("web-2");
      await waitUntil("web-2 pod gone", async () => {
        try {
          await client.get(Resources.pods, "web-2", ns);
          return false;
        } catch {
          return true;
        }
      });
      await env.pod("web-2", `${ns}-ss1-0`, web);
      await waitUntil(
        "web-2 Assigned on ss1-0",
        () =>
          status(key("web-2")) === "Assigned" &&
          env.aai(key("web-2"))?.metadata.labels?.nodename === `${ns}-ss1-0`,
      );
      await waitUntil("id1 off vm1", () => env.armIds(vm1).length === 0);
      assert.deepEqual(env.armIds(ss1), [id1.id.toLowerCase()]);
    });

    await t.step("identity edited (new resourceID): new id attached, old one detached", async () => {
      const cur = await client.get<KubeObject & { spec: Record<string, unknown> }>(
        Resources.azureIdentities,
        "id1",
        ns,
      );
      await client.update(Resources.azureIdentities, {
        ...cur,
        spec: { ...cur.spec, resourceID: id2.id, clientID: id2.clientId },
      });
      await waitUntil("ss1 has only id2", () => env.armIds(ss1).join() === id2.id.toLowerCase());
      await waitUntil("web-2 Assigned with id2", () => {
        const a = env.aai(key("web-2"));
        const ref = (a?.spec as { azureIdentityRef?: { spec?: { resourceID?: string } } })?.azureIdentityRef;
        return a?.status?.status === "Assigned" && ref?.spec?.resourceID === id2.id;
      });
    });

    await t.step("binding deleted: AzureAssignedIdentity gone, identity detached", async () => {
      await client.delete(Resources.azureIdentityBindings, "b1", { namespace: ns });
      await waitUntil("web-2 gone", () => !env.aai(key("web-2")));
      await waitUntil("ss1 empty", () => env.armIds(ss1).length === 0);
    });

    await t.step("node deleted: its AzureAssignedIdentity goes and the scale set is cleaned up", async () => {
      await env.deletePod("web-2");
      // Bindings select pods in every namespace: a selector of this test's own keeps other tests' leftovers out.
      const web = `web-${ns}`;
      await env.binding("b1", "id1", web);
      await env.pod("web-4", `${ns}-ss1-1`, web);
      await waitUntil("web-4 Assigned", () => status(key("web-4")) === "Assigned");
      await waitUntil("ss1 has id2", () => env.armIds(ss1).join() === id2.id.toLowerCase());
      // The pod is left behind (no pod GC runs here): a pod on a node that is gone gets nothing.
      await client.delete(Resources.nodes, `${ns}-ss1-1`);
      await waitUntil("web-4 gone", () => !env.aai(key("web-4")));
      await waitUntil("ss1 empty again", () => env.armIds(ss1).length === 0);
    });

    await t.step("/healthz, /readyz and /metrics (ARM calls by operation, cycles, assigned)", async () => {
      const get = async (path: string) => {
        const res = await fetch(`http://127.0.0.1:${probePort}${path}`);
        return { status: res.status, body: await res.text() };
      };
      assert.equal((await get("/healthz")).status, 200);
      assert.deepEqual(await get("/readyz"), { status: 200, body: "ok\n" });
      const metrics = (await get("/metrics")).body;
      assert.match(
        metrics,
        /aadpodidentity_cloud_provider_operations_duration_seconds_count\{operation_type="vmss_update"\} [1-9]/,
      );
      assert.match(metrics, /aadpodidentity_mic_cycle_count [1-9]/);
      assert.match(metrics, /aadpodidentity_assigned_identities\{status="Assigned"\} \d+/);
      assert.equal((await get("/debug/pprof/")).status, 404);
    });

    await t.step("SIGTERM: MIC hands the lease back and exits 0", async () => {
      const s = await mic.kill("SIGTERM");
      assert.equal(s.code, 0, mic.lines.slice(-20).join("\n"));
    });
  } finally {
    await env.close();
  }
});
