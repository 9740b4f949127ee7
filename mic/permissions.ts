// The Deno permissions MIC runs with: the one list the `mic` task, the Dockerfile and the tests use.
// Network (apiserver, ARM, Azure AD, probe ports), reading its kubeconfig / azure.json / CA files, its env
// settings, and read-only system facts (the hostname for the leader-election identity; MSAL reads os details). No writes, no subprocesses, no FFI.

export const MIC_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
  "--allow-sys", // MSAL (Azure AD token client) reads several os.* facts; all are read-only
];

/** `deno run <permissions> mic/main.ts`, as the task runs it. */
export const MIC_ENTRYPOINT = "mic/main.ts";
