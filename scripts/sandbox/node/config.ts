// The configuration files of one node, as pure functions of its layout: containerd's config.toml, the
// kubelet's KubeletConfiguration and the bridge CNI network. Node start-up (node.ts) writes them; unit tests
// read them. Why each setting is there: README.md, "A real node".

/** Where one node keeps everything; every path is absolute. */
export interface NodeLayout {
  name: string;
  /** The node's state directory (configs, certificates, the bind-mount sources). */
  dir: string;
  /** containerd's socket (kept short: a Unix socket path has at most 107 bytes). */
  containerdSocket: string;
  /** The pods' subnet on this node's bridge, e.g. `10.246.1.0/24`. */
  podCidr: string;
  /** The cgroup every pod of this node lives under (cgroupfs driver), e.g. `/aadnode-n1`. */
  cgroupRoot: string;
  /** The pause image containerd runs for every pod sandbox. */
  pauseImage: string;
  /** The node's address kubelet reports as InternalIP. */
  nodeIp: string;
  /** Cluster DNS is not run here; pods get the node's resolv.conf. */
  resolvConf: string;
}

const CNI_BIN_DIR = "/usr/lib/cni";

/** `name` must be a DNS label: it names the node, its bridge and its cgroup. */
export function validNodeName(name: string): boolean {
  return /^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/.test(name);
}

export function containerdConfig(l: NodeLayout): string {
  return `version = 3
root = "${l.dir}/containerd/root"
state = "${l.dir}/containerd/state"

[grpc]
  address = "${l.containerdSocket}"

[plugins."io.containerd.cri.v1.runtime"]
  # These machines withhold CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below its own.
  restrict_oom_score_adj = true
  # Pod network namespaces under the state directory, not the machine's /run/netns.
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "runc"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["${CNI_BIN_DIR}"]
    conf_dir = "${l.dir}/cni"

[plugins."io.containerd.cri.v1.images"]
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "${l.pauseImage}"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
`;
}

/** The bridge network: one Linux bridge per node, host-local addresses, masquerade for egress. */
export function cniConfig(l: NodeLayout): string {
  const bridge = `cni-${l.name}`.slice(0, 15);
  return JSON.stringify(
    {
      cniVersion: "1.0.0",
      name: "aad-node",
      plugins: [
        {
          type: "bridge",
          bridge,
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: { type: "host-local", ranges: [[{ subnet: l.podCidr }]], routes: [{ dst: "0.0.0.0/0" }] },
        },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

export function kubeletConfig(l: NodeLayout, pki: { ca: string; cert: string; key: string }): string {
  const config = {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    // The apiserver calls the kubelet (logs, exec) with its client certificate; anyone else is refused.
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: pki.ca },
    },
    authorization: { mode: "Webhook" },
    tlsCertFile: pki.cert,
    tlsPrivateKeyFile: pki.key,
    address: l.nodeIp,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: "127.0.0.1",
    healthzPort: 10248,
    cgroupDriver: "cgroupfs",
    cgroupRoot: l.cgroupRoot,
    // Kubelet 1.34 refuses cgroup v1 unless told; these machines have v1 (on v2 the setting is moot).
    failCgroupV1: false,
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${l.containerdSocket}`,
    podCIDR: l.podCidr,
    resolvConf: l.resolvConf,
    volumePluginDir: `${l.dir}/volume-plugins`,
    // A test machine's disk fills with other work: never evict pods or collect images for it.
    evictionHard: { "memory.available": "1Mi", "nodefs.available": "0%", "imagefs.available": "0%" },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // Quick status so a test sees Ready and pod phases soon.
    nodeStatusUpdateFrequency: "2s",
    syncFrequency: "5s",
    fileCheckFrequency: "5s",
    serializeImagePulls: false,
    localStorageCapacityIsolation: false,
    protectKernelDefaults: false,
    makeIPTablesUtilChains: false,
    // The machine's kernel settings and OOM scores are not the node's to change.
    oomScoreAdj: 0,
    registerNode: true,
    logging: { format: "text" },
  };
  return JSON.stringify(config, null, 2);
}
