// What /proc says about a benchmarked process: resident memory and CPU time (user + system, all threads).

/** Resident set size in MiB (VmRSS). */
export async function rssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) / 1024;
}

/** Linux reports utime/stime in USER_HZ ticks, 100 per second on every architecture Deno ships for. */
const TICKS_PER_SECOND = 100;

/** CPU seconds the process has used so far (fields 14 and 15 of /proc/<pid>/stat). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // The command name (field 2) may hold spaces and parentheses: count fields after its closing ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}
