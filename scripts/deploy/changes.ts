// What an apply changed, decided from the objects as they were before and as the apiserver returned them:
// created (absent before), unchanged (the same apart from bookkeeping), or changed. Pure, so the summary
// `deno task deploy` prints is tested without a cluster.

interface ObjectLike {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

type Change = "created" | "changed" | "unchanged";

export interface ChangeLine {
  change: Change;
  kind: string;
  name: string;
  namespace?: string;
}

/** `kind/namespace/name`, the identity of an object in the summary. */
function objectKey(o: ObjectLike): string {
  return `${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;
}

/** Items of kubectl's `-o json` output: a List, one object, or nothing. */
export function itemsOf(json: string): ObjectLike[] {
  if (!json.trim()) return [];
  const o = JSON.parse(json) as ObjectLike & { items?: ObjectLike[] };
  return o.kind === "List" ? (o.items ?? []) : [o];
}

// Fields the apiserver and controllers maintain: they move without the manifest changing.
const BOOKKEEPING = ["resourceVersion", "managedFields", "generation", "creationTimestamp", "uid"];

/** JSON with sorted keys and without bookkeeping fields or status. */
function comparable(o: ObjectLike): string {
  const { status: _status, metadata = {}, ...rest } = o;
  const meta = Object.fromEntries(Object.entries(metadata).filter(([k]) => !BOOKKEEPING.includes(k)));
  return canonical({ ...rest, metadata: meta });
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>).sort((
      [a],
      [b],
    ) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

export function classify(before: ObjectLike[], after: ObjectLike[]): ChangeLine[] {
  const old = new Map(before.map((o) => [objectKey(o), o]));
  return after.map((o) => {
    const prev = old.get(objectKey(o));
    const change: Change = !prev ? "created" : comparable(prev) === comparable(o) ? "unchanged" : "changed";
    return {
      change,
      kind: o.kind ?? "?",
      name: o.metadata?.name ?? "?",
      ...(o.metadata?.namespace ? { namespace: o.metadata.namespace } : {}),
    };
  });
}

/** The closing line: counts, or that nothing changed. */
export function summaryLine(lines: ChangeLine[], dryRun: boolean): string {
  const n = (c: Change) => lines.filter((l) => l.change === c).length;
  const verb = dryRun ? "would be " : "";
  if (n("created") + n("changed") === 0) {
    return `${lines.length} objects, nothing ${
      dryRun ? "would change" : "changed"
    }: the cluster already matches`;
  }
  return `${lines.length} objects: ${n("created")} ${verb}created, ${n("changed")} ${verb}changed, ` +
    `${n("unchanged")} unchanged${dryRun ? " (dry run: nothing stored)" : ""}`;
}
