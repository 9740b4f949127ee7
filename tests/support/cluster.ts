// One real control plane per test run: scripts/test.ts starts it and passes its kubeconfig in
// AAD_TEST_KUBECONFIG. A test file run on its own (`deno test tests/integration/x.test.ts`) starts its own.
// Tests that stop or restart the apiserver must use `startControlPlane()` directly, never the shared one.

import { type SandboxState, sandboxStatePath } from "../../scripts/sandbox/control_plane.ts";

export interface TestCluster {
  kubeconfigPath: string;
  server: string;
  kubectl(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }>;
  /** A fresh namespace name; namespaces are never deleted (no namespace controller runs here). */
  namespace(prefix: string): Promise<string>;
}

let shared: Promise<TestCluster> | undefined;

async function kubectlAt(kubeconfigPath: string, kubectlBin: string, args: string[], stdin?: string) {
  const child = new Deno.Command(kubectlBin, {
    args: [`--kubeconfig=${kubeconfigPath}`, ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

let counter = 0;

function wrap(kubeconfigPath: string, server: string, kubectlBin: string): TestCluster {
  const cluster: TestCluster = {
    kubeconfigPath,
    server,
    kubectl: (args, stdin) => kubectlAt(kubeconfigPath, kubectlBin, args, stdin),
    async namespace(prefix) {
      const name = `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}`.toLowerCase();
      const r = await cluster.kubectl(["create", "namespace", name]);
      if (r.code !== 0) throw new Error(`create namespace ${name}: ${r.stderr}`);
      return name;
    },
  };
  return cluster;
}

/**
 * The run's shared cluster, CRDs installed: the one `scripts/test.ts` started (env AAD_TEST_KUBECONFIG), or
 * else a sandbox a developer keeps up with `deno task cluster up`.
 */
export function sharedCluster(): Promise<TestCluster> {
  shared ??= (async () => {
    const fromEnv = Deno.env.get("AAD_TEST_KUBECONFIG");
    if (fromEnv) {
      return wrap(
        fromEnv,
        Deno.env.get("AAD_TEST_SERVER") ?? "",
        Deno.env.get("AAD_TEST_KUBECTL") ?? "kubectl",
      );
    }
    let state: SandboxState;
    try {
      state = JSON.parse(await Deno.readTextFile(sandboxStatePath()));
    } catch {
      throw new Error(
        "no cluster for integration tests: run them through `deno task test`, or start one with `deno task cluster up`",
      );
    }
    const cluster = wrap(state.kubeconfigPath, state.server, state.kubectl);
    await installCrds(cluster);
    return cluster;
  })();
  return shared;
}

export async function installCrds(cluster: Pick<TestCluster, "kubectl">): Promise<void> {
  const crds = new URL("../../deploy/crds.yaml", import.meta.url).pathname;
  const applied = await cluster.kubectl(["apply", "--server-side", "-f", crds]);
  if (applied.code !== 0) throw new Error(`installing CRDs failed: ${applied.stderr}`);
  const waited = await cluster.kubectl([
    "wait",
    "--for=condition=established",
    "--timeout=60s",
    "-f",
    crds,
  ]);
  if (waited.code !== 0) throw new Error(`CRDs not established: ${waited.stderr}`);
}
