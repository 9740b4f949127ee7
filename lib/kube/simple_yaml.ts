// A strict parser of the YAML subset kubeconfigs are written in (kubectl, kind, minikube, k3s, az, aws,
// our sandbox), so that reading one does not load the yaml package: about 6 MiB of resident memory in a
// process that reads only a kubeconfig (the npm layer, node compat, yaml's ~500 KB of JS). What it does
// not fully understand it declines (undefined) and the caller parses with yaml; what it accepts must equal
// yaml@2.9.1's `parse` with its defaults (YAML 1.2 core schema, unique keys), which
// tests/unit/kube/simple_yaml.test.ts checks against yaml on a corpus and on random mutations of it.
//
// The subset: one document (an optional leading `---`), comments, block mappings and sequences (compact
// `- key: value` items, a sequence at its key's indentation as kubectl writes it), single-line flow
// collections, single-line plain, single- and double-quoted scalars. Declined: tabs, anchors, aliases,
// tags, block and multi-line scalars, complex and merge keys, non-string and duplicate keys.

type Node = unknown;

interface Line {
  indent: number;
  /** The line after its indentation, trailing spaces removed. */
  text: string;
}

/** Thrown inside the parser when the input leaves the subset; parseSimpleYaml turns it into undefined. */
class Decline extends Error {}

function decline(): never {
  throw new Decline();
}

// Control characters, lone CRs, tabs and the Unicode line breaks are where YAML processors differ most
// (and kubeconfigs never have them), so any of them hands the text to yaml.
// deno-lint-ignore no-control-regex
const UNUSUAL_CHARS = /[\t\r\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\u2028\u2029]/;
const INDICATORS = "-?:,[]{}#&*!|>'\"%@`";
const FLOW_INDICATORS = ",[]{}";
/** yaml rejects a block mapping key whose `:` is more than 1024 characters after its start. */
const MAX_KEY = 1000;

/**
 * `s` without trailing spaces (only spaces: yaml keeps a trailing no-break space); a loop, as `/ +$/` is
 * quadratic on a long run of inner spaces.
 */
function trimEndSpaces(s: string): string {
  let end = s.length;
  while (s[end - 1] === " ") end--;
  return s.slice(0, end);
}

/** The content lines; comment-only and blank lines carry no data. */
function toLines(text: string): Line[] {
  const body = (text.startsWith("\ufeff") ? text.slice(1) : text).replaceAll("\r\n", "\n");
  if (UNUSUAL_CHARS.test(body)) decline();
  const lines: Line[] = [];
  let marker = false;
  for (const raw of body.split("\n")) {
    const trimmed = trimEndSpaces(raw);
    const content = trimmed.replace(/^ +/, "");
    if (content === "" || content.startsWith("#")) continue;
    const indent = trimmed.length - content.length;
    if (indent === 0 && /^(?:---|\.\.\.)(?: |$)/.test(content)) {
      // A leading `---` only starts the one document; later ones start or end another.
      if (content === "---" && lines.length === 0 && !marker) {
        marker = true;
        continue;
      }
      decline();
    }
    lines.push({ indent, text: content });
  }
  return lines;
}

/** Plain scalars resolved as yaml's core schema does (yaml/dist/schema/core), in its order. */
function resolvePlain(s: string): Node {
  if (/^(?:~|[Nn]ull|NULL)?$/.test(s)) return null;
  if (/^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/.test(s)) return s[0] === "t" || s[0] === "T";
  if (/^0o[0-7]+$/.test(s)) return parseInt(s.slice(2), 8);
  if (/^[-+]?[0-9]+$/.test(s)) return parseInt(s, 10);
  if (/^0x[0-9a-fA-F]+$/.test(s)) return parseInt(s.slice(2), 16);
  if (/^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/.test(s)) {
    return s.slice(-3).toLowerCase() === "nan" ? NaN : s[0] === "-" ? -Infinity : Infinity;
  }
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/.test(s)) return parseFloat(s);
  if (/^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/.test(s)) return parseFloat(s);
  return s;
}

/** The escapes yaml knows in double-quoted scalars (its resolve-flow-scalar.js), by the letter after `\\`. */
const ESCAPES: Record<string, string> = Object.fromEntries(
  [...'0abefnrtvN_LP "/\\'].map((c, i) => [c, '\0\x07\b\x1b\f\n\r\t\v\u0085\u00a0\u2028\u2029 "/\\'[i]]),
);

