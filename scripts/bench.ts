// `deno task bench [name]`: runs a benchmark under scripts/bench/ (each prints a table); lists them without a name.

const dir = new URL("./bench/", import.meta.url).pathname;
const available = [...Deno.readDirSync(dir)]
  .filter((e) => e.isFile && e.name.endsWith(".ts"))
  .map((e) => e.name.replace(/\.ts$/, ""))
  .sort();
const [name, ...rest] = Deno.args;
if (!name || !available.includes(name)) {
  console.error(`usage: deno task bench <name> [args]\navailable: ${available.join(", ") || "(none yet)"}`);
  Deno.exit(name ? 2 : 0);
}
const status = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", `${dir}${name}.ts`, ...rest] })
  .spawn()
  .status;
Deno.exit(status.code);
