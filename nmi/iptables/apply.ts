// Applies the redirection of rules.ts on this host through the iptables binaries (iptables-save and
// iptables-restore with `-w`, so the host's xtables lock serialises us with kube-proxy and CNI plugins),
// sets what DNAT to a loopback address needs, and flushes conntrack entries that would let connections
// opened before the rules bypass them.

import { type CommandResult, runCommandText } from "../../lib/command.ts";
import {
  type Drift,
  expectedChains,
  findDrift,
  parseTable,
  type RedirectSpec,
  removalInput,
  restoreInput,
  type SavedTables,
} from "./rules.ts";

class HostNetworkError extends Error {
  override name = "HostNetworkError";
}

/** Runs one host command; a seam only so errors are worded once (tests use the real binaries). */
type RunCommand = (cmd: string, args: string[], stdin?: string) => Promise<CommandResult>;

export const runCommand: RunCommand = (cmd, args, stdin) =>
  runCommandText(cmd, args, stdin).catch((e) => {
    if (e instanceof Deno.errors.NotFound) {
      throw new HostNetworkError(
        `${cmd} not found on PATH: install it (Debian: apt-get install iptables conntrack procps)`,
      );
    }
    throw new HostNetworkError(`cannot run ${cmd}: ${(e as Error).message}`);
  });

function failure(what: string, r: CommandResult): HostNetworkError {
  const detail = r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`;
  const hint = /permission denied|you must be root|Operation not permitted/i.test(detail)
    ? " (NMI needs CAP_NET_ADMIN and CAP_NET_RAW on the host network)"
    : "";
  return new HostNetworkError(`${what} failed: ${detail}${hint}`);
}

export class HostNetwork {
  constructor(readonly run: RunCommand = runCommand) {}

  /** The tables holding `spec`'s chains, one `iptables-save -t` each (a node's other tables can be large). */
  async tables(spec: RedirectSpec): Promise<SavedTables> {
    const tables: SavedTables = new Map();
    for (const name of new Set(expectedChains(spec).map((c) => c.table))) {
      const r = await this.run("iptables-save", ["-t", name]);
      if (r.code !== 0) throw failure(`iptables-save -t ${name}`, r);
      tables.set(name, parseTable(r.stdout, name));
    }
    return tables;
  }

  async restore(input: string): Promise<void> {
    const r = await this.run("iptables-restore", ["-w", "5", "--noflush"], input);
    if (r.code !== 0) throw failure("iptables-restore --noflush", r);
  }

  /** Brings the tables to the expected state; returns what was wrong before (empty: nothing changed). */
  async ensureRedirect(spec: RedirectSpec): Promise<Drift[]> {
    const tables = await this.tables(spec);
    const drift = findDrift(tables, spec);
    if (drift.length === 0) return drift;
    await this.restore(restoreInput(tables, spec));
    const after = findDrift(await this.tables(spec), spec);
    if (after.length) throw new HostNetworkError(`rules still differ after repair: ${JSON.stringify(after)}`);
    return drift;
  }

  /** The original's cleanup on exit (only when fail-closed is off); the localnet guard stays. */
  async removeRedirect(spec: RedirectSpec): Promise<boolean> {
    const input = removalInput(await this.tables(spec), spec);
    if (!input) return false;
    await this.restore(input);
    return true;
  }

  /**
   * DNAT from a pod interface to 127.0.0.1 is dropped as a martian unless route_localnet is on (the kernel
   * reads it as "all OR the interface", so `all` covers every pod veth). kube-proxy normally sets it; we
   * check and set it ourselves so NMI does not depend on kube-proxy's mode. Returns true if it changed.
   */
  async ensureRouteLocalnet(): Promise<boolean> {
    const key = "net.ipv4.conf.all.route_localnet";
    const read = await this.run("sysctl", ["-n", key]);
    if (read.code !== 0) throw failure(`sysctl -n ${key}`, read);
    if (read.stdout.trim() === "1") return false;
    const write = await this.run("sysctl", ["-w", `${key}=1`]);
    if (write.code !== 0) throw failure(`sysctl -w ${key}=1`, write);
    return true;
  }

  /** Deletes tracked TCP connections to the metadata endpoint; returns how many were deleted. */
  async flushConntrack(ip: string, port: number): Promise<number> {
    const r = await this.run("conntrack", ["-D", "-p", "tcp", "--orig-dst", ip, "--dport", String(port)]);
    // conntrack exits 1 when nothing matched; its summary line is on stderr either way.
    const m = /(\d+) flow entries have been deleted/.exec(r.stderr);
    if (m) return Number(m[1]);
    if (r.code !== 0) throw failure("conntrack -D", r);
    return 0;
  }
}
