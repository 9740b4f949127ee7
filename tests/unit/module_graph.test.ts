// What MIC and NMI load at start: the static module graph (from `deno info --json`, dynamic imports left out) must
// hold no npm package that only some nodes use, and no node: module at all. Each npm package brings Deno's npm
// layer and costs every node megabytes of RSS (node-forge alone about 12 MiB); those below are loaded at their
// first use instead. Any node: module starts Deno's Node compatibility layer (node:tls and node:net cost
// about 7 MiB, node:path alone 4).
import assert from "node:assert/strict";

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier?: string }; type?: { specifier?: string }; isDynamic?: boolean }[];
}

const LAZY_ONLY = ["npm:node-forge", "npm:yaml", "npm:@kubernetes/client-node", "npm:@azure/", "node:"];

/** npm: and node: imports reachable from `entry`, with the module importing each; dynamic ones too if asked. */
async function staticImports(
  entry: string,
  o: { dynamic?: boolean; config?: boolean } = {},
): Promise<Map<string, string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", ...(o.config === false ? ["--no-config"] : []), entry],
    cwd: new URL("../../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { roots: string[]; modules: InfoModule[] };
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  const npm = new Map<string, string>();
  const seen = new Set<string>();
  const stack = [...info.roots];
  while (stack.length) {
    const s = stack.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of bySpecifier.get(s)?.dependencies ?? []) {
      const c = d.code?.specifier;
      if (!c || (d.isDynamic && !o.dynamic)) continue;
      if (c.startsWith("npm:") || c.startsWith("node:")) npm.set(c, s);
      else stack.push(c);
    }
  }
  return npm;
}

Deno.test("NMI's start-up graph holds no lazily needed npm package (node-forge, yaml, client-node, @azure) and no node: module", async () => {
  const npm = await staticImports("nmi/main.ts");
  const eager = [...npm].filter(([c]) => LAZY_ONLY.some((p) => c.startsWith(p)));
  assert.deepEqual(eager.map(([c, by]) => `${c} <- ${by}`), []);
});

Deno.test("MIC's start-up graph holds no lazily needed npm package (node-forge, yaml, client-node, @azure) and no node: module", async () => {
  const npm = await staticImports("mic/main.ts");
  const eager = [...npm].filter(([c]) => LAZY_ONLY.some((p) => c.startsWith(p)));
  assert.deepEqual(eager.map(([c, by]) => `${c} <- ${by}`), []);
});

Deno.test("NMI's module graph as `deno run` builds it (dynamic imports too, no deno.json) names no npm package", async () => {
  // `deno run` resolves every npm package of that graph before NMI starts: 2-3 MiB of RSS (lib/lazy_import.ts).
  const npm = await staticImports("nmi/main.ts", { dynamic: true, config: false });
  assert.deepEqual([...npm].filter(([c]) => c.startsWith("npm:")).map(([c, by]) => `${c} <- ${by}`), []);
});
