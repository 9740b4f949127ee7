// Runs `deno task sandbox ...` as a user would (the CLI in its own process), with its state in `dir`.

const root = new URL("../../", import.meta.url).pathname;

export async function sandbox(dir: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}scripts/sandbox/sandbox.ts`, ...args],
    cwd: root,
    env: { AAD_SANDBOX_DIR: dir },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
