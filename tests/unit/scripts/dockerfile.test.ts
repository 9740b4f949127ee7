// The Dockerfile cannot be built on these machines (`deno compile` downloads its runtime), so its promises
// are checked here: each binary is compiled with exactly the permissions the tests run it with.

import assert from "node:assert/strict";
import { MIC_ENTRYPOINT, MIC_PERMISSIONS } from "../../../mic/permissions.ts";
import { NMI_ENTRY, NMI_PERMISSIONS } from "../../../nmi/permissions.ts";

const text = await Deno.readTextFile(new URL("../../../Dockerfile", import.meta.url));

/** Instructions with continuation lines joined, comments dropped. */
function instructions(dockerfile: string): string[] {
  return dockerfile.replace(/\\\n/g, " ").split("\n").map((l) => l.trim()).filter((l) =>
    l && !l.startsWith("#")
  );
}

/** The flags of the `deno compile` that builds `entry`, in order. */
function compileFlags(entry: string): string[] {
  const runs = instructions(text).filter((l) => /^RUN deno compile /.test(l) && l.endsWith(` ${entry}`));
  assert.equal(runs.length, 1, `exactly one deno compile of ${entry}`);
  const words = runs[0].split(/\s+/).slice(3, -1);
  const output = words.indexOf("--output");
  assert.ok(output >= 0, "--output names the binary");
  words.splice(output, 2);
  return words.filter((w) => w !== "--frozen");
}

Deno.test("Dockerfile: MIC and NMI are compiled with exactly their permissions (mic/ and nmi/permissions.ts)", () => {
  assert.deepEqual(compileFlags(MIC_ENTRYPOINT), [...MIC_PERMISSIONS]);
  assert.deepEqual(compileFlags(NMI_ENTRY), [...NMI_PERMISSIONS]);
  for (const line of instructions(text)) {
    assert.doesNotMatch(line, /--allow-all|\s-A(\s|$)|--allow-write|--allow-ffi/, line);
  }
});

Deno.test("Dockerfile: multi-stage; MIC non-root without a shell, NMI with iptables, conntrack and sysctl", () => {
  const lines = instructions(text);
  const stages = lines.filter((l) => l.startsWith("FROM ")).map((l) => l.split(/\s+AS\s+/i)[1]);
  assert.deepEqual(stages, ["build", "mic", "nmi"]);
  const stage = (name: string) => {
    const start = lines.findIndex((l) => new RegExp(`^FROM .* AS ${name}$`, "i").test(l));
    const end = lines.findIndex((l, i) => i > start && l.startsWith("FROM "));
    return lines.slice(start, end < 0 ? undefined : end);
  };
  const mic = stage("mic");
  assert.match(mic[0], /distroless\/.*:nonroot/);
  assert.ok(mic.includes("USER 65532:65532"));
  assert.ok(mic.some((l) => /^COPY --from=build \/out\/mic /.test(l)));
  const nmi = stage("nmi");
  const install = nmi.find((l) => l.includes("apt-get install"));
  for (const pkg of ["iptables", "conntrack", "procps"]) {
    assert.match(install ?? "", new RegExp(`\\b${pkg}\\b`));
  }
  assert.ok(nmi.some((l) => /^COPY --from=build \/out\/nmi /.test(l)));
});

Deno.test("Dockerfile: the build stage copies every local module MIC and NMI import", async () => {
  const root = new URL("../../../", import.meta.url).pathname;
  const copied = instructions(text)
    .filter((l) => /^COPY (?!--from)/.test(l))
    .flatMap((l) => l.split(/\s+/).slice(1, -1));
  for (const entry of [MIC_ENTRYPOINT, NMI_ENTRY]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: { specifier: string }[] };
    const local = graph.modules.map((m) => m.specifier).filter((s) => s.startsWith("file://"))
      .map((s) => decodeURIComponent(new URL(s).pathname).slice(root.length));
    assert.ok(local.length > 10, `${entry}: ${local.length} local modules`);
    const missing = local.filter((p) => !copied.some((c) => p === c || p.startsWith(`${c}/`)));
    assert.deepEqual(missing, [], `${entry} imports files the image build does not copy`);
  }
});
