// The test command: starts one real control plane for the whole run, installs the CRDs, runs `deno test`
// over tests/ (or the paths given) with the cluster and the sandbox CA in the environment, stops the
// cluster, and ends with the line `N passed, N failed`.
//   deno task test                       everything
//   deno task test tests/unit            a subset (extra args go to `deno test`)

import { ensureCa, sandboxCacheDir } from "./sandbox/pki.ts";
import { installCrds, startControlPlane } from "./sandbox/control_plane.ts";

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

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname;
  const args = Deno.args.length ? Deno.args : ["tests/"];
  const ca = await ensureCa(`${sandboxCacheDir()}/ca`);
  const reportDir = await Deno.makeTempDir({ prefix: "aad-test-report-" });
  const junit = `${reportDir}/junit.xml`;

  const t0 = performance.now();
  const cluster = await startControlPlane();
  let code = 1;
  const stop = async () => {
    await cluster.stop();
  };
  const onSignal = () => {
    stop().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    await installCrds(cluster);
    console.error(`control plane ready at ${cluster.server} in ${Math.round(performance.now() - t0)} ms`);
    const status = await new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", `--junit-path=${junit}`, ...args],
      cwd: root,
      env: {
        AAD_TEST_KUBECONFIG: cluster.kubeconfigPath,
        AAD_TEST_KUBECTL: cluster.binaries.kubectl,
        AAD_TEST_SERVER: cluster.server,
        // Deno's fetch reads DENO_CERT; node:https (used by the Azure SDKs) and Node apps read NODE_EXTRA_CA_CERTS.
        DENO_CERT: ca.certPath,
        NODE_EXTRA_CA_CERTS: ca.certPath,
        KUBE_APISERVER_BIN: cluster.binaries.kubeApiserver,
        ETCD_BIN: cluster.binaries.etcd,
        KUBECTL_BIN: cluster.binaries.kubectl,
      },
      stdin: "null",
    }).spawn().status;
    code = status.code;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await stop();
  }
  const xml = await Deno.readTextFile(junit).catch(() => "");
  await Deno.remove(reportDir, { recursive: true });
  const c = countJunit(xml);
  if (code !== 0 && c.failed === 0) c.failed = 1; // a crash before any report still fails the run
  console.log(`${c.passed} passed, ${c.failed} failed${c.skipped ? `, ${c.skipped} skipped` : ""}`);
  Deno.exit(code);
}
