// Unused-export check: every symbol a module exports must be imported by some other file of the repository,
// or be allow-listed below with the reason it is exported anyway. Exporting only what others use keeps a
// module's surface honest: what is not exported is free to change.
//
//   deno run --allow-read scripts/check_exports.ts [--list]     exit 1 and one line per finding
//
// It reads the source text (comments and strings removed) rather than type information: `export` declarations
// and lists, and `import` / `export ... from` statements with relative specifiers. A namespace import counts the
// members used through it (all of them when the namespace itself is passed on), `export *` and dynamic
// `import()` count every export of their target.

import { dirname, join, relative, resolve } from "node:path";

/** Deliberate exports nothing in the repository imports: "path#name" (or "path#*" for a whole file) -> why. */
const ALLOWED: Record<string, string> = {};

const ROOTS = ["lib", "mic", "nmi", "scripts", "tests"];
const SKIP_DIRS = new Set(["node_modules", ".cache", "fixtures"]);

interface ExportDecl {
  name: string;
  line: number;
}

interface ImportUse {
  /** Absolute path of the imported module. */
  target: string;
  /** Names used; "*" means every export. */
  names: Set<string>;
}

/** The text with comments and string/template contents blanked, line breaks kept (line numbers hold). */
export function stripCode(src: string): string {
  let out = "";
  let i = 0;
  const blank = (s: string) => s.replace(/[^\n]/g, " ");
  while (i < src.length) {
    const two = src.slice(i, i + 2);
    if (two === "//") {
      const end = src.indexOf("\n", i);
      const stop = end === -1 ? src.length : end;
      out += blank(src.slice(i, stop));
      i = stop;
    } else if (two === "/*") {
      const end = src.indexOf("*/", i + 2);
      const stop = end === -1 ? src.length : end + 2;
      out += blank(src.slice(i, stop));
      i = stop;
    } else if (src[i] === '"' || src[i] === "'" || src[i] === "`") {
      const stop = stringEnd(src, i);
      // Keep the quotes and the text of plain strings: import specifiers live there.
      out += src[i] === "`" ? "`" + blank(src.slice(i + 1, stop - 1)) + "`" : src.slice(i, stop);
      i = stop;
    } else {
      out += src[i++];
    }
  }
  return out;
}

function stringEnd(src: string, start: number): number {
  const quote = src[start];
  let i = start + 1;
  while (i < src.length && src[i] !== quote) {
    if (src[i] === "\\") i++;
    else if (quote !== "`" && src[i] === "\n") break;
    i++;
  }
  return Math.min(i + 1, src.length);
}

const lineOf = (text: string, index: number) => text.slice(0, index).split("\n").length;

/** Names a module exports, with the line of each declaration (`export default` is named "default"). */
export function exportsOf(code: string): ExportDecl[] {
  const found: ExportDecl[] = [];
  const decl =
    /^[ \t]*export\s+(?:declare\s+)?(?:default\s+)?(?:async\s+)?(?:abstract\s+)?(?:function\*?|class|const|let|var|interface|type|enum|namespace)\s+([A-Za-z_$][\w$]*)/gm;
  for (const m of code.matchAll(decl)) {
    found.push({
      name: /export\s+(?:declare\s+)?default/.test(m[0]) ? "default" : m[1],
      line: lineOf(code, m.index),
    });
  }
  for (const m of code.matchAll(/^[ \t]*export\s+default\s+(?!async\b|function\b|class\b|abstract\b)/gm)) {
    found.push({ name: "default", line: lineOf(code, m.index) });
  }
  // `export { a, b as c }` without `from` re-exports local names under the outer ones.
  for (const m of code.matchAll(/^[ \t]*export\s+(?:type\s+)?\{([^}]*)\}(?!\s*from)/gm)) {
    for (const part of m[1].split(",").map((p) => p.trim()).filter(Boolean)) {
      const outer = part.replace(/^type\s+/, "").split(/\s+as\s+/).pop()!;
      found.push({ name: outer, line: lineOf(code, m.index) });
    }
  }
  return found;
}

/** Imports of relative modules from one file (`code` already stripped), resolved against `file`. */
export function importsOf(code: string, file: string): ImportUse[] {
  const uses: ImportUse[] = [];
  const at = (spec: string) => resolve(dirname(file), spec);
  const stmt = /\b(import|export)\s+(type\s+)?([^;]*?)\s+from\s+["'](\.{1,2}\/[^"']+)["']/g;
  for (const m of code.matchAll(stmt)) {
    uses.push({ target: at(m[4]), names: clauseNames(m[1], m[3], code) });
  }
  for (const m of code.matchAll(/\bimport\s*\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g)) {
    uses.push({ target: at(m[1]), names: new Set(["*"]) });
  }
  return uses;
}

