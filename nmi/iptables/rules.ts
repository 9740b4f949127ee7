// The rules NMI keeps on its node, as pure data: the exact chains it expects, how to read what
// `iptables-save` shows, what differs, and the `iptables-restore --noflush` input that puts it right.
// Applying it (iptables, locks, sysctls, conntrack) lives in apply.ts.
//
// Expected state: the original's redirect with its known gaps closed (docs/upstream.md, "## iptables
// rules"), and, when the redirect targets loopback, the guard kubelet and kube-proxy add with
// route_localnet (CVE-2020-8558, docs/platform.md "## route_localnet and CVE-2020-8558"):
//   nat:    -A PREROUTING -j aad-metadata                   first in PREROUTING, exactly once
//           -A aad-metadata ! -s 127.0.0.1/32 -d <ip>/32 -p tcp -m tcp --dport <port>
//              -j DNAT --to-destination <nmi>
//           -A aad-metadata -j RETURN
//   filter: -A INPUT -j aad-metadata-localnet               first in INPUT, exactly once
//           -A aad-metadata-localnet ! -s 127.0.0.0/8 -d 127.0.0.0/8
//              -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
// and nothing else in either chain (the original missed extra rules after the expected ones, and never
// re-checked the jump's position).

const CHAIN = "aad-metadata";
/** NMI's own filter chain holding the CVE-2020-8558 guard. */
const GUARD_CHAIN = "aad-metadata-localnet";

export interface RedirectSpec {
  /** IMDS address pods talk to (169.254.169.254). */
  metadataIp: string;
  metadataPort: number;
  /** Where NMI listens: 127.0.0.1:2579 by default, or the node IP. */
  targetIp: string;
  targetPort: number;
  chain?: string;
  guardChain?: string;
}

/** One chain NMI owns: its table, the built-in chain that jumps to it first, and its exact rules. */
interface HookedChain {
  table: "nat" | "filter";
  hook: "PREROUTING" | "INPUT";
  chain: string;
  rules: string[];
}

/** The redirect chain's rules exactly as `iptables-save` prints them. */
export function expectedChainRules(spec: RedirectSpec): string[] {
  const chain = spec.chain ?? CHAIN;
  return [
    `-A ${chain} ! -s 127.0.0.1/32 -d ${spec.metadataIp}/32 -p tcp -m tcp --dport ${spec.metadataPort} -j DNAT --to-destination ${spec.targetIp}:${spec.targetPort}`,
    `-A ${chain} -j RETURN`,
  ];
}

