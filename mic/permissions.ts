// The Deno permissions MIC runs with: the one list the `mic` task, the Dockerfile and the tests use.
// Network (apiserver, ARM, Azure AD, probe ports), reading its kubeconfig / azure.json / CA files, its env
// settings, and read-only system facts (the hostname for the leader-election identity; MSAL reads os details). No writes, no subprocesses, no FFI.

/**
 * V8 flags MIC runs with (they ride in MIC_PERMISSIONS so the task, the tests and the image's `deno compile`
 * get them), chosen by `deno task bench mic` (README): a young generation of at most 2 MiB per semi-space
 * instead of 16 MiB, and V8's memory saver mode, which grows the old generation in smaller steps and
 * collects it sooner. A burst of assignments leaves less garbage standing: with 2,211 pods, RSS 3 s after
 * the burst 160 MiB with `--max-semi-space-size=4` alone (122 MiB 40 s later), 126 MiB with these (127
 * MiB 40 s later: flat); assignment latency unchanged within the noise of a loaded machine.
 */
const MIC_V8_FLAGS: readonly string[] = ["--max-semi-space-size=2", "--memory-saver-mode"];

export const MIC_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
  "--allow-sys", // MSAL (Azure AD token client) reads several os.* facts; all are read-only
  `--v8-flags=${MIC_V8_FLAGS.join(",")}`,
];

/** `deno run <permissions> mic/main.ts`, as the task runs it. */
export const MIC_ENTRYPOINT = "mic/main.ts";
