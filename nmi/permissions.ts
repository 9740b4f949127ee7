// The Deno permissions NMI runs with, in one place: the `nmi` task in deno.json, the integration tests (which
// spawn NMI as a real process) and the Dockerfile use exactly these, and a unit test keeps deno.json in step.
// - net: it listens (token port, probe port) and connects to the apiserver, the node's IMDS and Azure AD.
// - read: kubeconfig or the service-account token and CA, and CA bundles named by NODE_EXTRA_CA_CERTS.
// - env: NODE_NAME, KUBECONFIG, FORCENAMESPACED, LOG_LEVEL/LOG_FORMAT, KUBERNETES_SERVICE_HOST/PORT.
// - run: only the four host tools that keep the redirection (nmi/iptables): never a shell, never anything else.
// No --allow-write, no --allow-ffi, no --allow-sys.
// The V8 flags ride along in the same list, so the task, the tests and `deno compile` in the Dockerfile
// (which bakes them into the binary) run NMI with the same heap limits (see NMI_V8_FLAGS).

export const NMI_HOST_TOOLS = ["iptables-save", "iptables-restore", "conntrack", "sysctl"] as const;

/**
 * V8 flags NMI runs with, chosen by `deno task bench nmi` (README "NMI's cost"): a young generation of at
 * most 1 MiB per semi-space instead of V8's 16 MiB. A cached token's answer allocates a few KiB, so it costs
 * a scavenge every ~50 requests instead of every ~180 at 4 MiB; each is short, and RSS right after ~100k
 * requests was the lowest of 1/2/4/8 MiB (83 MiB against 89 at 4 MiB, same CPU per request within the
 * noise of a shared machine). Measured and not taken: --single-threaded-gc and --optimize-for-size (no RSS
 * or CPU difference the benchmark could see), --max-old-space-size=48 (none either: the live heap is about
 * 15 MiB), --lite-mode (4.7x the floor's CPU per request), a 40 MiB old space (a quarter of the req/s).
 */
export const NMI_V8_FLAGS = ["--max-semi-space-size=1"] as const;

export const NMI_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
  `--allow-run=${NMI_HOST_TOOLS.join(",")}`,
  `--v8-flags=${NMI_V8_FLAGS.join(",")}`,
] as const;

export const NMI_ENTRY = "nmi/main.ts";