/** What an import or re-export clause takes from its module. */
function clauseNames(keyword: string, clause: string, code: string): Set<string> {
  const names = new Set<string>();
  const star = /^\*\s*(?:as\s+([\w$]+))?$/.exec(clause.trim());
  if (star) {
    if (keyword === "export" || !star[1]) names.add("*");
    else for (const n of namespaceMembers(code, star[1])) names.add(n);
    return names;
  }
  const braces = /\{([^}]*)\}/.exec(clause);
  const outside = clause.replace(/\{[^}]*\}/, "").replace(/,/g, " ").trim();
  if (keyword === "import" && outside && !outside.startsWith("*")) names.add("default");
  const ns = /\*\s*as\s+([\w$]+)/.exec(outside);
  if (ns) { for (const n of namespaceMembers(code, ns[1])) names.add(n); }
  for (const part of (braces?.[1] ?? "").split(",").map((p) => p.trim()).filter(Boolean)) {
    names.add(part.replace(/^type\s+/, "").split(/\s+as\s+/)[0]);
  }
  return names;
}

/** Members used as `ns.X`; "*" when `ns` is also used on its own (passed on, spread, indexed). */
function namespaceMembers(code: string, ns: string): Set<string> {
  const members = new Set<string>();
  const esc = ns.replace(/\$/g, "\\$");
  for (const m of code.matchAll(new RegExp(`\\b${esc}\\.([\\w$]+)`, "g"))) members.add(m[1]);
  const bare = code.match(new RegExp(`(?<![\\w$.])${esc}\\b(?!\\s*\\.)`, "g")) ?? [];
  // One bare use is the import clause itself.
  if (bare.length > 1) members.add("*");
  return members;
}

interface Finding {
  file: string;
  line: number;
  name: string;
}

/** Exports no other file imports, minus the allow-list; also allow-list entries that no longer apply. */
export function unusedExports(
  sources: Map<string, string>,
  root: string,
  allowed: Record<string, string> = ALLOWED,
): { findings: Finding[]; stale: string[] } {
  const used = new Map<string, Set<string>>();
  const exported = new Map<string, ExportDecl[]>();
  for (const [file, text] of sources) {
    const code = stripCode(text);
    exported.set(file, exportsOf(code));
    for (const use of importsOf(code, file)) {
      if (use.target === file) continue;
      const set = used.get(use.target) ?? new Set<string>();
      for (const n of use.names) set.add(n);
      used.set(use.target, set);
    }
  }
  const findings: Finding[] = [];
  const hits = new Set<string>();
  for (const [file, decls] of exported) {
    const rel = relative(root, file);
    const names = used.get(file) ?? new Set<string>();
    for (const d of decls) {
      if (names.has("*") || names.has(d.name)) continue;
      const key = [`${rel}#${d.name}`, `${rel}#*`].find((k) => k in allowed);
      if (key) hits.add(key);
      else findings.push({ file: rel, line: d.line, name: d.name });
    }
  }
  return { findings, stale: Object.keys(allowed).filter((k) => !hits.has(k)) };
}

async function collect(dir: string, into: Map<string, string>): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory && !SKIP_DIRS.has(entry.name)) await collect(path, into);
    else if (entry.isFile && /\.tsx?$/.test(entry.name) && !entry.name.endsWith(".d.ts")) {
      into.set(path, await Deno.readTextFile(path));
    }
  }
}

async function main(args: string[]): Promise<number> {
  const root = resolve(new URL("..", import.meta.url).pathname);
  const sources = new Map<string, string>();
  for (const dir of ROOTS) await collect(join(root, dir), sources);
  const { findings, stale } = unusedExports(sources, root);
  findings.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
  for (const f of findings) {
    console.log(`${f.file}:${f.line}  ${f.name}  exported, imported by no other file`);
  }
  for (const key of stale) {
    console.log(`${key}  allow-listed in scripts/check_exports.ts, but no longer needed`);
  }
  const total = findings.length + stale.length;
  if (args.includes("--list")) return 0;
  console.error(
    total ? `check_exports: ${total} finding(s) in ${sources.size} files` : "check_exports: none",
  );
  return total ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
