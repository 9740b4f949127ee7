// MIC's Azure settings as the generated manifests give them (issue 20): the node's root-only azure.json
// (AKS writes it 0600) read by a root MIC, as the original did; or the original's noazurejson Secret keys as
// env vars, with MIC non-root. Each manifest passes a server-side dry-run apply on the real apiserver, and
// MIC starts from each configuration and assigns an identity through the Azure emulator.

import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import type { Deployment, EnvVar } from "../../../scripts/manifests/k8s.ts";
import { type MicEnv, micEnv, waitForLog, waitUntil } from "../mic/harness.ts";

const root = new URL("../../../", import.meta.url).pathname;

async function micContainer(file: string) {
  const docs = parseAllDocuments(await Deno.readTextFile(`${root}${file}`)).map((d) => d.toJS());
  const dep = docs.find((d) => d?.kind === "Deployment" && d.metadata.name === "mic") as Deployment;
  return dep.spec.template.spec.containers[0];
}

async function dryRunApply(env: MicEnv, file: string): Promise<void> {
  const r = await env.cluster.kubectl(["apply", "--dry-run=server", "-f", `${root}${file}`]);
  assert.equal(r.code, 0, `${file}: ${r.stderr}`);
}

/** Can `uid` read `path`? Asked of the kernel with setpriv (util-linux), as the container's user. */
async function readableAs(uid: number, path: string): Promise<boolean> {
  const out = await new Deno.Command("setpriv", {
    args: [`--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "cat", path],
    stdout: "null",
    stderr: "null",
  }).output();
  return out.success;
}

/** Assigns one identity to a pod on a scale set: proof that MIC reached ARM with its settings. */
async function assignsOne(env: MicEnv, mic: Awaited<ReturnType<MicEnv["startMic"]>>): Promise<void> {
  const { ns } = env;
  const ss = env.vmss("pool");
  const id = env.uami("id1");
  await env.node(`${ns}-ss-0`, ss, 0);
  await env.identity("id1", { type: 0, resourceID: id.id, clientID: id.clientId });
  await env.binding("b1", "id1", `sel-${ns}`);
  await waitForLog(mic, /leading:/);
  await env.pod("app", `${ns}-ss-0`, `sel-${ns}`);
  await waitUntil("Assigned", () => env.aai(`default/app-${ns}-id1`)?.status?.status === "Assigned");
  assert.deepEqual(env.armIds(ss), [id.id.toLowerCase()]);
}

Deno.test("azure.json: the generated MIC runs as root and reads a root-only (0600) azure.json", async () => {
  const env = await micEnv("azjson");
  try {
    await dryRunApply(env, "deploy/aad-pod-identity.yaml");
    const c = await micContainer("deploy/aad-pod-identity.yaml");
    assert.ok(c.args.includes("--cloudconfig=/etc/kubernetes/azure.json"));
    const path = await env.writeAzureJson(env.sp);
    await Deno.chmod(path, 0o600);
    // What AKS does to the file: the manifest's user reads it; the non-root user of before could not.
    assert.equal(await readableAs(c.securityContext.runAsUser!, path), true);
    assert.equal(await readableAs(65532, path), false);
    const mic = await env.startMic("mic-json", [`--cloudconfig=${path}`]);
    await assignsOne(env, mic);
  } finally {
    await env.close();
  }
});

Deno.test("azure.json: the noazurejson variant configures a non-root MIC from the original's Secret keys", async () => {
  const env = await micEnv("azsecret");
  try {
    await dryRunApply(env, "deploy/aad-pod-identity-noazurejson.yaml");
    const c = await micContainer("deploy/aad-pod-identity-noazurejson.yaml");
    assert.equal(c.securityContext.runAsNonRoot, true);
    assert.ok(!c.args.some((a) => a.startsWith("--cloudconfig")));
    // The Secret as the original's deploy/infra/noazurejson documents it.
    const secret = {
      Cloud: "AzureStackCloud",
      SubscriptionID: env.emu.subscriptionId,
      ResourceGroup: env.ns,
      VMType: "vmss",
      TenantID: env.sp.tenantId,
      ClientID: env.sp.clientId,
      ClientSecret: env.sp.secret!,
    };
    await env.client.create(Resources.secrets, {
      metadata: { name: "aadpodidentity-admin-secret", namespace: env.ns },
      data: Object.fromEntries(Object.entries(secret).map(([k, v]) => [k, btoa(v)])),
    } as KubeObject);
    // What the kubelet does with the container's secretKeyRefs: read the Secret, set the env vars.
    const stored = await env.client.get<KubeObject & { data: Record<string, string> }>(
      Resources.secrets,
      "aadpodidentity-admin-secret",
      env.ns,
    );
    const fromSecret: Record<string, string> = {};
    for (const e of c.env as EnvVar[]) {
      const ref = e.valueFrom && "secretKeyRef" in e.valueFrom ? e.valueFrom.secretKeyRef : undefined;
      if (!ref) continue;
      const v = stored.data[ref.key];
      if (v === undefined) {
        assert.ok(ref.optional, `${ref.key} is required but not in the Secret`);
        continue;
      }
      fromSecret[e.name] = atob(v);
    }
    assert.equal(Object.keys(fromSecret).length, 7);
    // `--cloudconfig=` (empty) undoes the harness's azure.json: the settings come from env only.
    const mic = await env.startMic("mic-secret", ["--cloudconfig="], fromSecret);
    await assignsOne(env, mic);
  } finally {
    await env.close();
  }
});
