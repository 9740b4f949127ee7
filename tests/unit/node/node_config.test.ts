// The pure parts of the real node: its configuration files, the install script's output, the image
// definitions (exactly the permissions of mic/permissions.ts and nmi/permissions.ts).

import assert from "node:assert/strict";
import {
  cniConfig,
  containerdConfig,
  kubeletConfig,
  type NodeLayout,
  validNodeName,
} from "../../../scripts/sandbox/node/config.ts";
import { parseInstallOutput } from "../../../scripts/sandbox/node/binaries.ts";
import { certKubeconfig } from "../../../scripts/sandbox/node/identity.ts";
import { denoEntrypoint, MIC_IMAGE_CONFIG, NMI_IMAGE_CONFIG } from "../../../scripts/images/build.ts";
import { umociConfigArgs } from "../../../scripts/images/oci.ts";
import { parseLdd } from "../../../scripts/images/rootfs.ts";
import { MIC_ENTRYPOINT, MIC_PERMISSIONS } from "../../../mic/permissions.ts";
import { NMI_ENTRY, NMI_PERMISSIONS } from "../../../nmi/permissions.ts";

const layout: NodeLayout = {
  name: "node-1",
  dir: "/var/tmp/n1",
  containerdSocket: "/var/tmp/n1/containerd.sock",
  podCidr: "10.246.1.0/24",
  cgroupRoot: "/aadnode-node-1",
  pauseImage: "aad-pod-identity.local/pause:3.10",
  nodeIp: "10.252.1.2",
  resolvConf: "/var/tmp/n1/resolv.conf",
};

Deno.test("containerd: no OOM score below its own, pod netns under its state dir, the local pause image", () => {
  const toml = containerdConfig(layout);
  assert.match(toml, /^version = 3$/m);
  assert.match(toml, /restrict_oom_score_adj = true/);
  assert.match(toml, /netns_mounts_under_state_dir = true/);
  assert.match(toml, /sandbox = "aad-pod-identity\.local\/pause:3\.10"/);
  assert.match(toml, /address = "\/var\/tmp\/n1\/containerd\.sock"/);
  assert.match(toml, /SystemdCgroup = false/);
  assert.match(toml, /conf_dir = "\/var\/tmp\/n1\/cni"/);
});

Deno.test("kubelet: cgroupfs under its own root, v1 allowed, webhook auth only, no machine-wide paths", () => {
  const k = JSON.parse(kubeletConfig(layout, { ca: "/ca.pem", cert: "/c.pem", key: "/k.pem" }));
  assert.equal(k.cgroupDriver, "cgroupfs");
  assert.equal(k.cgroupRoot, "/aadnode-node-1");
  assert.equal(k.failCgroupV1, false);
  assert.equal(k.authentication.anonymous.enabled, false);
  assert.equal(k.authorization.mode, "Webhook");
  assert.equal(k.readOnlyPort, 0);
  assert.equal(k.containerRuntimeEndpoint, "unix:///var/tmp/n1/containerd.sock");
  assert.equal(k.volumePluginDir, "/var/tmp/n1/volume-plugins");
  assert.equal(k.address, "10.252.1.2");
});

Deno.test("CNI: one bridge per node with its own subnet", () => {
  const c = JSON.parse(cniConfig(layout));
  assert.equal(c.plugins[0].type, "bridge");
  assert.equal(c.plugins[0].bridge, "cni-node-1");
  assert.deepEqual(c.plugins[0].ipam.ranges, [[{ subnet: "10.246.1.0/24" }]]);
});

Deno.test("node names are short DNS labels (bridge and link names derive from them)", () => {
  assert.ok(validNodeName("node-1"));
  for (const bad of ["", "Node", "-a", "a-", "a_b", "a".repeat(16)]) assert.ok(!validNodeName(bad), bad);
});

Deno.test("install-node.sh's output: both directories, else a clear error", () => {
  assert.deepEqual(parseInstallOutput("[node] x\nNODE_BIN_DIR=/a\nCONTAINERD_BIN_DIR=/b\n"), {
    nodeBinDir: "/a",
    containerdBinDir: "/b",
  });
  assert.throws(() => parseInstallOutput("NODE_BIN_DIR=/a\n"), /CONTAINERD_BIN_DIR/);
});

Deno.test("images run deno offline with exactly the permissions of mic/ and nmi/permissions.ts", () => {
  assert.deepEqual(MIC_IMAGE_CONFIG.entrypoint, [
    "/usr/local/bin/deno",
    "run",
    "--cached-only",
    "--frozen",
    ...MIC_PERMISSIONS,
    `/app/${MIC_ENTRYPOINT}`,
  ]);
  assert.deepEqual(NMI_IMAGE_CONFIG.entrypoint, denoEntrypoint(NMI_PERMISSIONS, NMI_ENTRY));
  assert.equal(MIC_IMAGE_CONFIG.user, "65532:65532");
  for (const c of [MIC_IMAGE_CONFIG, NMI_IMAGE_CONFIG]) {
    assert.ok(!c.entrypoint.includes("-A") && !c.entrypoint.includes("--allow-all"));
    assert.ok(!c.entrypoint.some((a) => a.startsWith("--allow-write")));
  }
});

Deno.test("umoci config flags: entrypoint words in order, CMD cleared unless given", () => {
  assert.deepEqual(umociConfigArgs({ entrypoint: ["/a", "b"], env: { K: "v" }, user: "1:1" }), [
    "--config.entrypoint=/a",
    "--config.entrypoint=b",
    "--clear=config.cmd",
    "--config.env=K=v",
    "--config.user=1:1",
  ]);
});

Deno.test("ldd output: libraries and the loader, not the vdso", () => {
  const text = [
    "\tlinux-vdso.so.1 (0x00007f)",
    "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)",
    "\t/lib64/ld-linux-x86-64.so.2 (0x00007f)",
  ].join("\n");
  assert.deepEqual(parseLdd(text), ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"]);
});

Deno.test("a certificate kubeconfig names the server and carries the PEMs base64-encoded", () => {
  const k = certKubeconfig("https://127.0.0.1:6443", "CA", "CERT", "KEY");
  assert.match(k, /server: "https:\/\/127\.0\.0\.1:6443"/);
  assert.match(k, new RegExp(`certificate-authority-data: ${btoa("CA")}`));
  assert.match(k, new RegExp(`client-key-data: ${btoa("KEY")}`));
});
