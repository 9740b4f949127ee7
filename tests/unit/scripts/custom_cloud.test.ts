// A custom cloud (Azure Stack) as a deploy option: `deno task deploy --custom-cloud-file PATH` mounts the
// node's environment file into MIC and names it in AZURE_ENVIRONMENT_FILEPATH, as the original chart's
// mic.customCloud did; without the option nothing of it appears.

import assert from "node:assert/strict";
import { parseDeployArgs } from "../../../scripts/deploy.ts";
import { installationObjects } from "../../../scripts/manifests.ts";
import type { Deployment, Manifest } from "../../../scripts/manifests/k8s.ts";
import { defaultOptions, type ManifestOptions } from "../../../scripts/manifests/options.ts";

const FILE = "/etc/kubernetes/azurestackcloud.json";

function mic(o: ManifestOptions): Deployment {
  const found = (installationObjects(o) as Manifest[]).find((m) =>
    m.kind === "Deployment" && m.metadata.name === "mic"
  );
  assert.ok(found);
  return found as Deployment;
}

Deno.test("deploy args: --custom-cloud-file takes an absolute path; a relative or missing one is refused", () => {
  const parsed = parseDeployArgs([`--custom-cloud-file=${FILE}`]);
  assert.ok(parsed.ok);
  assert.equal(parsed.options.manifests.customCloudFile, FILE);
  assert.equal(
    (parseDeployArgs([]) as { options: { manifests: ManifestOptions } }).options.manifests
      .customCloudFile,
    undefined,
  );
  for (
    const argv of [["--custom-cloud-file=cloud.json"], ["--custom-cloud-file"], ["--custom-cloud-file="]]
  ) {
    const bad = parseDeployArgs(argv);
    assert.equal(bad.ok, false, argv.join(" "));
    assert.match((bad as { error: string }).error, /custom-cloud-file|custom cloud file/);
  }
});

Deno.test("manifests: a custom cloud file is mounted read-only into MIC and named by AZURE_ENVIRONMENT_FILEPATH", () => {
  for (
    const azureConfig of [
      undefined,
      { source: "secret", secretName: "aadpodidentity-admin-secret" } as const,
    ]
  ) {
    const d = mic({ ...defaultOptions(), ...(azureConfig ? { azureConfig } : {}), customCloudFile: FILE });
    const c = d.spec.template.spec.containers[0];
    assert.deepEqual(c.env?.filter((e) => e.name === "AZURE_ENVIRONMENT_FILEPATH"), [
      { name: "AZURE_ENVIRONMENT_FILEPATH", value: FILE },
    ]);
    assert.deepEqual(c.volumeMounts?.find((m) => m.name === "custom-env-file"), {
      name: "custom-env-file",
      mountPath: FILE,
      readOnly: true,
    });
    assert.deepEqual(d.spec.template.spec.volumes?.find((v) => v.name === "custom-env-file"), {
      name: "custom-env-file",
      hostPath: { path: FILE, type: "File" },
    });
    // The azure.json mount (or the Secret's env) stays as it was.
    assert.equal(c.volumeMounts?.some((m) => m.name === "azure-json"), azureConfig === undefined);
  }
  const plain = JSON.stringify(mic(defaultOptions()));
  assert.doesNotMatch(plain, /AZURE_ENVIRONMENT_FILEPATH|custom-env-file/);
});
