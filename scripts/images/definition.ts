// The one definition of the MIC and NMI images: what each runs (entry and exactly the permission flags of
// mic/permissions.ts and nmi/permissions.ts), as which user, which sources go in, and the Debian packages
// NMI drives. Both builds read it: the Dockerfile is generated from it (dockerfile.ts, written by
// `deno task manifests`) and the local OCI images of a real node are built from it (build.ts).

import { MIC_ENTRYPOINT, MIC_PERMISSIONS } from "../../mic/permissions.ts";
import { NMI_ENTRY, NMI_HOST_TOOLS, NMI_PERMISSIONS } from "../../nmi/permissions.ts";

/** The deno the images run (the Dockerfile's build stage; the local images copy this very binary). */
export const IMAGE_DENO_VERSION = "2.9.6";

/** What the build copies of the repository: every local module MIC and NMI import lives below these. */
export const IMAGE_SOURCES = ["deno.json", "deno.lock", "lib", "mic", "nmi"] as const;

/** A Debian package and the files of it the local image copies from this machine (with their libraries). */
interface DebianPackage {
  name: string;
  files: readonly string[];
}

export interface ComponentImage {
  name: "mic" | "nmi";
  /** The module `deno run` / `deno compile` starts, relative to the repository. */
  entry: string;
  /** Exactly the component's permission flags (V8 flags included). */
  permissions: readonly string[];
  /** uid:gid the container runs as unless the pod says otherwise. */
  user: string;
  /** What the component runs besides itself (NMI's host tools), from Debian packages. */
  packages: readonly DebianPackage[];
  /** Why it runs as `user` and carries what it carries (a comment in the Dockerfile). */
  why: string;
}

export const MIC_IMAGE: ComponentImage = {
  name: "mic",
  entry: MIC_ENTRYPOINT,
  permissions: MIC_PERMISSIONS,
  user: "65532:65532",
  packages: [],
  why: "MIC: no shell, no package manager, non-root; the Deployment adds a read-only root filesystem " +
    "(and runs it as root only to read a root-only azure.json).",
};

export const NMI_IMAGE: ComponentImage = {
  name: "nmi",
  entry: NMI_ENTRY,
  permissions: NMI_PERMISSIONS,
  user: "0:0",
  packages: [
    { name: "iptables", files: ["/usr/sbin/xtables-nft-multi"] },
    { name: "conntrack", files: ["/usr/sbin/conntrack"] },
    { name: "procps", files: ["/usr/sbin/sysctl"] },
    // The Dockerfile's trust roots; the local images take the machine's bundle (baseEtc).
    { name: "ca-certificates", files: [] },
  ],
  why: `NMI: the host tools it runs (${NMI_HOST_TOOLS.join(", ")}); root in the DaemonSet with only ` +
    "NET_ADMIN and NET_RAW.",
};
