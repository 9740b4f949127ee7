// Attacks on NMI from inside pods (issue 19), each against the real NMI process in a node network namespace
// with its real iptables rules, the pods in their own namespaces reaching it only at 169.254.169.254:80:
// - 30,000 idle connections from one pod: NMI stays up, bounded, and serves another pod;
// - 4 x 150 MiB POST bodies with NMI in a 512 MiB memory cgroup: NMI is not killed and serves another pod;
// - a pod flooding NMI with abandoned requests for bogus resources: another pod's first token within 1 s;
// - the MIC impostor (label app=mic, ReplicaSet mic-*, in MIC's namespace): no token;
// - a stalled apiserver link and a reused pod IP: the deleted pod's identity is refused, not served.
// Needs root (network namespaces, iptables, cgroups); skipped with one line saying why otherwise.

import assert from "node:assert/strict";
import { netnsUnavailable } from "../../scripts/sandbox/netns.ts";
import { Resources } from "../../lib/kube/rest.ts";
import type { KubeObject } from "../../lib/kube/types.ts";
import { msiSpec, waitUntil } from "../integration/nmi/harness.ts";
import { attackFrom, MEMORY_CGROUP_ROOT, processState, startAttackNode, tokenFromPod } from "./nmi_lab.ts";

const skip = await netnsUnavailable() ??
  (await Deno.stat(MEMORY_CGROUP_ROOT).then(() => undefined, () => "no cgroup v1 memory controller"));
if (skip) console.log(`NMI attack tests skipped: ${skip}`);

const MiB = 1024 * 1024;

/** Opens `count` connections to 169.254.169.254:80 and holds them; prints progress and the totals. */
const IDLE_CONNECTIONS = `
const count = Number(Deno.args[0]);
const held = [];
let failed = 0;
for (let i = 0; i < count; i += 250) {
  const batch = await Promise.allSettled(Array.from({ length: Math.min(250, count - i) }, () =>
    Deno.connect({ hostname: "169.254.169.254", port: 80 })));
  for (const r of batch) r.status === "fulfilled" ? held.push(r.value) : failed++;
}
console.log(JSON.stringify({ opened: held.length, failed }));
setInterval(() => {}, 1 << 30);
`;

Deno.test({
  name: "attack: 30,000 idle connections from one pod; NMI stays up and serves another pod",
  ignore: !!skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const node = await startAttackNode({ attached: ["victim-id"] });
    const attacks: Awaited<ReturnType<typeof attackFrom>>[] = [];
    try {
      const { h } = node;
      const id = await h.createIdentity("victim-id", msiSpec(h.ids["victim-id"]));
      const b = await h.createBinding("victim", "victim-id", `${h.ns}-victim`);
      const victim = await node.pod("victim", { aadpodidbinding: `${h.ns}-victim` });
      const attacker = await node.pod("attacker", {});
      await h.assign({ name: "victim" }, id, b, "Assigned");
      // One process may hold 20,000 descriptors here: two processes of 15,000 in the attacker's pod, with
      // enough source ports for 30,000 connections to one address.
      await node.lab.exec(attacker.ns, ["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000"]);
      for (let i = 0; i < 2; i++) attacks.push(await attackFrom(attacker, IDLE_CONNECTIONS, ["15000"]));
      const opened = await Promise.all(attacks.map((a) => a.waitFor(/"opened":(\d+)/, 240_000)));
      const total = opened.reduce((n, m) => n + Number(m[1]), 0);
      console.log(`attacker holds ${total} connections (connect succeeded)`);
      assert.ok(total >= 30_000, attacks.map((a) => a.output).join("\n"));
      const during = await tokenFromPod(victim);
      const state = await processState(node.nmiPid);
      console.log(
        `victim: ${during.status} in ${during.seconds.toFixed(2)} s; NMI fds ${state.fds}, RSS ${
          state.rssMiB.toFixed(0)
        } MiB`,
      );
      assert.equal(during.status, 200, during.body);
      assert.ok(during.seconds < 2, `victim waited ${during.seconds} s`);
      assert.ok(state.alive, "NMI is alive");
      assert.ok(state.fds < 1024 + 256, `NMI holds ${state.fds} descriptors (per-IP cap 1024)`);
      assert.ok(state.rssMiB < 512, `NMI RSS ${state.rssMiB} MiB`);
    } finally {
      for (const a of attacks) await a.stop();
      await node.close();
    }
  },
});

