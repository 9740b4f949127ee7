// `deno task sandbox up --kubelet` as a user runs it, each subcommand a separate process: a real one-node
// cluster that outlives `up`, two identities, a pod bound to one and a pod bound to none (real containers of
// the SDK image), `exec` through the container runtime asking 169.254.169.254 for a token (exactly the bound
// identity's; nothing for the unbound pod), `logs`, then `down`: no process, network namespace, cgroup,
// mount or iptables rule left, and the run's logs still there to read.

import assert from "node:assert/strict";
import { realNodeUnavailable } from "../../scripts/sandbox/node/preflight.ts";
import { alive } from "../../scripts/sandbox/detached.ts";
import type { SandboxRecord } from "../../scripts/sandbox/sandbox_state.ts";
import type { KubeletReady } from "../../scripts/sandbox/kubelet_supervisor.ts";
import { leftovers } from "./leftovers.ts";
import { SDK_NODE_IMAGE } from "../../scripts/images/build.ts";
import { sandbox } from "../support/sandbox_cli.ts";

const skip = await realNodeUnavailable();
if (skip) console.log(`kubelet sandbox test skipped: ${skip}`);

async function sh(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
  return new TextDecoder().decode(out.stdout);
}

/** The last JSON line the SDK image's program printed (the SDK may log lines of its own). */
function lastJson(text: string): Record<string, unknown> {
  return JSON.parse(text.trim().split("\n").filter((l) => l.startsWith("{")).pop() ?? "{}");
}

async function identity(dir: string, name: string): Promise<{ clientId: string; id: string }> {
  const out = await sandbox(dir, ["identity", name]);
  assert.equal(out.code, 0, out.stderr);
  return {
    clientId: /client id (\S+)/.exec(out.stdout)![1],
    id: /^\s+(\/subscriptions\/\S+)$/m.exec(out.stdout)![1],
  };
}

/** What `down` must not leave: the nodes' processes, namespaces, cgroups, mounts; any lab netns or rule. */
async function nothingLeft(record: SandboxRecord, ready: Extract<KubeletReady, { ok: true }>) {
  assert.deepEqual(await leftovers(ready.nodes), []);
  assert.deepEqual(record.pids.filter((p) => alive(p.pid)).map((p) => p.what), []);
  const netns = (await sh("ip", ["netns", "list"])).split("\n").filter((l) => l.startsWith("aadkn"));
  assert.deepEqual(netns, []);
  assert.doesNotMatch(await sh("iptables-save", []), /aad-metadata|10\.252\./);
}

