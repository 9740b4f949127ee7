// The Deno permissions MIC runs with: the one list the `mic` task, the Dockerfile and the tests use.
// Network (apiserver, ARM, Azure AD, probe ports), reading its kubeconfig / azure.json / CA files, its env
// settings, and read-only system facts (the hostname for the leader-election identity; MSAL reads os details). No writes, no subprocesses, no FFI.

/**
 * V8 flags MIC runs with (they ride in MIC_PERMISSIONS so the task, the tests and the image's `deno compile`
 * get them), chosen by `deno task bench mic`: a young generation of at most 4 MiB per semi-space instead
 * of 16 MiB; RSS with 200 pods on 20 nodes 135 -> 118 MiB, with 10,221 pods 296 -> 252 MiB (3 s after the
 * burst) and 154 -> 149 MiB (43 s after), assignment latency unchanged.
 */
const MIC_V8_FLAGS: readonly string[] = ["--max-semi-space-size=4"];

export const MIC_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
  "--allow-sys", // MSAL (Azure AD token client) reads several os.* facts; all are read-only
  `--v8-flags=${MIC_V8_FLAGS.join(",")}`,
];

/** `deno run <permissions> mic/main.ts`, as the task runs it. */
export const MIC_ENTRYPOINT = "mic/main.ts";
