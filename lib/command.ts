// Runs a program to its end and hands back what it wrote as text: the one place that spawns a child with an
// optional stdin string (NMI's iptables binaries, the scripts' kubectl).

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `cmd` with `args` (in `cwd` when given), writing `stdin` to it when given (else its stdin is closed).
 * Spawn errors are thrown as they come (Deno.errors.NotFound when `cmd` is not on PATH); a non-zero exit is
 * in `code`, not thrown.
 */
export async function runCommandText(
  cmd: string,
  args: string[],
  stdin?: string,
  cwd?: string,
): Promise<CommandResult> {
  const child = new Deno.Command(cmd, {
    args,
    cwd,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