/** Four parallel 150 MiB POSTs to a proxied path: two with Content-Length, two chunked. */
const BIG_BODIES = `
const enc = new TextEncoder();
const SIZE = 150 * 1024 * 1024;
async function post(chunked) {
  const c = await Deno.connect({ hostname: "169.254.169.254", port: 80 });
  const framing = chunked ? "Transfer-Encoding: chunked" : "Content-Length: " + SIZE;
  await c.write(enc.encode("POST /metadata/scheduledevents?api-version=2020-07-01 HTTP/1.1\\r\\nHost: x\\r\\n" +
    "Metadata: true\\r\\n" + framing + "\\r\\n\\r\\n"));
  const piece = new Uint8Array(1 << 20);
  const chunk = new Uint8Array([...enc.encode("100000\\r\\n"), ...piece, ...enc.encode("\\r\\n")]);
  let sent = 0;
  try {
    while (sent < SIZE) {
      const data = chunked ? chunk : piece;
      let at = 0;
      while (at < data.length) at += await c.write(data.subarray(at));
      sent += piece.length;
    }
  } catch { /* the server closed the connection */ }
  const buf = new Uint8Array(4096);
  const n = await c.read(buf).catch(() => null);
  try { c.close(); } catch {}
  const status = n ? new TextDecoder().decode(buf.subarray(0, n)).split(" ")[1] : "none";
  return { chunked, sentMiB: Math.round(sent / 1048576), status };
}
const results = await Promise.all([post(false), post(false), post(true), post(true)]);
console.log("results " + JSON.stringify(results));
`;

Deno.test({
  name: "attack: 4 x 150 MiB POST bodies with NMI in a 512 MiB memory cgroup; NMI is not killed",
  ignore: !!skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const node = await startAttackNode({ attached: ["victim-id"], memoryLimit: 512 * MiB });
    let attack: Awaited<ReturnType<typeof attackFrom>> | undefined;
    try {
      const { h } = node;
      const id = await h.createIdentity("victim-id", msiSpec(h.ids["victim-id"]));
      const b = await h.createBinding("victim", "victim-id", `${h.ns}-victim`);
      const victim = await node.pod("victim", { aadpodidbinding: `${h.ns}-victim` });
      const attacker = await node.pod("attacker", {});
      await h.assign({ name: "victim" }, id, b, "Assigned");
      const group = (await Deno.readTextFile(`/proc/${node.nmiPid}/cgroup`)).match(/memory:(\S+)/)?.[1];
      assert.ok(group?.includes("aad-nmi-attack-"), `NMI is in its memory cgroup (${group})`);
      attack = await attackFrom(attacker, BIG_BODIES);
      const during = await tokenFromPod(victim);
      const results = JSON.parse((await attack.waitFor(/results (.*)/, 120_000))[1]) as {
        sentMiB: number;
        status: string;
      }[];
      const peak = Number(await Deno.readTextFile(`${MEMORY_CGROUP_ROOT}${group}/memory.max_usage_in_bytes`));
      const state = await processState(node.nmiPid);
      console.log(
        `bodies: ${JSON.stringify(results)}; NMI cgroup peak ${
          (peak / MiB).toFixed(0)
        } MiB; victim ${during.status}`,
      );
      assert.ok(results.every((r) => r.status === "413" || r.status === "none"), JSON.stringify(results));
      assert.ok(results.every((r) => r.sentMiB < 150), "no body was read to its end");
      assert.ok(state.alive, "NMI survived");
      assert.ok(peak < 256 * MiB, `NMI's cgroup peaked at ${peak / MiB} MiB`);
      assert.equal(during.status, 200, during.body);
      const after = await tokenFromPod(victim);
      assert.equal(after.status, 200, after.body);
    } finally {
      await attack?.stop();
      await node.close();
    }
  },
});

/** 300 concurrent token requests for bogus resources, each abandoned after `args[1]` ms, over and over. */
const FLOOD = `
let round = 0;
const until = performance.now() + Number(Deno.args[0]);
const abandonMs = Number(Deno.args[1]);
const tag = Deno.args[2];
let sent = 0;
while (performance.now() < until) {
  round++;
  await Promise.allSettled(Array.from({ length: 300 }, (_, i) => {
    sent++;
    return fetch("http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" +
      "api://bogus-" + tag + round + "-" + i, { headers: { Metadata: "true" }, signal: AbortSignal.timeout(abandonMs) })
      .then((r) => r.body?.cancel());
  }));
}
console.log("flood done " + sent);
`;

