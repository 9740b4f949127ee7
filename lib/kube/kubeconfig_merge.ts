// Kubeconfig files merged the way kubectl merges a KUBECONFIG list: the first file to define a cluster, user
// or context name wins it, current-context comes from the first file that sets one, and every relative path
// in a file is resolved against that file's folder (a merged config has no single folder to be relative
// to). Pure functions over parsed YAML; reading the files is config.ts's job.

export type KubeconfigDoc = Record<string, unknown>;
type Named = { name?: unknown; [k: string]: unknown };

/** The path-valued fields of each section, as client-go's ResolvePaths knows them. */
const CLUSTER_PATHS = ["certificate-authority"];
const USER_PATHS = ["client-certificate", "client-key", "tokenFile"];

function resolve(base: string, value: unknown): unknown {
  return typeof value === "string" && value !== "" && !value.startsWith("/")
    ? normalize(`${base}/${value}`)
    : value;
}

// POSIX paths as node:path's dirname and join give them (MIC and NMI run on Linux); importing node:path would
// start Deno's Node compatibility layer, megabytes of RSS in every process.
function dirname(path: string): string {
  const end = path.replace(/(.)\/+$/, "$1").lastIndexOf("/");
  return end < 0 ? "." : end === 0 ? "/" : path.slice(0, end).replace(/(.)\/+$/, "$1");
}

/** `.` and empty segments dropped, `..` taking its parent away. */
function normalize(path: string): string {
  const absolute = path.startsWith("/");
  const out: string[] = [];
  for (const seg of path.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg !== "..") out.push(seg);
    else if (out.length && out[out.length - 1] !== "..") out.pop();
    else if (!absolute) out.push("..");
  }
  const joined = (absolute ? "/" : "") + out.join("/");
  return joined || (absolute ? "/" : ".");
}

function section(doc: KubeconfigDoc, key: string): Named[] {
  const v = doc[key];
  return Array.isArray(v) ? v.filter((e): e is Named => e !== null && typeof e === "object") : [];
}

/** A copy of one file's document with its relative paths made absolute against the file's folder. */
export function resolveRelativePaths(doc: KubeconfigDoc, filePath: string): KubeconfigDoc {
  const base = dirname(filePath);
  const withPaths = (entries: Named[], inner: string, keys: string[], extra?: (o: Named) => Named) =>
    entries.map((e) => {
      const body = e[inner];
      if (body === null || typeof body !== "object") return e;
      let o = { ...(body as Named) };
      for (const k of keys) if (k in o) o[k] = resolve(base, o[k]);
      if (extra) o = extra(o);
      return { ...e, [inner]: o };
    });
  return {
    ...doc,
    clusters: withPaths(section(doc, "clusters"), "cluster", CLUSTER_PATHS),
    users: withPaths(section(doc, "users"), "user", USER_PATHS, (user) => {
      const exec = user.exec as Named | undefined;
      // kubectl resolves an exec command only when it names a path ("./bin/x"); a bare name is looked up
      // on PATH.
      if (exec && typeof exec.command === "string" && exec.command.includes("/")) {
        return { ...user, exec: { ...exec, command: resolve(base, exec.command) } };
      }
      return user;
    }),
    contexts: section(doc, "contexts"),
  };
}

/** Merges documents (each already path-resolved), earlier ones winning, into one kubeconfig document. */
export function mergeKubeconfigs(docs: KubeconfigDoc[]): KubeconfigDoc {
  const merged: Record<"clusters" | "users" | "contexts", Named[]> = {
    clusters: [],
    users: [],
    contexts: [],
  };
  let current: string | undefined;
  for (const doc of docs) {
    for (const key of ["clusters", "users", "contexts"] as const) {
      for (const entry of section(doc, key)) {
        if (typeof entry.name !== "string") continue;
        if (!merged[key].some((e) => e.name === entry.name)) merged[key].push(entry);
      }
    }
    const cc = doc["current-context"];
    if (current === undefined && typeof cc === "string" && cc !== "") current = cc;
  }
  return { apiVersion: "v1", kind: "Config", ...merged, "current-context": current ?? "" };
}
