// The Deno permissions NMI runs with, in one place: the `nmi` task in deno.json, the integration tests (which
// spawn NMI as a real process) and the Dockerfile use exactly these, and a unit test keeps deno.json in step.
// - net: it listens (token port, probe port) and connects to the apiserver, the node's IMDS and Azure AD.
// - read: kubeconfig or the service-account token and CA, and CA bundles named by NODE_EXTRA_CA_CERTS.
// - env: NODE_NAME, KUBECONFIG, FORCENAMESPACED, LOG_LEVEL/LOG_FORMAT, KUBERNETES_SERVICE_HOST/PORT.
// - run: only the four host tools that keep the redirection (nmi/iptables): never a shell, never anything else.
// No --allow-write, no --allow-ffi, no --allow-sys.

export const NMI_HOST_TOOLS = ["iptables-save", "iptables-restore", "conntrack", "sysctl"] as const;

export const NMI_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
  `--allow-run=${NMI_HOST_TOOLS.join(",")}`,
] as const;

export const NMI_ENTRY = "nmi/main.ts";

/** V8 flags NMI runs with (`deno run --v8-flags=<these joined by ",">`), chosen by `deno task bench nmi`. */
export const NMI_V8_FLAGS: readonly string[] = [];
