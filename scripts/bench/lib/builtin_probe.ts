// One process of `deno task bench builtin_rss`: the floor server (a Deno.serve that has answered one fetch),
// then one use of the built-in under test, then "ready" for the benchmark to read its RSS.
import { compareStrings } from "../../../lib/compare.ts";
import { httpDate, isoTime } from "../../../lib/time_text.ts";

const NAMES = ["kube-system", "default", "app-2", "app-10", "azure-identity"];

export const USES: Record<string, () => unknown> = {
  "nothing more": () => 0,
  "String.prototype.localeCompare": () => [...NAMES].sort((a, b) => a.localeCompare(b)),
  "lib/compare.ts compareStrings": () => [...NAMES].sort(compareStrings),
  "Date.prototype.toISOString": () => new Date().toISOString(),
  "Date.prototype.toUTCString": () => new Date().toUTCString(),
  "a Date's getUTC* fields": () => {
    const d = new Date();
    return [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMilliseconds()];
  },
  "lib/time_text.ts isoTime + httpDate": () => isoTime(Date.now()) + httpDate(Date.now()),
};

if (import.meta.main) {
  const use = USES[Deno.args[0]];
  if (!use) throw new Error(`unknown use ${Deno.args[0]}; one of: ${Object.keys(USES).join(", ")}`);
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    () => new Response("x".repeat(1475)),
  );
  await (await fetch(`http://127.0.0.1:${server.addr.port}/`)).text();
  use();
  console.log("ready");
}
