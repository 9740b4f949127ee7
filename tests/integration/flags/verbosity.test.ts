// klog's -v, as the original chart's logVerbosity passes it: MIC logs at debug level from -v=4 up, and
// stays at info below; and the original's /healthz bodies (issue 20). MIC runs as a real process against
// the real apiserver and the emulator.

import assert from "node:assert/strict";
import { micEnv, waitForLog, waitUntil } from "../mic/harness.ts";

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("MIC: -v=5 logs debug lines, -v=2 does not; the chart's klog flags are accepted; /healthz Active on the leader only", async () => {
  const env = await micEnv("verbosity");
  try {
    const ss = env.vmss("pool");
    const id = env.uami("id1");
    await env.node(`${env.ns}-n0`, ss, 0);
    await env.identity("id1", { type: 0, resourceID: id.id, clientID: id.clientId });
    await env.binding("b1", "id1", `sel-${env.ns}`);
    const [leaderPort, standbyPort] = [freePort(), freePort()];
    const quiet = await env.startMic("mic-quiet", [
      "--logtostderr",
      "-v=2",
      `--http-probe-port=${leaderPort}`,
    ]);
    await waitForLog(quiet, /leading:/);
    // The original's /healthz: "Active" on the MIC whose sync loop runs (the leader), "Not Active" on a standby.
    const standby = await env.startMic("mic-standby", [`--http-probe-port=${standbyPort}`]);
    const healthz = async (port: number) => await (await fetch(`http://127.0.0.1:${port}/healthz`)).text();
    await waitUntil("leader Active", async () => (await healthz(leaderPort)) === "Active");
    await waitUntil("standby answers", async () => {
      try {
        return (await healthz(standbyPort)) === "Not Active";
      } catch {
        return false;
      }
    });
    await standby.kill();
    await env.pod("p0", `${env.ns}-n0`, `sel-${env.ns}`);
    await waitUntil("Assigned", () => env.aai(`default/p0-${env.ns}-id1`)?.status?.status === "Assigned");
    assert.ok(!quiet.lines.some((l) => / DEBUG /.test(l)), "no debug lines at -v=2");
    assert.ok(quiet.lines.some((l) => /ignored: --logtostderr/.test(l)), "the ignored flag is reported");
    await quiet.kill();

    const loud = await env.startMic("mic-loud", ["--logtostderr", "-v=5"]);
    await waitForLog(loud, /leading:/);
    await env.pod("p1", `${env.ns}-n0`, `sel-${env.ns}`);
    await waitUntil("Assigned", () => env.aai(`default/p1-${env.ns}-id1`)?.status?.status === "Assigned");
    await waitForLog(loud, / DEBUG /);
  } finally {
    await env.close();
  }
});
