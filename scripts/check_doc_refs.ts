// Checks that what comments and READMEs cite is in the repository: every `docs/<name>.md` exists, every
// section quoted right after it ("## Heading" or "Heading") is a `##` heading of that file, and nothing
// cites the reference notes that lived outside the repository (upstream.md, protocols-and-peers.md,
// platform-notes.md without `docs/`, or `../shared/`).
//
//   deno run --allow-read scripts/check_doc_refs.ts     exit 1 and one line per broken citation

import { join, relative, resolve } from "node:path";

const SCAN = ["lib", "mic", "nmi", "scripts", "tests", "deploy", "docs", "README.md", "Dockerfile"];
const SKIP_DIRS = new Set(["node_modules", ".cache"]);
const TEXT = /\.(ts|md|sh|yaml|json)$|^Dockerfile$/;

/** References to files a clone does not have. */
const OUTSIDE = /(?<!docs\/)\b(upstream|protocols-and-peers|platform-notes)\.md\b|\.\.\/shared\//g;

interface Problem {
  file: string;
  line: number;
  what: string;
}

/** `##` headings per docs file name ("upstream" -> {"NMI routes and status codes", ...}). */
export function headingsOf(markdown: string): Set<string> {
  return new Set([...markdown.matchAll(/^##\s+(.+?)\s*$/gm)].map((m) => m[1]));
}

/** Broken citations in one file's text; `docs` maps a docs file name to its headings (absent: no file). */
export function brokenCitations(
  text: string,
  docs: Map<string, Set<string>>,
): { line: number; what: string }[] {
  const found: { line: number; what: string }[] = [];
  const lineAt = (i: number) => text.slice(0, i).split("\n").length;
  for (const m of text.matchAll(OUTSIDE)) {
    found.push({ line: lineAt(m.index), what: `cites ${m[0]}, which is not in the repository` });
  }
  // A citation and the sections quoted right after it: docs/x.md, "## A" and "## B".
  const cite = /docs\/([\w-]+)\.md((?:[,:]?\s*(?:\/\/\s*)?(?:and\s+)?"[^"\n]+")*)/g;
  for (const m of text.matchAll(cite)) {
    const headings = docs.get(m[1]);
    if (!headings) {
      found.push({ line: lineAt(m.index), what: `cites docs/${m[1]}.md, which does not exist` });
      continue;
    }
    for (const q of m[2].matchAll(/"([^"\n]+)"/g)) {
      const section = q[1].replace(/^##\s*/, "");
      if (!headings.has(section)) {
        found.push({
          line: lineAt(m.index),
          what: `cites docs/${m[1]}.md section "${section}", not a heading there`,
        });
      }
    }
  }
  return found;
}

async function collect(path: string, into: string[]): Promise<void> {
  const info = await Deno.stat(path).catch(() => undefined);
  if (!info) return;
  if (info.isFile) {
    if (TEXT.test(path.split("/").pop()!)) into.push(path);
    return;
  }
  for await (const entry of Deno.readDir(path)) {
    if (!SKIP_DIRS.has(entry.name)) await collect(join(path, entry.name), into);
  }
}

async function main(): Promise<number> {
  const root = resolve(new URL("..", import.meta.url).pathname);
  const docs = new Map<string, Set<string>>();
  for await (const entry of Deno.readDir(join(root, "docs"))) {
    const m = /^(.+)\.md$/.exec(entry.name);
    if (m) docs.set(m[1], headingsOf(await Deno.readTextFile(join(root, "docs", entry.name))));
  }
  const files: string[] = [];
  for (const p of SCAN) await collect(join(root, p), files);
  const problems: Problem[] = [];
  for (const file of files) {
    if (file.endsWith("check_doc_refs.ts") || file.endsWith("check_doc_refs.test.ts")) continue;
    for (const p of brokenCitations(await Deno.readTextFile(file), docs)) {
      problems.push({ file: relative(root, file), ...p });
    }
  }
  for (const p of problems) console.log(`${p.file}:${p.line}  ${p.what}`);
  console.error(
    problems.length ? `check_doc_refs: ${problems.length} broken citation(s)` : "check_doc_refs: none",
  );
  return problems.length ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
