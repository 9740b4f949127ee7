// NMI runs without deno.json (--no-config, nmi/permissions.ts), so the code MIC and NMI run names its npm
// packages in full (`npm:yaml@2.9.1`), not through the import map. Those names must be deno.json's, version
// and all: one version of each package in the repository, and the one deno.lock pins.
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;

async function* sources(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(`${ROOT}${dir}`)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* sources(path);
    else if (e.name.endsWith(".ts")) yield path;
  }
}

Deno.test("the npm packages the services name in full are deno.json's, at its versions", async () => {
  const imports: Record<string, string> = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).imports;
  const mapped = new Set(Object.values(imports));
  const named = new Map<string, string>();
  for (const dir of ["lib", "mic", "nmi"]) {
    for await (const path of sources(dir)) {
      const text = await Deno.readTextFile(`${ROOT}${path}`);
      for (const m of text.matchAll(/["'](npm:[^"'/]*(?:\/[^"'@]*)?@[^"'/]+)["']/g)) named.set(m[1], path);
    }
  }
  assert.ok(named.has("npm:node-forge@1.4.3"), "the scan finds the specifiers");
  const strays = [...named].filter(([s]) => !mapped.has(s)).map(([s, path]) => `${s} in ${path}`);
  assert.deepEqual(strays, []);
});

// client-node is left out: without deno.lock its own dependencies resolve from the registry's metadata, which
// `deno install` does not cache for them. NMI needs it only for a legacy auth-provider kubeconfig, never in a
// pod, and the image compiles it pinned to deno.lock (the Dockerfile).
Deno.test("under NMI's permissions (no deno.json, offline) the PKCS#12 and YAML modules load", async () => {
  const { NMI_PERMISSIONS } = await import("../../nmi/permissions.ts");
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/probe.ts`,
      `import { importLazily, LAZY_MODULES } from "${ROOT}lib/lazy_import.ts";
const offline = LAZY_MODULES.filter((m) => m !== "lib/npm/client_node.ts");
const loaded = await Promise.all(offline.map(async (m) => [m, Object.keys(await importLazily(m)).length]));
console.log(JSON.stringify(Object.fromEntries(loaded)));
const { parse } = await importLazily("lib/npm/yaml.ts");
console.log(JSON.stringify(parse("a: [1, 2]")));
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--cached-only", ...NMI_PERMISSIONS, `${dir}/probe.ts`],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const [exports, parsed] = new TextDecoder().decode(out.stdout).trim().split("\n");
    for (const [m, n] of Object.entries(JSON.parse(exports))) {
      assert.ok(Number(n) > 0, `${m} exports nothing`);
    }
    assert.equal(parsed, '{"a":[1,2]}');
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
