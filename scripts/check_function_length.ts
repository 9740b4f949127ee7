// Function-length check: every function, method, constructor, accessor and arrow or function expression bound
// to a name (a variable, a property, a class field) longer than MAX_LINES lines in lib/, mic/, nmi/ or
// scripts/ is a finding, unless allow-listed below with the reason. A long function does several jobs; cut
// into named steps it reads as its own table of contents.
//
//   deno run --allow-read scripts/check_function_length.ts [--max N]    exit 1 and one line per finding
//
// It parses with the TypeScript compiler API, so braces in strings, templates and regular expressions cannot
// mislead it. A function's length counts from the line of its first token to the line of its last, both
// included; nested functions are measured on their own and also count in their parent's length.

import ts from "npm:typescript@5.9.3";
import { join, relative, resolve } from "node:path";

const MAX_LINES = 80;

/** Deliberately long functions: "path#name" -> why. Generated tables only. */
const ALLOWED: Record<string, string> = {};

const ROOTS = ["lib", "mic", "nmi", "scripts"];
const SKIP_DIRS = new Set(["node_modules", ".cache", "fixtures"]);

interface LongFunction {
  /** Path relative to the repository root. */
  path: string;
  /** The bound name: `name`, `Class.method`, or `<anonymous>` for an unnamed function. */
  name: string;
  line: number;
  lines: number;
}

/** Every function in `src` longer than `max` lines, outermost first. */
export function longFunctions(path: string, src: string, max = MAX_LINES): LongFunction[] {
  const file = ts.createSourceFile(path, src, ts.ScriptTarget.Latest, true, scriptKind(path));
  const found: LongFunction[] = [];
  const visit = (node: ts.Node): void => {
    if (isMeasured(node)) {
      const start = file.getLineAndCharacterOfPosition(node.getStart(file)).line;
      const end = file.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = end - start + 1;
      if (lines > max) found.push({ path, name: nameOf(node), line: start + 1, lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

function scriptKind(path: string): ts.ScriptKind {
  return path.endsWith(".tsx")
    ? ts.ScriptKind.TSX
    : path.endsWith(".js")
    ? ts.ScriptKind.JS
    : ts.ScriptKind.TS;
}

/** Functions with a body: declarations and members, and any function or arrow expression. */
function isMeasured(node: ts.Node): boolean {
  if (ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isConstructorDeclaration(node)) {
    return node.body !== undefined;
  }
  return ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node) ||
    ts.isFunctionExpression(node) || ts.isArrowFunction(node);
}

/** The name a reader would search for: the declaration's own name, or what the expression is bound to. */
function nameOf(node: ts.Node): string {
  const own = (node as ts.NamedDeclaration).name;
  const bound = own ?? boundName(node.parent);
  const base = bound ? bound.getText() : ts.isConstructorDeclaration(node) ? "constructor" : "<anonymous>";
  const owner = ownerClass(node);
  return owner ? `${owner}.${base}` : base;
}

/** The name of the variable, property or field an expression is the value of. */
function boundName(parent: ts.Node): ts.Node | undefined {
  if (
    ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)
  ) {
    return parent.name;
  }
  if (ts.isBinaryExpression(parent) && parent.operatorToken.kind === ts.SyntaxKind.EqualsToken) {
    return parent.left;
  }
  return undefined;
}

/** The class a member (or a function bound to a class field) belongs to. */
function ownerClass(node: ts.Node): string | undefined {
  const member = ts.isPropertyDeclaration(node.parent) ? node.parent : node;
  const cls = member.parent;
  if (cls && (ts.isClassDeclaration(cls) || ts.isClassExpression(cls)) && ts.isClassElement(member)) {
    return cls.name?.getText() ?? "<class>";
  }
  return undefined;
}

/** The .ts files below `dir`, skipping dependency and fixture folders. */
function* sourceFiles(dir: string): Generator<string> {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory && !SKIP_DIRS.has(entry.name)) yield* sourceFiles(path);
    else if (entry.isFile && entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) yield path;
  }
}

/**
 * The findings of the whole repository at `root`, less the allow-listed ones, and the allow-list entries that
 * match no long function any more (stale: the function was cut or renamed, so its entry should go).
 */
export function checkRepository(
  root: string,
  max = MAX_LINES,
  allowed: Record<string, string> = ALLOWED,
): { findings: LongFunction[]; stale: string[] } {
  const findings: LongFunction[] = [];
  const used = new Set<string>();
  for (const dir of ROOTS) {
    for (const path of sourceFiles(join(root, dir))) {
      const rel = relative(root, path);
      for (const f of longFunctions(rel, Deno.readTextFileSync(path), max)) {
        const key = `${rel}#${f.name}`;
        if (key in allowed) used.add(key);
        else findings.push(f);
      }
    }
  }
  return { findings, stale: Object.keys(allowed).filter((k) => !used.has(k)) };
}

function parseMax(args: string[]): number {
  const i = args.indexOf("--max");
  if (i === -1) return MAX_LINES;
  const n = Number(args[i + 1]);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`--max wants a positive whole number, got ${args[i + 1]}`);
  }
  return n;
}

if (import.meta.main) {
  const root = resolve(new URL("..", import.meta.url).pathname);
  const { findings, stale } = checkRepository(root, parseMax(Deno.args));
  for (const f of findings) console.log(`${f.path}:${f.line}: ${f.name} is ${f.lines} lines`);
  for (const key of stale) console.log(`${key}: allow-listed but no longer long (remove the entry)`);
  if (findings.length + stale.length > 0) {
    console.error(
      `${findings.length} functions longer than the limit, ${stale.length} stale allow-list entries`,
    );
    Deno.exit(1);
  }
}
