// Acceptance of issue 20: every arg the original's chart (4.1.18, default values and every key set) and its
// deploy/infra manifests (v1.8.17) pass to MIC and NMI parses, with the meaning the original gave it.

import assert from "node:assert/strict";
import { parseFlags } from "../../../lib/flags.ts";
import { MIC_FLAGS } from "../../../mic/flags.ts";
import { NMI_FLAGS } from "../../../nmi/config.ts";
import {
  type ContainerArgs,
  containerArgs,
  helm,
  INFRA_MANIFESTS,
  UPSTREAM_CHART,
  UPSTREAM_DIR,
  VALUES_ALL,
} from "../../support/upstream.ts";

async function upstreamContainers(): Promise<ContainerArgs[]> {
  const all: ContainerArgs[] = [];
  for (const path of INFRA_MANIFESTS) {
    all.push(...containerArgs(await Deno.readTextFile(UPSTREAM_DIR + path), path));
  }
  const renders: [string, string[]][] = [
    ["chart defaults", []],
    ["chart values-all.yaml", ["-f", VALUES_ALL]],
    ["chart values-all.yaml, managed", ["-f", VALUES_ALL, "--set", "operationMode=managed"]],
    ["chart defaults, no adminsecret", ["--set", "mic.logVerbosity=3,nmi.logVerbosity=6"]],
  ];
  for (const [label, extra] of renders) {
    all.push(...containerArgs(await helm(["template", "r", UPSTREAM_CHART, ...extra]), label));
  }
  return all;
}

Deno.test("upstream args: every arg of the original's chart and deploy/infra parses for MIC and NMI", async () => {
  const containers = await upstreamContainers();
  assert.ok(containers.filter((c) => c.component === "mic").length >= 7, "MIC containers found");
  assert.ok(containers.filter((c) => c.component === "nmi").length >= 8, "NMI containers found");
  const seen = new Set<string>();
  for (const c of containers) {
    const env = (n: string) => n === "NODE_NAME" ? "node-a" : c.env.find((e) => e.name === n)?.value;
    const specs = c.component === "mic" ? MIC_FLAGS : NMI_FLAGS;
    const args = c.args.map((a) => a.replace("$(NODE_NAME)", "node-a"));
    for (const a of args) seen.add(`${c.component} ${a.split("=")[0]}`);
    const parsed = parseFlags(specs, args, env);
    assert.deepEqual(parsed.rest, [], `${c.source} ${c.component}: no stray args`);
  }
  // The spellings the issue names, from the files themselves.
  for (const s of ["mic --logtostderr", "mic -v", "nmi -v", "mic --clientQps", "nmi --operation-mode"]) {
    assert.ok(seen.has(s), `${s} comes from the original's files`);
  }
});

Deno.test("upstream args: charts/aad-pod-identity with the original's values passes only args MIC and NMI parse", async () => {
  const chart = new URL("../../../charts/aad-pod-identity", import.meta.url).pathname;
  for (
    const extra of [[], ["-f", `${UPSTREAM_CHART}/values.yaml`], ["-f", VALUES_ALL], [
      "-f",
      VALUES_ALL,
      "--set",
      "operationMode=managed",
    ]]
  ) {
    const containers = containerArgs(await helm(["template", "r", chart, ...extra]), extra.join(" "));
    assert.ok(containers.some((c) => c.component === "nmi"));
    for (const c of containers) {
      const specs = c.component === "mic" ? MIC_FLAGS : NMI_FLAGS;
      const args = c.args.map((a) => a.replace("$(NODE_NAME)", "node-a"));
      assert.deepEqual(parseFlags(specs, args).rest, [], `${c.source} ${c.component}`);
    }
  }
});

Deno.test("upstream args: the meanings that survive are kept", async () => {
  const all = await helm(["template", "r", UPSTREAM_CHART, "-f", VALUES_ALL]);
  const [mic] = containerArgs(all, "all").filter((c) => c.component === "mic");
  const [nmi] = containerArgs(all, "all").filter((c) => c.component === "nmi");
  const m = parseFlags(MIC_FLAGS, mic.args).values;
  assert.equal(m.v, 5);
  assert.equal(m.clientQps, 5.5);
  assert.equal(m["leader-election-duration"], 20_000);
  assert.equal(m["http-probe-port"], 8081);
  assert.equal(m["prometheus-port"], 8889);
  assert.deepEqual(m["immutable-user-msis"].length, 2);
  assert.equal(m["custom-user-agent"], "acme-platform");
  const n = parseFlags(NMI_FLAGS, nmi.args.map((a) => a.replace("$(NODE_NAME)", "node-a"))).values;
  assert.equal(n.node, "node-a");
  assert.equal(n["http-probe-port"], 8086);
  assert.equal(n["prometheus-port"], 9091);
  assert.equal(n["block-instance-metadata"], true);
  assert.equal(n["set-retry-after-header"], true);
  assert.equal(n["allow-network-plugin-kubenet"], true);
  assert.equal(n["log-format"], "json");
});

Deno.test("upstream args: the issue's smaller flag items on MIC's and NMI's own tables", () => {
  const env = (n: string) => (n === "FORCENAMESPACED" ? "true" : n === "NODE_NAME" ? "node-a" : undefined);
  // FORCENAMESPACED=true ORs with the flag in both binaries (cmd/mic/main.go, cmd/nmi/main.go v1.8.17).
  assert.equal(parseFlags(MIC_FLAGS, ["--forceNamespaced=false"], env).values.forceNamespaced, true);
  assert.equal(parseFlags(NMI_FLAGS, ["--forceNamespaced=false"], env).values.forceNamespaced, true);
  assert.equal(parseFlags(NMI_FLAGS, ["--operation-mode", "Managed"]).values["operation-mode"], "managed");
  assert.equal(parseFlags(MIC_FLAGS, ["--clientQps", "5.5"]).values.clientQps, 5.5);
  assert.equal(parseFlags(MIC_FLAGS, ["--syncRetryDuration=1h0m0s"]).values.syncRetryDuration, 3_600_000);
  for (const specs of [MIC_FLAGS, NMI_FLAGS]) {
    const p = parseFlags(specs, [
      "-v=5",
      "--logtostderr",
      "--vmodule=x=2",
      "--log_dir=/tmp",
      "--stderrthreshold=INFO",
    ]);
    assert.equal(p.values.v, 5);
  }
});