Deno.test({
  name:
    "attack: a flooding pod cannot delay another pod's first token past 1 s; the MIC impostor gets nothing",
  ignore: !!skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const node = await startAttackNode({ attached: ["flood-id", "victim-id"], micInTestNamespace: true });
    const floods: Awaited<ReturnType<typeof attackFrom>>[] = [];
    try {
      const { h } = node;
      const fid = await h.createIdentity("flood-id", msiSpec(h.ids["flood-id"]));
      const fb = await h.createBinding("flood", "flood-id", `${h.ns}-flood`);
      const vid = await h.createIdentity("victim-id", msiSpec(h.ids["victim-id"]));
      const vb = await h.createBinding("victim", "victim-id", `${h.ns}-victim`);
      const flooder = await node.pod("flooder", { aadpodidbinding: `${h.ns}-flood` });
      await h.assign({ name: "flooder" }, fid, fb, "Assigned");
      // One stream abandons its requests after 0.26 s (the attack), one holds them for 5 s.
      floods.push(await attackFrom(flooder, FLOOD, ["8000", "260", "a"]));
      floods.push(await attackFrom(flooder, FLOOD, ["8000", "5000", "h"]));
      await new Promise((r) => setTimeout(r, 2000)); // the flood is in full swing
      const victim = await node.pod("victim", { aadpodidbinding: `${h.ns}-victim` });
      await h.assign({ name: "victim" }, vid, vb, "Assigned");
      const first = await tokenFromPod(victim);
      console.log(`victim's first token during the flood: ${first.status} in ${first.seconds.toFixed(2)} s`);
      assert.equal(first.status, 200, first.body);
      assert.ok(first.seconds < 1, `first token took ${first.seconds} s`);
      const sent = Number((await floods[0].waitFor(/flood done (\d+)/, 60_000))[1]);
      assert.ok(sent >= 3000, `the flood sent ${sent} requests`);
      await floods[1].waitFor(/flood done (\d+)/, 60_000);

      // The MIC impostor: MIC's labels and a ReplicaSet named mic-* in MIC's namespace, next to the
      // original's default mic-exception.
      await h.kube.create(Resources.azurePodIdentityExceptions, {
        metadata: { name: "mic-exception", namespace: h.ns },
        spec: { podLabels: { app: "mic", component: "mic" } },
      } as KubeObject);
      const impostor = await node.pod("mic-7d4-x", { app: "mic" }, { ownerReplicaSet: "mic-7d4" });
      const stolen = await tokenFromPod(impostor);
      assert.equal(stolen.status, 400, stolen.body);
      assert.doesNotMatch(stolen.body, /access_token/);
    } finally {
      for (const f of floods) await f.stop();
      await node.close();
    }
  },
});

Deno.test({
  name: "attack: a stalled apiserver link and a reused pod IP: the deleted pod's identity is refused",
  ignore: !!skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const node = await startAttackNode({
      attached: ["old-id"],
      pausableApiserver: true,
      nmiArgs: ["--pod-watch-freshness=2s"],
    });
    try {
      const { h } = node;
      const id = await h.createIdentity("old-id", msiSpec(h.ids["old-id"]));
      const b = await h.createBinding("old", "old-id", `${h.ns}-old`);
      const old = await node.pod("old", { aadpodidbinding: `${h.ns}-old` });
      await h.assign({ name: "old" }, id, b, "Assigned");
      assert.equal((await tokenFromPod(old)).status, 200);
      // NMI's link to the apiserver stalls (packets stop, the connection stays open); the pod is deleted and
      // a new pod without any binding gets its IP.
      node.stallApiserver(true);
      await h.kube.delete(Resources.pods, "old", { namespace: h.ns, gracePeriodSeconds: 0 });
      await h.createPod("reuser", {}, { ip: old.ip });
      await new Promise((r) => setTimeout(r, 4000)); // past the freshness bound
      const reused = await tokenFromPod(old, { timeoutSeconds: 15 });
      console.log(`reused IP during the stall: ${reused.status} ${reused.body.slice(0, 160)}`);
      assert.notEqual(reused.status, 200, "the deleted pod's token was served to the IP's new holder");
      assert.equal(reused.status, 503, reused.body);
      assert.doesNotMatch(reused.body, /access_token/);
      node.stallApiserver(false);
      // Once the link is back and the watch catches up, the new pod is who it is: no binding, 400.
      await waitUntil(
        "NMI sees the new pod",
        async () => (await tokenFromPod(old)).status === 400,
        90_000,
        500,
      );
    } finally {
      node.stallApiserver(false);
      await node.close();
    }
  },
});
