// The test command: starts one real control plane for the whole run, installs the CRDs, runs `deno test`
// over tests/ (or the paths given) with the cluster and the sandbox CA in the environment, stops the
// cluster, and always ends with the line `N passed, N failed` (exit status non-zero when anything failed,
// including a control plane that does not start or CRDs that do not install).
//   deno task test                       everything
//   deno task test tests/unit            a subset (extra args go to `deno test`)

import { ensureCa, sandboxCacheDir } from "./sandbox/pki.ts";
import { type ControlPlane, installCrds, startControlPlane } from "./sandbox/control_plane.ts";

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

/**
 * Counts top-level tests in deno's JUnit report. Steps appear there as test cases named
 * `<parent> &gt; <step>`; they are left out, since a failing step fails its parent test anyway.
 */
export function countJunit(xml: string): Counts {
  const counts = { passed: 0, failed: 0, skipped: 0 };
  for (const suite of xml.matchAll(/<testsuite\b[^>]*>([\s\S]*?)<\/testsuite>/g)) {
    const cases = [
      ...suite[1].matchAll(/<testcase\b[^>]*?\bname="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g),
    ]
      .map((m) => ({ name: m[1], body: m[3] ?? "" }));
    const names = new Set(cases.map((c) => c.name));
    const isStep = (name: string) =>
      [...name.matchAll(/ &gt; /g)].some((m) => names.has(name.slice(0, m.index)));
    for (const c of cases) {
      if (isStep(c.name)) continue;
      if (/<failure\b|<error\b/.test(c.body)) counts.failed++;
      else if (/<skipped\b/.test(c.body)) counts.skipped++;
      else counts.passed++;
    }
  }
  return counts;
}

// deno's colours, so the report parses the same whether or not it went to a terminal.
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * Test files with an error no test caught: one that throws while loading, or async work that fails after
 * its test resolved. Deno lists them as `<file> (uncaught error)` and leaves them out of the JUnit report
 * (a file that fails to load has no suite there at all), so they are counted from deno's own output.
 */
export function uncaughtErrorFiles(output: string): string[] {
  const files = new Set<string>();
  for (const line of output.replace(ANSI, "").split("\n")) {
    const m = /^(\S.*) \(uncaught error\)$/.exec(line.trimEnd());
    if (m) files.add(m[1]);
  }
  return [...files];
}

/** The run's counts: JUnit's top-level tests plus one failure per file with an uncaught error. */
export function tally(junitXml: string, denoOutput: string, denoExitCode: number): {
  counts: Counts;
  problems: string[];
} {
  const counts = countJunit(junitXml);
  const problems = uncaughtErrorFiles(denoOutput).map((f) => `${f}: uncaught error (see above)`);
  counts.failed += problems.length;
  // Anything else that made deno fail (a type error, a crash before any report) still fails the run.
  if (denoExitCode !== 0 && counts.failed === 0) {
    counts.failed = 1;
    problems.push(`deno test exited with ${denoExitCode} before reporting a failed test (see above)`);
  }
  return { counts, problems };
}

export function summaryLine(c: Counts): string {
  return `${c.passed} passed, ${c.failed} failed${c.skipped ? `, ${c.skipped} skipped` : ""}`;
}

/** Copies a child's stream to ours as it comes, keeping the text to parse afterwards. */
async function tee(from: ReadableStream<Uint8Array>, to: { write(p: Uint8Array): Promise<number> }) {
  const dec = new TextDecoder();
  let text = "";
  for await (const chunk of from) {
    text += dec.decode(chunk, { stream: true });
    let written = 0;
    while (written < chunk.length) written += await to.write(chunk.subarray(written));
  }
  return text + dec.decode();
}

async function runDenoTest(args: string[], junit: string, cluster: ControlPlane, caPath: string) {
  const root = new URL("..", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", `--junit-path=${junit}`, ...args],
    cwd: root,
    env: {
      AAD_TEST_KUBECONFIG: cluster.kubeconfigPath,
      AAD_TEST_KUBECTL: cluster.binaries.kubectl,
      AAD_TEST_SERVER: cluster.server,
      // Deno's fetch reads DENO_CERT; node:https (used by the Azure SDKs) and Node apps read NODE_EXTRA_CA_CERTS.
      DENO_CERT: caPath,
      NODE_EXTRA_CA_CERTS: caPath,
      KUBE_APISERVER_BIN: cluster.binaries.kubeApiserver,
      ETCD_BIN: cluster.binaries.etcd,
      KUBECTL_BIN: cluster.binaries.kubectl,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const [out, err, status] = await Promise.all([
    tee(child.stdout, Deno.stdout),
    tee(child.stderr, Deno.stderr),
    child.status,
  ]);
  return { code: status.code, output: `${out}\n${err}` };
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function main(args: string[]): Promise<number> {
  const reportDir = await Deno.makeTempDir({ prefix: "aad-test-report-" });
  const junit = `${reportDir}/junit.xml`;
  let cluster: ControlPlane | undefined;
  let result = { counts: { passed: 0, failed: 0, skipped: 0 }, problems: [] as string[] };
  const onSignal = () => {
    (cluster?.stop() ?? Promise.resolve()).finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const t0 = performance.now();
    const ca = await ensureCa(`${sandboxCacheDir()}/ca`);
    cluster = await startControlPlane();
    await installCrds(cluster);
    console.error(`control plane ready at ${cluster.server} in ${Math.round(performance.now() - t0)} ms`);
    const run = await runDenoTest(args, junit, cluster, ca.certPath);
    result = tally(await Deno.readTextFile(junit).catch(() => ""), run.output, run.code);
  } catch (e) {
    // Start-up failed (control plane, CRDs, the CA): no test ran, and the run must not look green.
    result.counts.failed++;
    result.problems.push(`start-up failed: ${message(e)}`);
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    try {
      await cluster?.stop();
    } catch (e) {
      result.counts.failed++;
      result.problems.push(`stopping the control plane failed: ${message(e)}`);
    }
    await Deno.remove(reportDir, { recursive: true }).catch(() => {});
  }
  for (const p of result.problems) console.error(`test: ${p}`);
  console.log(summaryLine(result.counts));
  return result.counts.failed > 0 ? 1 : 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args.length ? Deno.args : ["tests/"]));
}
