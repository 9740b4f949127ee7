// An entry's module graph as `deno compile` stores it, for `deno task bench nmi --as-compiled`: each local
// module emitted to JavaScript without a source map (compile keeps maps apart from the module text since
// Deno 2.1, denoland/deno#27395; `deno run` of TypeScript holds an inline map per module, and V8 a second
// copy as the script's sourceMappingURL). `deno compile` itself needs a runtime download this machine cannot
// make, so this is the nearest form the image's NMI can be measured in here; what still differs is the
// executable (the full deno CLI instead of the smaller denort).

import { runCommandText } from "../../../lib/command.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
/** `from "./x.ts"`, `import "./x.ts"`, `import("../x.ts")`: the forms deno lint lets the code base use. */
const RELATIVE_TS_IMPORT = /((?:\bfrom|\bimport)\s*\(?\s*["'])(\.{1,2}\/[^"'\n]+)\.ts(["'])/g;

interface Transpiled {
  /** Path of the entry's emitted module. */
  entry: string;
  dir: string;
}

/** `deno transpile` refuses inputs outside its working directory: deno runs in the repository. */
async function deno(args: string[]): Promise<string> {
  const out = await runCommandText(Deno.execPath(), args, undefined, ROOT);
  if (out.code !== 0) throw new Error(`deno ${args[0]}: ${out.stderr}`);
  return out.stdout;
}

/** Emits `entry` (relative to the repository) and every local module it imports to a temporary directory. */
export async function transpileGraph(entry: string): Promise<Transpiled> {
  const info = JSON.parse(await deno(["info", "--json", entry])) as { modules: { specifier: string }[] };
  const rootUrl = new URL(`file://${ROOT}`).href;
  const files = info.modules.map((m) => m.specifier).filter((s) => s.startsWith(rootUrl))
    .map((s) => s.slice(rootUrl.length));
  const dir = await Deno.makeTempDir({ prefix: "nmi-as-compiled-" });
  await deno(["transpile", "--source-map", "none", "--outdir", dir, ...files]);
  // The emitted code still names `./x.ts`: point each relative import at its `.js` (an import map with an
  // entry per module, or a config of its own, cost 2.5-3.5 MiB more RSS at start, measured). The modules
  // NMI loads lazily (lib/lazy_import.ts) are outside the graph and not emitted: the benchmark loads none.
  for (const f of files) {
    const out = `${dir}/${f.replace(/\.ts$/, ".js")}`;
    const code = await Deno.readTextFile(out);
    await Deno.writeTextFile(out, code.replace(RELATIVE_TS_IMPORT, "$1$2.js$3"));
  }
  return { entry: `${dir}/${entry.replace(/\.ts$/, ".js")}`, dir };
}
