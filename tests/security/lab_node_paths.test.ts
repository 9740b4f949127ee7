// What a pod can reach on its node, attacked from a pod network namespace with real packets: the node's
// 127.0.0.1-only services (CVE-2020-8558, opened by the route_localnet that DNAT to loopback needs), and the
// emulator's IMDS by any route other than the node's 169.254.169.254 (which NMI's rules take over).

import assert from "node:assert/strict";
import { findDrift } from "../../nmi/iptables/rules.ts";
import { RedirectSync } from "../../nmi/iptables/sync.ts";
import { createLogger } from "../../lib/log.ts";
import { Lab, netnsUnavailable } from "../../scripts/sandbox/netns.ts";
import { defaultRedirect, fetchIn, hostIn, routeLoopbackToNode, standIn } from "./lab_support.ts";

const skip = await netnsUnavailable();
if (skip) console.log(`security lab tests skipped: ${skip}`);

const spec = defaultRedirect;

function syncIn(lab: Lab): RedirectSync {
  return new RedirectSync({
    spec,
    intervalMs: 100,
    log: createLogger({ write: () => {} }),
    host: hostIn(lab),
  });
}

async function withLab(fn: (lab: Lab) => Promise<void>): Promise<void> {
  const lab = await Lab.create();
  try {
    await fn(lab);
  } finally {
    await lab.close();
  }
}

Deno.test({
  name: "security lab: a pod cannot reach the node's 127.0.0.1 services, and still gets NMI through the DNAT",
  ignore: !!skip,
  fn: () =>
    withLab(async (lab) => {
      await standIn(lab, "169.254.169.254", 80, "imds");
      await standIn(lab, "127.0.0.1", 2579, "nmi");
      await standIn(lab, "127.0.0.1", 8085, "probe"); // NMI's probe and metrics port, loopback only
      const pod = await lab.addPod("attacker");
      const sync = syncIn(lab);
      await sync.setUp();
      assert.equal((await lab.nodeExec(["sysctl", "-n", "net.ipv4.conf.all.route_localnet"])).trim(), "1");
      await routeLoopbackToNode(lab, pod);
      assert.equal(await fetchIn(pod.ns, "http://169.254.169.254/"), "nmi", "the DNAT path is untouched");
      assert.equal(await fetchIn(pod.ns, "http://127.0.0.1:8085/"), "curl exit 28", "the guard drops it");
      assert.equal(await fetchIn(pod.ns, "http://127.0.0.1:2579/"), "curl exit 28", "NMI only via the DNAT");
      assert.equal(await lab.nodeExec(["curl", "-s", "-m", "2", "http://127.0.0.1:8085/"]), "probe");

      // The attack is real: without the guard the same packets reach the probe port. The next sync puts
      // the guard back (drift repair), and the pod is shut out again.
      await lab.nodeExec(["iptables", "-D", "INPUT", "-j", "aad-metadata-localnet"]);
      assert.equal(
        await fetchIn(pod.ns, "http://127.0.0.1:8085/"),
        "probe",
        "unguarded route_localnet leaks",
      );
      const stop = new AbortController();
      const running = sync.run(stop.signal);
      try {
        const deadline = Date.now() + 3_000;
        while (sync.repairs === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        assert.equal(sync.repairs, 1);
        assert.deepEqual(findDrift(await sync.host.tables(spec), spec), []);
        assert.equal(await fetchIn(pod.ns, "http://127.0.0.1:8085/"), "curl exit 28");
      } finally {
        stop.abort();
        await running;
      }
    }),
});

Deno.test({
  name:
    "security lab: a pod reaches the emulator's IMDS only at its node's 169.254.169.254, never at the relay",
  ignore: !!skip,
  fn: () =>
    withLab(async (lab) => {
      const servers = ["imds", "arm"].map((body) =>
        Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response(body))
      );
      try {
        const [imdsPort, armPort] = servers.map((s) => s.addr.port);
        await lab.mirror(imdsPort, { as: { ip: "169.254.169.254", port: 80 } });
        const pod = await lab.addPod("p1");
        await lab.mirror(armPort, { ns: pod.ns }); // what a pod may use in the root namespace: ARM
        const imdsRelay = `http://${lab.hostIp}:${lab.relayOf(imdsPort)}/`;

        assert.equal(await lab.nodeExec(["curl", "-s", "-m", "2", imdsRelay]), "imds", "the node uses it");
        assert.equal(await fetchIn(pod.ns, `http://127.0.0.1:${armPort}/`), "arm");
        // As on an Azure node without NMI: the link-local address answers, and only it.
        assert.equal(await fetchIn(pod.ns, "http://169.254.169.254/"), "imds");
        assert.equal(await fetchIn(pod.ns, imdsRelay), "curl exit 7", "the root namespace's IMDS relay");
        assert.equal(await fetchIn(pod.ns, `http://${lab.hostIp}:${imdsPort}/`), "curl exit 7");

        // NMI's rules in place and NMI not running (fail closed): the pod gets no IMDS by any route.
        await syncIn(lab).setUp();
        assert.equal(await fetchIn(pod.ns, "http://169.254.169.254/"), "curl exit 7");
        assert.equal(await fetchIn(pod.ns, imdsRelay), "curl exit 7");
        assert.equal(await lab.nodeExec(["curl", "-s", "-m", "2", "http://169.254.169.254/"]), "imds");
      } finally {
        await Promise.all(servers.map((s) => s.shutdown()));
      }
    }),
});
