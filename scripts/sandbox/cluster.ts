// `deno task cluster up|down|env|status`: a local control plane that outlives the command, for humans and
// for running single integration test files (`deno test -A tests/integration/api`).

import { installCrds, type SandboxState, sandboxStatePath, startControlPlane } from "./control_plane.ts";
import { sandboxCacheDir } from "./pki.ts";

async function readState(): Promise<SandboxState | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(sandboxStatePath()));
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

async function down(state: SandboxState): Promise<void> {
  // kube-apiserver first (last in the list), then etcd.
  for (const pid of [...state.pids].reverse()) {
    if (!alive(pid)) continue;
    Deno.kill(pid, "SIGTERM");
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    if (alive(pid)) Deno.kill(pid, "SIGKILL");
  }
  await Deno.remove(state.dir, { recursive: true }).catch(() => {});
  await Deno.remove(sandboxStatePath()).catch(() => {});
}

const usage = "usage: deno task cluster up | down | env | status";
const [command] = Deno.args;
const state = await readState();
switch (command) {
  case "up": {
    if (state && state.pids.every(alive)) {
      console.error(`already running at ${state.server}; \`deno task cluster env\` prints its settings`);
      break;
    }
    if (state) await down(state);
    const dir = `${sandboxCacheDir()}/cluster`;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    const cp = await startControlPlane({ dir });
    await installCrds(cp);
    const detached = cp.detach();
    await Deno.writeTextFile(sandboxStatePath(), JSON.stringify(detached, null, 2));
    console.error(`control plane up at ${detached.server} (CRDs installed). Use it with:`);
    console.log(`export KUBECONFIG=${detached.kubeconfigPath}`);
    console.error(`kubectl is ${detached.kubectl}; stop it with \`deno task cluster down\``);
    break;
  }
  case "down":
    if (state) {
      await down(state);
      console.error("control plane stopped");
    } else console.error("no control plane is running");
    break;
  case "env":
    if (!state) {
      console.error("no control plane is running: `deno task cluster up`");
      Deno.exit(1);
    }
    console.log(`export KUBECONFIG=${state.kubeconfigPath}`);
    console.log(`export KUBECTL_BIN=${state.kubectl}`);
    break;
  case "status":
    if (state && state.pids.every(alive)) {
      console.log(`running at ${state.server} (pids ${state.pids.join(", ")})`);
    } else {
      console.log("not running");
      Deno.exit(1);
    }
    break;
  default:
    console.error(usage);
    Deno.exit(2);
}