/** A mapping key: strings only (yaml would turn others into strings, and `1` and `"1"` would collide). */
function setKey(map: Record<string, Node>, key: Node, value: Node): void {
  if (typeof key !== "string") decline();
  // `<<` may merge, `__proto__` would set the prototype; duplicates make yaml throw.
  if (key === "<<" || key === "__proto__" || Object.hasOwn(map, key)) decline();
  map[key] = value;
}

/** Reads scalars and flow collections within one line. */
class Cursor {
  i = 0;
  constructor(readonly s: string) {}

  spaces(): void {
    while (this.s[this.i] === " ") this.i++;
  }

  /** Only spaces and a comment (after a space, as YAML wants) may follow a value. */
  end(): void {
    const start = this.i;
    this.spaces();
    if (this.i < this.s.length && !(this.s[this.i] === "#" && this.i > start)) decline();
  }

  value(flow: boolean): Node {
    const c = this.s[this.i];
    return c === "[" ? this.flowSeq() : c === "{" ? this.flowMap() : this.key(flow);
  }

  /** A scalar: quoted or plain (resolved by the core schema); also what a key may be. */
  key(flow: boolean): Node {
    const c = this.s[this.i];
    if (c === '"') return this.doubleQuoted();
    if (c === "'") return this.singleQuoted();
    return resolvePlain(this.plain(flow));
  }

  /** Whether `c` may follow `-`, `?` or `:` inside a plain scalar (a space or flow indicator ends it). */
  private safe(c: string | undefined, flow: boolean): boolean {
    return c !== undefined && c !== " " && !(flow && FLOW_INDICATORS.includes(c));
  }

  plain(flow: boolean): string {
    const s = this.s;
    const start = this.i;
    const first = s[start];
    if (first === undefined) decline();
    if (INDICATORS.includes(first) && !("-?:".includes(first) && this.safe(s[start + 1], flow))) decline();
    for (; this.i < s.length; this.i++) {
      const c = s[this.i];
      if (c === " " && s[this.i + 1] === "#") break;
      if (c === ":" && !this.safe(s[this.i + 1], flow)) break;
      if (flow && FLOW_INDICATORS.includes(c)) break;
    }
    return trimEndSpaces(s.slice(start, this.i));
  }

  /** The text matching `re` here, which is then passed; none: the scalar goes on past this line. */
  private match(re: RegExp): RegExpExecArray {
    re.lastIndex = this.i;
    const m = re.exec(this.s) ?? decline();
    this.i = re.lastIndex;
    return m;
  }

  singleQuoted(): string {
    return this.match(/'((?:[^']|'')*)'/y)[1].replaceAll("''", "'");
  }

  doubleQuoted(): string {
    const body = this.match(/"((?:[^"\\]|\\.)*)"/y)[1];
    return body.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)/g, (_, e: string) => {
      if (e.length === 1) return Object.hasOwn(ESCAPES, e) ? ESCAPES[e] : decline();
      const code = parseInt(e.slice(1), 16);
      return code > 0x10ffff ? decline() : String.fromCodePoint(code);
    });
  }

  /** `[a, b]` or `{a: b}`, entries split by commas (a trailing one allowed; `[a, , b]` is declined). */
  private flow<T>(out: T, close: string, entry: () => void): T {
    this.i++;
    this.spaces();
    while (this.s[this.i] !== close) {
      entry();
      this.spaces();
      if (this.s[this.i] === close) break;
      if (this.s[this.i++] !== ",") decline();
      this.spaces();
    }
    this.i++;
    return out;
  }

  /** A pair inside (`[a: b]`) is declined. */
  flowSeq(): Node[] {
    const out: Node[] = [];
    return this.flow(out, "]", () => out.push(this.value(true)));
  }

  /** Every entry needs `: ` and a value (`{a}`, `{a: }` and `{"a":b}` are declined). */
  flowMap(): Record<string, Node> {
    const out: Record<string, Node> = {};
    return this.flow(out, "}", () => {
      const key = this.key(true);
      this.spaces();
      if (this.s[this.i] !== ":" || this.s[this.i + 1] !== " ") decline();
      this.i += 2;
      this.spaces();
      setKey(out, key, this.value(true));
    });
  }
}

