// Modules that bring npm packages, loaded at their first use through a specifier Deno's module graph does
// not follow. `deno run` resolves every npm package its graph names before the program starts, dynamic
// imports included: for NMI that was 2-3 MiB of RSS at every start (the npm resolver's code and state) for
// packages only some nodes ever load (PKCS#12 certificates, unusual kubeconfigs). `deno compile` does not
// follow these imports either, so the Dockerfile includes each module with --include (scripts/images).

/** Each module loaded this way, relative to the repository root. */
export const LAZY_MODULES = [
  "lib/azure/certificate_assertion.ts",
  "lib/npm/yaml.ts",
  "lib/npm/client_node.ts",
] as const;

type LazyModule = typeof LAZY_MODULES[number];

const ROOT = new URL("../", import.meta.url);

/**
 * `import()` of one of LAZY_MODULES; `T` is its type (`typeof import("...")`, which loads nothing), given at
 * each call. Not derived here from a map of `typeof import()` per module: tried, and NMI started with about
 * 1 MiB more of the deno executable resident (six A/B pairs, 501 pods, 15 s after: 54.4-55.5 MiB against
 * 53.4-54.7), though no module more is loaded.
 */
export function importLazily<T>(module: LazyModule): Promise<T> {
  // A computed specifier: Deno's module graph follows only string literals.
  const specifier = new URL(module, ROOT).href;
  return import(specifier);
}
