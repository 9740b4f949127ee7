// The redirection NMI keeps on its node, as pure data: the exact rules it expects in the `nat` table, how to
// read what `iptables-save` shows, what differs, and the one `iptables-restore --noflush` transaction that
// puts it right. Applying it (iptables, locks, sysctls, conntrack) lives in apply.ts.
//
// Expected state, the original's chain with its known gaps closed (upstream.md section 4):
//   -A PREROUTING -j aad-metadata                       first in PREROUTING, exactly once
//   -A aad-metadata ! -s 127.0.0.1/32 -d <ip>/32 -p tcp -m tcp --dport <port> -j DNAT --to-destination <nmi>
//   -A aad-metadata -j RETURN
// and nothing else in the chain (the original missed extra rules after the expected ones, and never
// re-checked the jump's position).

export const CHAIN = "aad-metadata";

export interface RedirectSpec {
  /** IMDS address pods talk to (169.254.169.254). */
  metadataIp: string;
  metadataPort: number;
  /** Where NMI listens: 127.0.0.1:2579 by default, or the node IP. */
  targetIp: string;
  targetPort: number;
  chain?: string;
}

/** The chain's rules exactly as `iptables-save` prints them. */
export function expectedChainRules(spec: RedirectSpec): string[] {
  const chain = spec.chain ?? CHAIN;
  return [
    `-A ${chain} ! -s 127.0.0.1/32 -d ${spec.metadataIp}/32 -p tcp -m tcp --dport ${spec.metadataPort} -j DNAT --to-destination ${spec.targetIp}:${spec.targetPort}`,
    `-A ${chain} -j RETURN`,
  ];
}

export function jumpRule(chain = CHAIN): string {
  return `-A PREROUTING -j ${chain}`;
}

export interface NatTable {
  /** Chain names declared in the table. */
  chains: Set<string>;
  /** Rules per chain, in order, as `-A <chain> ...` lines. */
  rules: Map<string, string[]>;
}

/** Reads the `*nat` section of `iptables-save` output (other tables and comments are ignored). */
export function parseNatTable(save: string): NatTable {
  const table: NatTable = { chains: new Set(), rules: new Map() };
  let inNat = false;
  for (const raw of save.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("*")) {
      inNat = line === "*nat";
      continue;
    }
    if (!inNat || line === "" || line.startsWith("#")) continue;
    if (line === "COMMIT") {
      inNat = false;
      continue;
    }
    if (line.startsWith(":")) {
      table.chains.add(line.slice(1).split(/\s+/)[0]);
      continue;
    }
    const m = /^-A (\S+)/.exec(line);
    if (m) {
      const list = table.rules.get(m[1]) ?? [];
      list.push(line);
      table.rules.set(m[1], list);
    }
  }
  return table;
}

export type Drift =
  | { kind: "chain-missing" }
  | { kind: "chain-rules"; expected: string[]; actual: string[] }
  | { kind: "jump-missing" }
  | { kind: "jump-position"; index: number }
  | { kind: "jump-duplicated"; count: number };

/** Every way the table differs from what NMI needs; empty when it is exactly right. */
export function findDrift(table: NatTable, spec: RedirectSpec): Drift[] {
  const chain = spec.chain ?? CHAIN;
  const drift: Drift[] = [];
  if (!table.chains.has(chain)) drift.push({ kind: "chain-missing" });
  else {
    const expected = expectedChainRules(spec);
    const actual = table.rules.get(chain) ?? [];
    if (expected.length !== actual.length || expected.some((r, i) => r !== actual[i])) {
      drift.push({ kind: "chain-rules", expected, actual });
    }
  }
  const prerouting = table.rules.get("PREROUTING") ?? [];
  const jumps = prerouting.flatMap((r, i) => (r === jumpRule(chain) ? [i] : []));
  if (jumps.length === 0) drift.push({ kind: "jump-missing" });
  else {
    if (jumps[0] !== 0) drift.push({ kind: "jump-position", index: jumps[0] });
    if (jumps.length > 1) drift.push({ kind: "jump-duplicated", count: jumps.length });
  }
  return drift;
}

export function describeDrift(d: Drift): string {
  switch (d.kind) {
    case "chain-missing":
      return "chain missing";
    case "chain-rules":
      return `chain rules differ (found ${d.actual.length}: ${JSON.stringify(d.actual)})`;
    case "jump-missing":
      return "jump from PREROUTING missing";
    case "jump-position":
      return `jump from PREROUTING at position ${d.index + 1}, not 1`;
    case "jump-duplicated":
      return `jump from PREROUTING present ${d.count} times`;
  }
}

/**
 * One `iptables-restore --noflush` transaction that leaves exactly the expected state whatever `table`
 * held: declaring the chain flushes (or creates) it, every existing jump is deleted and one is inserted
 * first. Either all of it applies or none.
 */
export function restoreInput(table: NatTable, spec: RedirectSpec): string {
  const chain = spec.chain ?? CHAIN;
  const existingJumps = (table.rules.get("PREROUTING") ?? []).filter((r) => r === jumpRule(chain)).length;
  return [
    "*nat",
    `:${chain} - [0:0]`,
    ...expectedChainRules(spec),
    ...Array.from({ length: existingJumps }, () => `-D PREROUTING -j ${chain}`),
    `-I PREROUTING 1 -j ${chain}`,
    "COMMIT",
    "",
  ].join("\n");
}

/** The original's cleanup, used only when fail-closed is turned off: jump, rules and chain removed. */
export function removalInput(table: NatTable, chain = CHAIN): string | undefined {
  const jumps = (table.rules.get("PREROUTING") ?? []).filter((r) => r === jumpRule(chain)).length;
  if (!table.chains.has(chain) && jumps === 0) return undefined;
  return [
    "*nat",
    ...Array.from({ length: jumps }, () => `-D PREROUTING -j ${chain}`),
    ...(table.chains.has(chain) ? [`-F ${chain}`, `-X ${chain}`] : []),
    "COMMIT",
    "",
  ].join("\n");
}

/**
 * Where pod traffic is sent: NMI's own listen address, except that a wildcard listener is reached through
 * 127.0.0.1 (the original's target). A loopback target needs route_localnet; a node-IP listener does not.
 */
export function redirectTarget(listenAddress: string): string {
  return listenAddress === "0.0.0.0" || listenAddress === "" ? "127.0.0.1" : listenAddress;
}
