// --custom-user-agent reaches the apiserver too (issue 20): the original appended it to the User-Agent of
// its ARM, Azure AD and Kubernetes requests. MIC runs as a real process against a plain-HTTP stand-in for
// the apiserver that records each request's User-Agent.

import assert from "node:assert/strict";
import { MIC_ENTRYPOINT, MIC_PERMISSIONS } from "../../../mic/permissions.ts";
import { NMI_ENTRY, NMI_PERMISSIONS } from "../../../nmi/permissions.ts";

const root = new URL("../../../", import.meta.url).pathname;

Deno.test("MIC: --custom-user-agent is on its Kubernetes requests, after the original's UA shape", async () => {
  const agents: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    agents.push(req.headers.get("user-agent") ?? "");
    return Response.json({ kind: "Status", status: "Failure", code: 503 }, { status: 503 });
  });
  const dir = await Deno.makeTempDir({ prefix: "mic-ua-" });
  try {
    await Deno.writeTextFile(
      `${dir}/kubeconfig`,
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:${server.addr.port}'}}]\n` +
        "users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n",
    );
    await Deno.writeTextFile(
      `${dir}/azure.json`,
      JSON.stringify({
        cloud: "AzureCloud",
        tenantId: crypto.randomUUID(),
        subscriptionId: crypto.randomUUID(),
        resourceGroup: "rg",
        aadClientId: crypto.randomUUID(),
        aadClientSecret: "not-used",
      }),
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...MIC_PERMISSIONS,
        `${root}${MIC_ENTRYPOINT}`,
        `--kubeconfig=${dir}/kubeconfig`,
        `--cloudconfig=${dir}/azure.json`,
        "--http-probe-port=0",
        "--prometheus-port=0",
        "--probe-address=127.0.0.1",
        "--custom-user-agent=acme-platform/2.1",
        "--logtostderr",
      ],
      env: { MIC_POD_NAMESPACE: "default", NO_COLOR: "1" },
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const deadline = Date.now() + 20_000;
      while (!agents.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
    assert.ok(agents.length > 0, "MIC sent a request");
    for (const ua of agents) {
      assert.match(ua, /^aad-pod-identity\/MIC\/[^/ ]+\/[^/ ]+\/[^/ ]+ acme-platform\/2\.1$/);
    }
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MIC and NMI: --version prints the original's line and exits 0", async () => {
  for (const [entry, perms] of [[MIC_ENTRYPOINT, MIC_PERMISSIONS], [NMI_ENTRY, NMI_PERMISSIONS]] as const) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...perms, `${root}${entry}`, "--version"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, entry);
    assert.match(
      new TextDecoder().decode(out.stdout),
      /^MIC Version: \S+ - NMI Version: \S+ - Commit: \S+ - Date: \S+\n$/,
    );
  }
});
