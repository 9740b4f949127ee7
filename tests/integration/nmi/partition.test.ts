// A network partition between NMI and the apiserver (the original's #780/#995: 500 "pod list is empty"):
// pods NMI already knows keep their tokens from the watch caches; an IP it does not know gets a retryable
// 503, never a 500; once the network is back the watch catches up and a binding deleted meanwhile is
// refused on the next request.

import assert from "node:assert/strict";
import { Resources } from "../../../lib/kube/rest.ts";
import { TcpRelay, waitUntil } from "../kube/helpers.ts";
import { msiSpec, spawnNmi, startHarness, tokenPath } from "./harness.ts";

Deno.test("apiserver unreachable: known pods still served, unknown callers 503, deletions seen after", async () => {
  const h = await startHarness({ attached: ["id-p"], startNmi: false });
  const relay = new TcpRelay(h.cluster.server);
  const path = await Deno.makeTempFile({ suffix: ".kubeconfig" });
  try {
    const kubeconfig = (await Deno.readTextFile(h.cluster.kubeconfigPath)).replace(
      /server: https:\/\/[^\s]+/,
      `server: ${relay.url}`,
    );
    await Deno.writeTextFile(path, kubeconfig);
    const args = h.nmiArgs(["--identity-wait-deadline", "1s"]);
    args[args.indexOf("--kubeconfig") + 1] = path;
    const id = await h.createIdentity("id-p", msiSpec(h.ids["id-p"]));
    const b = await h.createBinding("b-p", "id-p", "part");
    const pod = await h.createPod("pod-p", { aadpodidbinding: "part" });
    await h.assign(pod, id, b, "Assigned");
    h.nmi = await spawnNmi(args, { NODE_EXTRA_CA_CERTS: h.emu.caCertPath });
    await waitUntil(
      "first token",
      async () => (await h.get(pod.ip, tokenPath())).status === 200,
      20_000,
      100,
    );

    relay.cut();
    const served = await h.get(pod.ip, tokenPath("https://storage.azure.com"));
    assert.equal(served.status, 200, served.text);
    const unknown = await h.get("127.0.0.253", tokenPath());
    assert.equal(unknown.status, 503, unknown.text);
    assert.equal(unknown.headers["retry-after"], "1");
    // Deleted while NMI cannot see it.
    await h.kube.delete(Resources.azureIdentityBindings, "b-p", { namespace: h.ns });

    relay.restore();
    await waitUntil(
      "binding deletion seen",
      async () => (await h.get(pod.ip, tokenPath())).status === 400,
      30_000,
      100,
    );
    const after = await h.get(pod.ip, tokenPath("https://storage.azure.com"));
    assert.equal(after.status, 400, "a cached token outlived its binding");
  } finally {
    await h.close();
    await relay.close();
    await Deno.remove(path);
  }
});
