// The Deno permissions MIC runs with: the one list the `mic` task, the Dockerfile and the tests use.
// Network (apiserver, ARM, Azure AD, probe ports), reading its kubeconfig / azure.json / CA files, its env
// settings, and the hostname (the leader-election identity default). No writes, no subprocesses, no FFI.

export const MIC_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
  "--allow-sys=hostname,osRelease,homedir,uid,gid,networkInterfaces",
];

/** `deno run <permissions> mic/main.ts`, as the task runs it. */
export const MIC_ENTRYPOINT = "mic/main.ts";