/** `key:` and what follows it on the line, or undefined when the text does not start with a key. */
function splitKey(text: string): { key: Node; rest: string } | undefined {
  if (text[0] === "[" || text[0] === "{") return undefined; // a flow value, or a complex key
  const c = new Cursor(text);
  const key = c.key(false);
  c.spaces();
  if (text[c.i] !== ":" || (c.i + 1 < text.length && text[c.i + 1] !== " ")) return undefined;
  if (c.i > MAX_KEY) decline();
  return { key, rest: text.slice(c.i + 1).replace(/^ +/, "") };
}

function isSeqItem(text: string): boolean {
  return text === "-" || text.startsWith("- ");
}

/** A value written on its key's or dash's line: a scalar or a flow collection, then only a comment. */
function inline(text: string): Node {
  const c = new Cursor(text);
  const value = c.value(false);
  c.end();
  return value;
}

function isEmpty(rest: string): boolean {
  return rest === "" || rest.startsWith("#");
}

/** Block collections over the content lines; indentation decides where each one ends. */
class BlockParser {
  pos = 0;
  constructor(readonly lines: Line[]) {}

  peek(): Line | undefined {
    return this.lines[this.pos];
  }

  block(indent: number): Node {
    return isSeqItem(this.peek()!.text) ? this.sequence(indent) : this.mapping(indent);
  }

  /** A line deeper than `indent` after a complete value continues it (a multi-line scalar) or is an error. */
  noDeeper(indent: number): void {
    const next = this.peek();
    if (next && next.indent > indent) decline();
  }

  /** The value of `key:` or `-` with nothing after it: a nested block, or null. */
  nested(indent: number, seqAtSameIndent: boolean): Node {
    const next = this.peek();
    let value: Node = null;
    if (next && next.indent > indent) value = this.block(next.indent);
    else if (seqAtSameIndent && next?.indent === indent && isSeqItem(next.text)) {
      value = this.sequence(indent);
    }
    this.noDeeper(indent);
    return value;
  }

  mapping(indent: number): Record<string, Node> {
    const out: Record<string, Node> = {};
    for (let line = this.peek(); line?.indent === indent; line = this.peek()) {
      const entry = splitKey(line.text);
      if (!entry) decline();
      this.pos++;
      // After an inline value, a deeper next line is caught where this mapping ends.
      setKey(out, entry.key, isEmpty(entry.rest) ? this.nested(indent, true) : inline(entry.rest));
    }
    return out;
  }

  sequence(indent: number): Node[] {
    const out: Node[] = [];
    for (let line = this.peek(); line?.indent === indent && isSeqItem(line.text); line = this.peek()) {
      const rest = line.text.slice(1).replace(/^ +/, "");
      if (isEmpty(rest)) {
        this.pos++;
        out.push(this.nested(indent, false));
      } else if (isSeqItem(rest)) {
        decline(); // `- - a`
      } else if (splitKey(rest)) {
        // `- key: value` starts a mapping at the key's column; the line becomes its first entry.
        const column = indent + line.text.length - rest.length;
        this.lines[this.pos] = { indent: column, text: rest };
        out.push(this.mapping(column));
      } else {
        this.pos++;
        out.push(inline(rest));
      }
      this.noDeeper(indent);
    }
    return out;
  }
}

/**
 * The document `text` holds, when it is within the subset above (then it equals what yaml's `parse`
 * returns); undefined otherwise, for the caller to parse with yaml. An empty document is null.
 */
export function parseSimpleYaml(text: string): unknown | undefined {
  try {
    const parser = new BlockParser(toLines(text));
    const first = parser.peek();
    if (!first) return null;
    // A document that is a scalar or flow collection is no kubeconfig; yaml reports it.
    if (!isSeqItem(first.text) && !splitKey(first.text)) return undefined;
    const doc = parser.block(first.indent);
    return parser.peek() ? undefined : doc;
  } catch (e) {
    // RangeError: nesting deep enough to exhaust the stack.
    if (e instanceof Decline || e instanceof RangeError) return undefined;
    throw e;
  }
}
