// The Deno permissions MIC runs with: the one list the `mic` task, the Dockerfile and the tests use.
// Network (apiserver, ARM, Azure AD, probe ports), reading its kubeconfig / azure.json / CA files, its env
// settings, and the host name (read-only `--allow-sys`: the leader-election identity and the Events' source
// host come from `Deno.hostname()`). No writes, no subprocesses, no FFI.

/**
 * V8 flags MIC runs with (they ride in MIC_PERMISSIONS so the task, the tests and the image's `deno compile`
 * get them), chosen by `deno task bench mic` (README): a young generation of at most 2 MiB per semi-space
 * instead of 16 MiB, and V8's memory saver mode, which grows the old generation in smaller steps and
 * collects it sooner. A burst of assignments leaves less garbage standing: with 2,211 pods, RSS 3 s after
 * the burst 160 MiB with `--max-semi-space-size=4` alone (122 MiB 40 s later), 126 MiB with these (127
 * MiB 40 s later: flat); assignment latency unchanged within the noise of a loaded machine. And Maglev as
 * its top tier (`--max-opt=2`: no TurboFan, whose pages of the deno executable and zones a 10,000-pod
 * LIST warms): RSS at 200 pods 77 MiB against 78-84, planner and pod -> Assigned unchanged. NMI, which
 * runs on every node, goes one tier lower (nmi/permissions.ts); MIC keeps an optimizing tier for the
 * cluster-sized loops it runs (decoding every pod, planning every assignment). V8's memory reducer starts 5 s
 * after a burst instead of 30 s, as in NMI.
 */
const MIC_V8_FLAGS: readonly string[] = [
  "--max-semi-space-size=2",
  "--memory-saver-mode",
  "--max-opt=2",
  "--gc-memory-reducer-start-delay-ms=5000",
];

export const MIC_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
  "--allow-sys", // Deno.hostname() only; read-only
  `--v8-flags=${MIC_V8_FLAGS.join(",")}`,
  // Without V8's code cache a start compiles lazily instead of deserializing what an earlier run compiled,
  // and SQLite holds none of its pages (NMI: 1.5-2 MiB of RSS; nmi/permissions.ts).
  "--no-code-cache",
];

/** `deno run <permissions> mic/main.ts`, as the task runs it. */
export const MIC_ENTRYPOINT = "mic/main.ts";
