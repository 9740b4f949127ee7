// Turns objects the manifest generator built into Helm templates, so deploy/ and the chart come from the
// same builders. Values the chart takes from .Values are put into the object as sentinels and replaced in
// the YAML text: `expr` for a scalar, `block` for a key's whole value, `lines` for lines that replace a
// key (optional keys, conditionals). Sentinels are plain YAML scalars («S1», «B2», «L3»), so the YAML
// library never quotes them and their indentation is known.

import { stringify } from "yaml";

type Snippet = (indent: number) => string;

export class HelmTemplate {
  #n = 0;
  readonly #scalars = new Map<string, string>();
  readonly #blocks = new Map<string, Snippet>();
  readonly #lines = new Map<string, Snippet>();

  /** A scalar: `{{ expr }}` where the sentinel stands (also inside a longer string). */
  expr(e: string): string {
    const id = `«S${this.#n++}»`;
    this.#scalars.set(id, `{{ ${e} }}`);
    return id;
  }

  /** A key's value: `key:` followed by what `f(column of the value)` returns (starting with a space). */
  block(f: Snippet): string {
    const id = `«B${this.#n++}»`;
    this.#blocks.set(id, f);
    return id;
  }

  /** A key name whose line (with a null value) is replaced by `f(column of the key)`. */
  lines(f: Snippet): string {
    const id = `«L${this.#n++}»`;
    this.#lines.set(id, f);
    return id;
  }

  /** `toYaml` of a .Values path after the key, as the original chart wrote it. */
  toYaml(path: string): string {
    return this.block((col) => ` {{- toYaml ${path} | nindent ${col} }}`);
  }

  /** `key:` with the .Values path's YAML, only when it is set. */
  optional(key: string, path: string): string {
    return this.lines((col) =>
      `${" ".repeat(col)}{{- with ${path} }}\n${" ".repeat(col)}${key}: {{- toYaml . | nindent ${
        col + 2
      } }}\n` +
      `${" ".repeat(col)}{{- end }}`
    );
  }

  render(objects: readonly object[]): string {
    const text = objects.map((o) => `---\n${stringify(o, { lineWidth: 0, aliasDuplicateObjects: false })}`)
      .join("");
    return this.substitute(text);
  }

  substitute(text: string): string {
    const out: string[] = [];
    for (const line of text.split("\n")) {
      const l = /^(\s*)(«L\d+»): null$/.exec(line);
      if (l) {
        out.push(this.#lines.get(l[2])!(l[1].length));
        continue;
      }
      // A line sentinel must be a mapping key of its own; anywhere else it would be emitted verbatim.
      if (/«L\d+»/.test(line)) throw new Error(`line sentinel in an unsupported place: ${line.trim()}`);
      const b = /^(\s*)(- )?([^\s:]+): («B\d+»)$/.exec(line);
      if (b) {
        const col = b[1].length + (b[2] ? 2 : 0);
        out.push(`${b[1]}${b[2] ?? ""}${b[3]}:${this.#blocks.get(b[4])!(col + 2)}`);
        continue;
      }
      out.push(line.replace(/«S\d+»/g, (id) => this.#scalars.get(id) ?? id));
    }
    return out.join("\n");
  }
}

/** YAML of `value` indented to `col` (each line), for snippets that mix literal YAML and template code. */
export function yamlAt(value: unknown, col: number): string {
  const pad = " ".repeat(col);
  return stringify(value, { lineWidth: 0 }).trimEnd().split("\n").map((l) => pad + l).join("\n");
}
