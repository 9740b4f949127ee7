// The NMI image's iptables wrapper, run by sh against stand-in backends (scripts printing a canned
// `iptables-save`), so its choice is checked without root; tests/e2e/iptables.test.ts runs it on real ones.

import assert from "node:assert/strict";

const WRAPPER = new URL("../../../nmi/iptables/iptables-wrapper.sh", import.meta.url).pathname;

interface Backends {
  legacy?: string;
  nft?: string;
}

/** Runs `called args` through the wrapper with stand-in backends that print `save` and echo their argv. */
async function run(
  called: string,
  backends: Backends,
  env: Record<string, string> = {},
  args = ["-t", "nat"],
) {
  const dir = await Deno.makeTempDir();
  try {
    for (const mode of ["legacy", "nft"] as const) {
      const save = backends[mode] ?? "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n";
      for (const suffix of ["", "-save", "-restore"]) {
        // A save with no table or the mangle table is the wrapper looking; anything else is the real call.
        const looking = suffix === "-save"
          ? `case "$*" in ""|"-t mangle") cat <<'EOF'\n${save}\nEOF\nexit 0;; esac\n`
          : "";
        await Deno.writeTextFile(
          `${dir}/iptables-${mode}${suffix}`,
          `#!/bin/sh\n${looking}echo "${mode}${suffix} $*"\n`,
          {
            mode: 0o755,
          },
        );
      }
    }
    await Deno.symlink(WRAPPER, `${dir}/${called}`);
    const out = await new Deno.Command(`${dir}/${called}`, {
      args,
      env: { PATH: `${dir}:/usr/bin:/bin`, ...env },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout).trim(), stderr: dec.decode(out.stderr).trim() };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const rules = (n: number) =>
  Array.from({ length: n }, (_, i) => `-A KUBE-SERVICES -d 10.0.0.${i}/32 -j RETURN`);
const table = (chains: string[], lines: string[]) =>
  ["*mangle", ...chains.map((c) => `:${c} - [0:0]`), ...lines, "COMMIT"].join("\n");

Deno.test("iptables wrapper: kubelet's hint chain, then the canary, then rule counts pick the backend", async () => {
  const cases: [Backends, string][] = [
    [{ nft: table(["KUBE-IPTABLES-HINT"], []), legacy: table([], rules(50)) }, "nft"],
    [{ legacy: table(["KUBE-IPTABLES-HINT"], []) }, "legacy"],
    [{ nft: table(["KUBE-KUBELET-CANARY"], []) }, "nft"],
    [{ legacy: table([], rules(10)), nft: table([], rules(40)) }, "legacy"], // 10+ legacy rules: legacy
    [{ legacy: table([], rules(3)), nft: table([], rules(4)) }, "nft"],
    [{ legacy: table([], rules(4)), nft: table([], rules(4)) }, "legacy"], // a tie (also an empty node)
  ];
  for (const [backends, expect] of cases) {
    const r = await run("iptables-save", backends);
    assert.equal(r.stdout, `${expect}-save -t nat`, JSON.stringify(backends));
  }
});

Deno.test("iptables wrapper: each name runs its own command; IPTABLES_MODE overrides; bad input exits 2", async () => {
  const nftNode = { nft: table(["KUBE-IPTABLES-HINT"], []) };
  assert.equal(
    (await run("iptables-restore", nftNode, {}, ["-w", "5", "--noflush"])).stdout,
    "nft-restore -w 5 --noflush",
  );
  assert.equal((await run("iptables", nftNode, {}, ["-N", "x"])).stdout, "nft -N x");
  assert.equal((await run("iptables", nftNode, { IPTABLES_MODE: "legacy" }, ["-L"])).stdout, "legacy -L");
  const bad = await run("iptables", nftNode, { IPTABLES_MODE: "both" }, ["-L"]);
  assert.deepEqual([bad.code, bad.stderr], [
    2,
    "iptables-wrapper: IPTABLES_MODE must be legacy or nft, not 'both'",
  ]);
  const misnamed = await run("ip6tables", nftNode, {}, ["-L"]);
  assert.equal(misnamed.code, 2);
  assert.match(misnamed.stderr, /called as 'ip6tables'/);
});

Deno.test("iptables wrapper: the Dockerfile puts it behind all three names NMI runs", async () => {
  const dockerfile = await Deno.readTextFile(new URL("../../../Dockerfile", import.meta.url));
  const nmi = dockerfile.slice(dockerfile.indexOf("AS nmi"));
  assert.match(nmi, /COPY --chmod=0755 nmi\/iptables\/iptables-wrapper\.sh \/usr\/sbin\/iptables-wrapper/);
  for (const name of ["iptables", "iptables-restore", "iptables-save"]) {
    assert.match(nmi, new RegExp(`/usr/sbin/${name} ${name} /usr/sbin/iptables-wrapper`));
  }
});