Deno.test({
  name: "kubelet sandbox: up --kubelet (1 node), identity, pod, exec a token request through " +
    "169.254.169.254 (exactly its identity), logs, down leaves nothing and keeps the logs",
  ignore: !!skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "aad-ksbx-" });
    try {
      const t0 = Date.now();
      const upped = await sandbox(dir, ["up", "--kubelet", "--nodes", "1"]);
      assert.equal(upped.code, 0, upped.stderr);
      console.log(`  up --kubelet: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      assert.match(upped.stderr, /real cluster up: node-1 \(kubelet \+ containerd\)/);
      assert.match(upped.stderr, /export KUBECONFIG=\S+/);
      const logDir = /logs: (\S+) \(kept after down\)/.exec(upped.stderr)![1];
      const record = JSON.parse(await Deno.readTextFile(`${dir}/state.json`)) as SandboxRecord;
      const ready = JSON.parse(await Deno.readTextFile(record.kubelet!.readyPath)) as KubeletReady;
      assert.ok(ready.ok);
      // The cluster outlives `up`: its supervisor is still running after the command exited.
      assert.ok(alive(record.pids[0].pid), "the supervisor runs after up exited");

      const web = await identity(dir, "web");
      const other = await identity(dir, "other");
      const t1 = Date.now();
      const app = await sandbox(dir, ["pod", "app", "--binding", "web"]);
      assert.equal(app.code, 0, app.stderr);
      console.log(`  pod created -> Ready: ${((Date.now() - t1) / 1000).toFixed(1)} s`);
      assert.match(app.stdout, /pod default\/app on node-1, IP 10\.246\.1\.\d+, image \S+sdk-node/);
      const other_ = await sandbox(dir, ["pod", "other-app", "--binding", "other"]);
      assert.equal(other_.code, 0, other_.stderr);
      const nobody = await sandbox(dir, ["pod", "nobody"]);
      assert.equal(nobody.code, 0, nobody.stderr);

      const t2 = Date.now();
      const token = await sandbox(dir, ["exec", "app", "--", "node", "/app/token_claims.mjs"]);
      assert.equal(token.code, 0, token.stdout + token.stderr);
      const claims = lastJson(token.stdout);
      console.log(`  exec -> token through 169.254.169.254: ${((Date.now() - t2) / 1000).toFixed(1)} s`);
      assert.equal(claims.appid, web.clientId);
      assert.equal(String(claims.xms_mirid).toLowerCase(), web.id.toLowerCase());
      const theirs = lastJson(
        (await sandbox(dir, ["exec", "other-app", "--", "node", "/app/token_claims.mjs"])).stdout,
      );
      assert.equal(theirs.appid, other.clientId);
      const refused = await sandbox(dir, ["exec", "nobody", "--", "node", "/app/token_claims.mjs"]);
      assert.notEqual(refused.code, 0);
      assert.equal(lastJson(refused.stdout).appid, undefined, refused.stdout);

      // The user's own image from an archive: imported into the node's containerd, run to its end, its
      // output read with `logs` (the SDK image's program, under a name of the user's).
      const archive = `${dir}-my-app.tar`;
      const copied = await new Deno.Command("skopeo", {
        args: [
          "copy",
          "--quiet",
          `docker-archive:${ready.images[SDK_NODE_IMAGE]}`,
          `docker-archive:${archive}:my-app:1`,
        ],
      }).output();
      assert.ok(copied.success, new TextDecoder().decode(copied.stderr));
      const mine = await sandbox(dir, ["pod", "mine", "--binding", "web", "--image-archive", archive]);
      await Deno.remove(archive);
      assert.equal(mine.code, 0, mine.stderr);
      // skopeo names it as a registry would: docker.io/library/my-app:1.
      assert.match(mine.stdout, /imported \S+ \(\S*my-app:1\) into node-1/);
      assert.match(mine.stdout, /image \S*my-app:1, aadpodidbinding=web/);
      // It runs once: Ready while it asks for its token, then done; its output is the claims.
      let mineClaims: Record<string, unknown> = {};
      for (let i = 0; i < 60 && !mineClaims.appid && !mineClaims.error; i++) {
        const mineLogs = await sandbox(dir, ["logs", "mine"]);
        assert.equal(mineLogs.code, 0, mineLogs.stderr);
        mineClaims = lastJson(mineLogs.stdout);
        if (!mineClaims.appid) await new Promise((res) => setTimeout(res, 1000));
      }
      assert.equal(mineClaims.appid, web.clientId, JSON.stringify(mineClaims));
      const missing = await sandbox(dir, ["pod", "ghost", "--image", "not-here:1"]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /pod default\/ghost cannot start: (ErrImagePull|ImagePullBackOff)/);

      const listed = await sandbox(dir, ["logs"]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /supervisor\.log/);
      const fed = await sandbox(dir, ["identity", "fed", "--federated"]);
      assert.equal(fed.code, 1);
      assert.match(fed.stderr, /not available in the kubelet sandbox/);
      assert.equal((await sandbox(dir, ["status"])).code, 0);

      const downed = await sandbox(dir, ["down"]);
      assert.equal(downed.code, 0, downed.stderr);
      assert.match(downed.stderr, new RegExp(`logs of the run kept in ${logDir}`));
      await nothingLeft(record, ready);
      await assert.rejects(Deno.stat(dir));
      assert.ok((await Deno.readTextFile(`${logDir}/node-1/kubelet.log`)).length > 0);
      assert.match(await Deno.readTextFile(`${logDir}/supervisor.log`), /stopped; timings/);
    } finally {
      await sandbox(dir, ["down"]);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(`${dir}-logs`, { recursive: true }).catch(() => {});
    }
  },
});
