// One real control plane per test run: scripts/test.ts starts it and passes its kubeconfig in
// AAD_TEST_KUBECONFIG. A test file run on its own (`deno test -A tests/integration/x`) uses the sandbox that
// `deno task cluster up` keeps running.
// Tests that stop or restart the apiserver must use `startControlPlane()` directly, never the shared one.

import {
  installCrds,
  type KubectlResult,
  runKubectl,
  type SandboxState,
  sandboxStatePath,
} from "../../scripts/sandbox/control_plane.ts";

export interface TestCluster {
  kubeconfigPath: string;
  server: string;
  kubectl(args: string[], stdin?: string): Promise<KubectlResult>;
  /** A fresh namespace name; namespaces are never deleted (no namespace controller runs here). */
  namespace(prefix: string): Promise<string>;
}

let shared: Promise<TestCluster> | undefined;

let counter = 0;

function wrap(kubeconfigPath: string, server: string, kubectlBin: string): TestCluster {
  const cluster: TestCluster = {
    kubeconfigPath,
    server,
    kubectl: (args, stdin) => runKubectl(kubectlBin, kubeconfigPath, args, stdin),
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
