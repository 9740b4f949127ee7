// What one use of a built-in leaves resident in a Deno process: each row starts --runs processes of
// scripts/bench/lib/builtin_probe.ts (a Deno.serve that answered one fetch, then that one use), with NMI's
// V8 flags and --no-config, reads VmRSS 1 s after the use and stops it. Medians beside the floor's row
// ("nothing more") show what lib/compare.ts and lib/time_text.ts save MIC and NMI
// (tests/unit/resident_builtins.test.ts keeps the heavy built-ins out of them).
// Run: deno task bench builtin_rss [--runs=7]

import { NMI_V8_FLAGS } from "../../nmi/permissions.ts";
import { rssMiB } from "./lib/proc.ts";
import { USES } from "./lib/builtin_probe.ts";

const RUNS = Number(Deno.args.find((a) => a.startsWith("--runs="))?.split("=")[1] ?? 7);
const PROBE = new URL("./lib/builtin_probe.ts", import.meta.url).pathname;

async function rssAfter(use: string): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", "--no-code-cache", `--v8-flags=${NMI_V8_FLAGS.join(",")}`, PROBE, use],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("ready")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`probe for ${use} exited before it was ready`);
      out += value;
    }
    reader.releaseLock();
    await new Promise((r) => setTimeout(r, 1000));
    return await rssMiB(child.pid);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = new Map<string, number[]>(Object.keys(USES).map((u) => [u, []]));
// Interleaved, so a change in the machine's load touches every row alike.
for (let run = 0; run < RUNS; run++) {
  for (const [use, samples] of rows) samples.push(await rssAfter(use));
}
const floor = median(rows.get("nothing more")!);
console.log(
  `${RUNS} processes per row, interleaved; deno ${Deno.version.deno}, V8 flags ${NMI_V8_FLAGS.join(" ")}`,
);
console.log("| after a Deno.serve answered one fetch | RSS MiB, median (min-max) | over the floor |");
console.log("|---|---|---|");
for (const [use, s] of rows) {
  const m = median(s);
  console.log(
    `| ${use} | ${m.toFixed(1)} (${Math.min(...s).toFixed(1)}-${Math.max(...s).toFixed(1)}) | ${
      use === "nothing more" ? "" : `${m - floor >= 0 ? "+" : ""}${(m - floor).toFixed(1)}`
    } |`,
  );
}
