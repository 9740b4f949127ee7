// Cache keys of locally built images: a digest of exactly the bytes that go into them.

/** Hex sha256 of `path` (a file, or every file below a directory, sorted, with their names) or of `text`. */
export async function fileDigest(path: string | undefined, text = ""): Promise<string> {
  const parts: Uint8Array[] = [new TextEncoder().encode(text)];
  if (path !== undefined) {
    const files: string[] = [];
    const walk = async (p: string) => {
      const info = await Deno.stat(p);
      if (!info.isDirectory) return void files.push(p);
      for await (const e of Deno.readDir(p)) {
        const skipped = e.name === "node_modules" || e.name === "__pycache__" || e.name.startsWith(".");
        if (!skipped) await walk(`${p}/${e.name}`);
      }
    };
    await walk(path);
    files.sort();
    for (const f of files) parts.push(new TextEncoder().encode(f), await Deno.readFile(f));
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) all.set(p, (off += p.length) - p.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
