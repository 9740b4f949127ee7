// The Deno permissions NMI runs with, in one place: the `nmi` task in deno.json, the integration tests (which
// spawn NMI as a real process) and the Dockerfile use exactly these, and a unit test keeps deno.json in step.
// - net: it listens (token port, probe port) and connects to the apiserver, the node's IMDS and Azure AD.
// - read: kubeconfig or the service-account token and CA, and CA bundles named by NODE_EXTRA_CA_CERTS.
// - env: NODE_NAME, KUBECONFIG, FORCENAMESPACED, LOG_LEVEL/LOG_FORMAT, KUBERNETES_SERVICE_HOST/PORT.
// - run: only the four host tools that keep the redirection (nmi/iptables): never a shell, never anything else.
// No --allow-write, no --allow-ffi, no --allow-sys.
// The V8 flags and --no-code-cache ride along in the same list, so the task, the tests and `deno compile` in
// the Dockerfile (which bakes them into the binary) run NMI with the same heap limits (see NMI_V8_FLAGS).

export const NMI_HOST_TOOLS = ["iptables-save", "iptables-restore", "conntrack", "sysctl"] as const;

/**
 * V8 flags NMI runs with, chosen by `deno task bench nmi` (README "NMI's cost"):
 * - a young generation of at most 1 MiB per semi-space instead of V8's 16 MiB. A cached token's answer
 *   allocates a few KiB, so it costs a scavenge every ~50 requests instead of every ~180 at 4 MiB; each is
 *   short, and RSS right after the load was the lowest of 1/2/4/8 MiB.
 * - V8's memory saver mode, which grows the old generation in smaller steps and collects it sooner: RSS
 *   right after ~860k requests 74 MiB against 94 without it (anonymous 28.5 against 48.5), at 145% / 122%
 *   of the floor's req/s at 16 / 64 connections against 138% / 111%, p99 1.5 / 3.0 ms (one run each).
 * - no optimizing compiler (`--max-opt=1`: the interpreter and Sparkplug, V8's baseline compiler, only).
 *   Maglev and TurboFan are megabytes of the deno executable that a hot loop pages in, plus their code and
 *   zones: RSS idle with 501 pods 5-6 MiB lower, after the load 5-7 lower, for a cached answer at 78% of the
 *   floor's req/s instead of 139% and 1.3x its CPU instead of 0.74x (issue 21 asks for >= 50% and <= 2x).
 *   `--max-opt=2` (Maglev, no TurboFan) saved 2 MiB; `--max-opt=0` 1 more than Sparkplug but at the
 *   interpreter's CPU, like --lite-mode below.
 * - V8's memory reducer 5 s after a burst of garbage (a LIST, a wave of pod events) instead of the 30 s this
 *   build waits (`--gc-memory-reducer-start-delay-ms`; it runs only while NMI allocates little, so never
 *   under load): with 501 pods just added, anonymous memory 9.0 MiB against 11.8 until the reducer runs.
 * - `--expose-gc`, for one memory-reducing collection once NMI is quiet after a burst (nmi/idle_gc.ts): V8
 *   on its own never gave back the heap a burst grew, so RSS stayed at its peak. No code but NMI's runs
 *   in this process, so the gc() it installs is no lever for a pod.
 * Measured and not taken: --single-threaded-gc and --optimize-for-size (no RSS or CPU difference the
 * benchmark could see), --max-old-space-size=64 (82 MiB after the load; a hard limit a node's pods could
 * push NMI into), --lite-mode (4.7x the floor's CPU per request).
 */
export const NMI_V8_FLAGS = [
  "--max-semi-space-size=1",
  "--memory-saver-mode",
  "--max-opt=1",
  "--gc-memory-reducer-start-delay-ms=5000",
  "--expose-gc",
] as const;

export const NMI_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
  `--allow-run=${NMI_HOST_TOOLS.join(",")}`,
  `--v8-flags=${NMI_V8_FLAGS.join(",")}`,
  // V8's code cache makes every later start deserialize the functions an earlier run compiled, eagerly, and
  // SQLite keep the pages it read them from: 1.5-2 MiB of RSS, and no faster a start (`nmi/main.ts --help`,
  // five runs: 44-47 ms without it, 51-57 ms with it).
  "--no-code-cache",
  // No deno.json: with its import map and lockfile, `deno run` resolves the npm packages of NMI's module graph
  // (dynamic imports included) at every start, though NMI loads none then: 2-3 MiB of RSS, the npm
  // resolver's code and state (with 501 pods, 15 s after: 55.8-56.2 MiB against 58.4-59.5). The modules
  // that bring npm packages load through lib/lazy_import.ts, name them in full (`npm:yaml@2.9.1`, equal to
  // deno.json's: tests/unit/npm_specifiers.test.ts), and `deno compile` pins them to deno.lock (Dockerfile).
  "--no-config",
] as const;

export const NMI_ENTRY = "nmi/main.ts";
