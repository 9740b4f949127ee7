import assert from "node:assert/strict";
import { archiveImageName, podProgress } from "../../../scripts/sandbox/kubelet_sandbox.ts";
import { parseUp } from "../../../scripts/sandbox/sandbox.ts";

Deno.test("sandbox up args: the process mode by default, --loopback, --kubelet with 1 or 2 nodes; anything else refused", () => {
  assert.deepEqual(parseUp([]), {});
  assert.deepEqual(parseUp(["--loopback"]), { loopback: true });
  assert.deepEqual(parseUp(["--kubelet"]), { kubelet: { nodes: 1 } });
  assert.deepEqual(parseUp(["--kubelet", "--nodes", "2"]), { kubelet: { nodes: 2 } });
  assert.deepEqual(parseUp(["--kubelet", "--nodes=1"]), { kubelet: { nodes: 1 } });
  for (
    const bad of [
      ["--kubelet", "--nodes", "3"],
      ["--kubelet", "--nodes"],
      ["--kubelet", "--nodes=0"],
      ["--kubelet", "extra"],
      ["--kubelet", "--nodes", "1", "x"],
      ["--nodes", "2"],
      ["--loopback", "--kubelet"],
    ]
  ) {
    assert.equal(parseUp(bad), undefined, JSON.stringify(bad));
  }
});

async function tarOf(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir();
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${name}`, text);
  const out = await new Deno.Command("tar", { args: ["-cf", `${dir}.tar`, "-C", dir, ...Object.keys(files)] })
    .output();
  assert.ok(out.success);
  await Deno.remove(dir, { recursive: true });
  return `${dir}.tar`;
}

Deno.test("image archives: the name a docker archive's manifest or an OCI index carries; none when neither names one", async () => {
  const docker = await tarOf({ "manifest.json": JSON.stringify([{ RepoTags: ["my-app:1"], Layers: [] }]) });
  const oci = await tarOf({
    "index.json": JSON.stringify({
      manifests: [{ annotations: { "io.containerd.image.name": "example.com/app:2" } }],
    }),
    "oci-layout": "{}",
  });
  const nameless = await tarOf({ "index.json": JSON.stringify({ manifests: [{}] }) });
  try {
    assert.equal(await archiveImageName(docker), "my-app:1");
    assert.equal(await archiveImageName(oci), "example.com/app:2");
    assert.equal(await archiveImageName(nameless), undefined);
  } finally {
    for (const f of [docker, oci, nameless]) await Deno.remove(f);
  }
});

Deno.test("kubelet pod progress: Ready, ran to its end, stuck on a missing image, or not yet", () => {
  assert.equal(
    podProgress({ spec: {}, status: { conditions: [{ type: "Ready", status: "True" }] } }),
    "ready",
  );
  assert.equal(podProgress({ spec: {}, status: { phase: "Succeeded" } }), "ended");
  assert.equal(podProgress({ spec: {}, status: { phase: "Failed" } }), "ended");
  assert.deepEqual(
    podProgress({
      spec: {},
      status: {
        containerStatuses: [{ state: { waiting: { reason: "ErrImagePull", message: "no registry" } } }],
      },
    }),
    { stuck: "ErrImagePull: no registry" },
  );
  assert.equal(
    podProgress({
      spec: {},
      status: { containerStatuses: [{ state: { waiting: { reason: "ContainerCreating" } } }] },
    }),
    undefined,
  );
  assert.equal(podProgress({ spec: {}, status: { phase: "Pending" } }), undefined);
});
