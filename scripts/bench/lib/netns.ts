// Runs a benchmark inside a network namespace of its own (as root): NMI's iptables rules, the IMDS address
// 169.254.169.254 and every listener live there and vanish with it, so nothing on the host is touched and
// no cleanup can be missed. `unshare --net` gives the process tree a fresh namespace holding only `lo`.

const MARK = "AAD_BENCH_NETNS";

/** Whether this process is root and so can make its own namespace. */
export function canUseNetns(): boolean {
  return Deno.uid() === 0;
}

/**
 * Re-runs this script under `unshare --net` and returns its exit code, or undefined when already inside
 * (then `lo` is up and holds `extraAddress`).
 */
export async function inOwnNetns(
  script: string,
  args: string[],
  extraAddress: string,
): Promise<number | undefined> {
  if (Deno.env.get(MARK) === "1") {
    await ip(["link", "set", "lo", "up"]);
    await ip(["addr", "add", `${extraAddress}/32`, "dev", "lo"]);
    return undefined;
  }
  const child = new Deno.Command("unshare", {
    args: ["--net", "--", Deno.execPath(), "run", "-A", script, ...args],
    env: { [MARK]: "1" },
    stdin: "null",
  }).spawn();
  return (await child.status).code;
}

async function ip(args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}
