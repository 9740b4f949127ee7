// Processes that outlive the command that started them (the sandbox's emulator, MIC, NMI, forwarders):
// output goes to a log file (no pipe to fill up), and the pid is all that is needed to stop them later.

/** Starts `argv` in the background, output appended to `logPath`; returns its pid. */
export function spawnDetached(
  argv: string[],
  logPath: string,
  opts: { env?: Record<string, string>; cwd?: string } = {},
): number {
  // `exec` keeps the pid: the shell becomes the program (and `ip netns exec` execs too).
  const child = new Deno.Command("sh", {
    args: ["-c", 'exec "$0" "$@" >>"$AAD_LOGFILE" 2>&1', ...argv],
    env: { ...opts.env, AAD_LOGFILE: logPath },
    cwd: opts.cwd,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref();
  return child.pid;
}

export function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by us) still answers signals; /proc says what it is.
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopPid(pid: number, graceMs = 5_000): Promise<void> {
  if (!alive(pid)) return;
  try {
    Deno.kill(pid, "SIGTERM");
  } catch { /* gone */ }
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
    while (alive(pid)) await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until `check` is true, or throws `describe()` after `timeoutMs`. */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  describe: () => Promise<string> | string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(await describe());
}

export async function tailOf(path: string, lines = 20): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trim().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}
