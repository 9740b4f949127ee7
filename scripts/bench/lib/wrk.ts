// One wrk run (one thread, `Metadata: true`), parsed: requests/s, latency percentiles, errors, requests.

import { cpuSeconds } from "./proc.ts";

export interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
  /** wrk's own CPU over the run, in % of one core: near 100, the figure is wrk's ceiling, not the server's. */
  wrkCpuPercent: number;
}

function ms(text: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(text);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
}

function parseWrk(text: string): Omit<WrkResult, "wrkCpuPercent"> {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
  const requests = Number(/(\d+) requests in/.exec(text)?.[1]);
  const p50 = ms(/\s50%\s+(\S+)/.exec(text)?.[1] ?? "");
  const p99 = ms(/\s99%\s+(\S+)/.exec(text)?.[1] ?? "");
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const errors = non2xx + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { rps, p50, p99, errors, requests };
}

export async function wrk(url: string, connections: number, seconds: number): Promise<WrkResult> {
  const child = new Deno.Command("wrk", {
    args: ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency", "-H", "Metadata: true", url],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Its CPU is sampled while it runs (a finished process has no /proc entry); the last sample is within
  // 200 ms of the end.
  const t0 = performance.now();
  let cpu = 0;
  let cpuAt = t0;
  const sampler = setInterval(() => {
    cpuSeconds(child.pid).then((c) => {
      cpu = c;
      cpuAt = performance.now();
    }).catch(() => {});
  }, 200);
  const out = await child.output();
  clearInterval(sampler);
  if (!out.success) throw new Error(`wrk failed: ${new TextDecoder().decode(out.stderr)}`);
  const wrkCpuPercent = cpuAt > t0 ? 100_000 * cpu / (cpuAt - t0) : NaN;
  return { ...parseWrk(new TextDecoder().decode(out.stdout)), wrkCpuPercent };
}