/** The guard's rule as `iptables-save` prints it (the same text for the legacy and nft backends). */
export function guardRules(chain = GUARD_CHAIN): string[] {
  return [
    `-A ${chain} ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
  ];
}

/** DNAT to a loopback address is what needs route_localnet, and so the guard that goes with it. */
export function needsLocalnetGuard(spec: RedirectSpec): boolean {
  return spec.targetIp.startsWith("127.");
}

/** Every chain NMI keeps for `spec`, in the order they are checked and repaired. */
export function expectedChains(spec: RedirectSpec): HookedChain[] {
  const chains: HookedChain[] = [{
    table: "nat",
    hook: "PREROUTING",
    chain: spec.chain ?? CHAIN,
    rules: expectedChainRules(spec),
  }];
  if (needsLocalnetGuard(spec)) {
    const chain = spec.guardChain ?? GUARD_CHAIN;
    chains.push({ table: "filter", hook: "INPUT", chain, rules: guardRules(chain) });
  }
  return chains;
}

function jumpRule(chain = CHAIN, hook = "PREROUTING"): string {
  return `-A ${hook} -j ${chain}`;
}

/** One table of `iptables-save` output. */
interface SavedTable {
  /** Chain names declared in the table. */
  chains: Set<string>;
  /** Rules per chain, in order, as `-A <chain> ...` lines. */
  rules: Map<string, string[]>;
}

/** Reads the `*<name>` section of `iptables-save` output (other tables and comments are ignored). */
export function parseTable(save: string, name = "nat"): SavedTable {
  const table: SavedTable = { chains: new Set(), rules: new Map() };
  let inside = false;
  for (const raw of save.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("*")) {
      inside = line === `*${name}`;
      continue;
    }
    if (!inside || line === "" || line.startsWith("#")) continue;
    if (line === "COMMIT") {
      inside = false;
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

/** The tables NMI's chains live in, by name ("nat", "filter"). */
export type SavedTables = Map<string, SavedTable>;

const EMPTY: SavedTable = { chains: new Set(), rules: new Map() };

type DriftKind =
  | { kind: "chain-missing" }
  | { kind: "chain-rules"; expected: string[]; actual: string[] }
  | { kind: "jump-missing" }
  | { kind: "jump-position"; index: number }
  | { kind: "jump-duplicated"; count: number };

/** One way a chain NMI owns differs from what it needs. */
export type Drift = DriftKind & { table: string; chain: string; hook: string };

function chainDrift(table: SavedTable, c: HookedChain): DriftKind[] {
  const drift: DriftKind[] = [];
  if (!table.chains.has(c.chain)) drift.push({ kind: "chain-missing" });
  else {
    const actual = table.rules.get(c.chain) ?? [];
    if (c.rules.length !== actual.length || c.rules.some((r, i) => r !== actual[i])) {
      drift.push({ kind: "chain-rules", expected: c.rules, actual });
    }
  }
  const hooked = table.rules.get(c.hook) ?? [];
  const jumps = hooked.flatMap((r, i) => (r === jumpRule(c.chain, c.hook) ? [i] : []));
  if (jumps.length === 0) drift.push({ kind: "jump-missing" });
  else {
    if (jumps[0] !== 0) drift.push({ kind: "jump-position", index: jumps[0] });
    if (jumps.length > 1) drift.push({ kind: "jump-duplicated", count: jumps.length });
  }
  return drift;
}

/** Every way the tables differ from what NMI needs; empty when they are exactly right. */
export function findDrift(tables: SavedTables, spec: RedirectSpec): Drift[] {
  return expectedChains(spec).flatMap((c) =>
    chainDrift(tables.get(c.table) ?? EMPTY, c).map((d) => ({
      ...d,
      table: c.table,
      chain: c.chain,
      hook: c.hook,
    }))
  );
}

export function describeDrift(d: Drift): string {
  const where = `${d.table} chain ${d.chain}`;
  switch (d.kind) {
    case "chain-missing":
      return `${where} missing`;
    case "chain-rules":
      return `${where} rules differ (found ${d.actual.length}: ${JSON.stringify(d.actual)})`;
    case "jump-missing":
      return `jump from ${d.hook} to ${d.chain} missing`;
    case "jump-position":
      return `jump from ${d.hook} to ${d.chain} at position ${d.index + 1}, not 1`;
    case "jump-duplicated":
      return `jump from ${d.hook} to ${d.chain} present ${d.count} times`;
  }
}

/**
 * The `iptables-restore --noflush` input that leaves exactly the expected state whatever `tables` held:
 * per table, declaring a chain flushes (or creates) it, every existing jump to it is deleted and one is
 * inserted first. Each table's part is one transaction (all of it applies or none).
 */
export function restoreInput(tables: SavedTables, spec: RedirectSpec): string {
  const lines: string[] = [];
  for (const name of new Set(expectedChains(spec).map((c) => c.table))) {
    const table = tables.get(name) ?? EMPTY;
    lines.push(`*${name}`);
    for (const c of expectedChains(spec).filter((c) => c.table === name)) {
      const existing = (table.rules.get(c.hook) ?? []).filter((r) => r === jumpRule(c.chain, c.hook)).length;
      lines.push(
        `:${c.chain} - [0:0]`,
        ...c.rules,
        ...Array.from({ length: existing }, () => `-D ${c.hook} -j ${c.chain}`),
        `-I ${c.hook} 1 -j ${c.chain}`,
      );
    }
    lines.push("COMMIT");
  }
  return [...lines, ""].join("\n");
}

/**
 * The original's cleanup, used only when fail-closed is turned off: the redirect's jump, rules and chain
 * removed. The guard stays: route_localnet stays on too, and the guard is what makes that safe.
 */
export function removalInput(tables: SavedTables, spec: RedirectSpec): string | undefined {
  const [redirect] = expectedChains(spec);
  const table = tables.get(redirect.table) ?? EMPTY;
  const jumps = (table.rules.get(redirect.hook) ?? []).filter((r) => r === jumpRule(redirect.chain)).length;
  if (!table.chains.has(redirect.chain) && jumps === 0) return undefined;
  return [
    `*${redirect.table}`,
    ...Array.from({ length: jumps }, () => `-D ${redirect.hook} -j ${redirect.chain}`),
    ...(table.chains.has(redirect.chain) ? [`-F ${redirect.chain}`, `-X ${redirect.chain}`] : []),
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
