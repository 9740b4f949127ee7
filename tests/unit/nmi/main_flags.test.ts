import assert from "node:assert/strict";
import { parseFlags } from "../../../lib/flags.ts";
import { NMI_FLAGS, validateFlags } from "../../../nmi/config.ts";
import { NMI_ENTRY, NMI_PERMISSIONS } from "../../../nmi/permissions.ts";
import { defaultOptions } from "../../../scripts/manifests/options.ts";
import { MIC_SERVICE_ACCOUNT } from "../../../scripts/manifests/rbac.ts";
import { defaultExceptions } from "../../../scripts/manifests/workloads.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;

Deno.test("the deno.json nmi task runs NMI with exactly the shipped permission flags", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks as Record<string, string>;
  assert.equal(tasks.nmi, `deno run ${NMI_PERMISSIONS.join(" ")} ${NMI_ENTRY}`);
  const perms: readonly string[] = NMI_PERMISSIONS;
  assert.ok(!perms.some((p) => p === "-A" || p === "--allow-all" || p === "--allow-run"));
  // Subprocesses: only the iptables/conntrack/sysctl binaries, by name.
  assert.deepEqual(perms.filter((p) => p.startsWith("--allow-run")), [
    "--allow-run=iptables-save,iptables-restore,conntrack,sysctl",
  ]);
});

Deno.test("original manifests' NMI args parse; managed mode needs forceNamespaced; node required", () => {
  const args = [
    "--node=aks-1",
    "--http-probe-port=8085",
    "--operation-mode=standard",
    "--kubelet-config=/etc/default/kubelet",
    "--metadata-header-required=true",
    "--retry-attempts-for-created=16",
    "--enableScaleFeatures=true",
    "-MICNamespace",
    "kube-system",
  ];
  const { values } = parseFlags(NMI_FLAGS, args);
  assert.equal(values.node, "aks-1");
  assert.equal(values.MICNamespace, "kube-system");
  assert.deepEqual(validateFlags(values), []);
  const managed = parseFlags(NMI_FLAGS, ["--node", "n", "--operation-mode", "managed"]).values;
  assert.match(validateFlags(managed).join(), /forceNamespaced/);
  assert.match(validateFlags(parseFlags(NMI_FLAGS, []).values).join(), /--node/);
  const env =
    parseFlags(NMI_FLAGS, [], (n) => ({ NODE_NAME: "from-env", FORCENAMESPACED: "true" })[n]).values;
  assert.equal(env.node, "from-env");
  assert.equal(env.forceNamespaced, true);
});

Deno.test("deno task nmi --help lists the flags and exits 0", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...NMI_PERMISSIONS, NMI_ENTRY, "--help"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0);
  const text = new TextDecoder().decode(out.stdout);
  for (const name of Object.keys(NMI_FLAGS)) assert.ok(text.includes(`--${name} `), name);
  const bad = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...NMI_PERMISSIONS, NMI_ENTRY, "--no-such-flag"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /unknown flag --no-such-flag/);
});

Deno.test("MIC's pods are recognised by the service account and namespace the manifests give MIC", () => {
  const o = defaultOptions("standard");
  assert.equal(NMI_FLAGS["mic-service-account"].default, MIC_SERVICE_ACCOUNT);
  assert.equal(NMI_FLAGS.MICNamespace.default, o.namespace);
  // The manifests no longer ship an exception on MIC's labels (a pod labelled like MIC posed as MIC).
  assert.ok(defaultExceptions(o).every((e) => e.metadata.name !== "mic-exception"));
});
