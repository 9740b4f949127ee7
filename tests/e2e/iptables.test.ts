// NMI's redirection on a real (namespaced) node: real packets from a pod namespace through real iptables.
// The fake IMDS and fake NMI here are two tiny HTTP servers answering "imds" and "nmi", so each request
// shows which one it reached.

import assert from "node:assert/strict";
import { HostNetwork, runCommand } from "../../nmi/iptables/apply.ts";
import { findDrift } from "../../nmi/iptables/rules.ts";
import { RedirectSync, type RedirectSyncOptions } from "../../nmi/iptables/sync.ts";
import { createLogger } from "../../lib/log.ts";
import { Lab, type LabPod, netnsUnavailable } from "../../scripts/sandbox/netns.ts";
import { defaultRedirect, fetchIn, hostIn, standIn, wrapperPath } from "../security/lab_support.ts";

const skip = await netnsUnavailable();
if (skip) console.log(`e2e iptables tests skipped: ${skip}`);

const spec = defaultRedirect;
const serve = standIn;

/** A raw TCP server answering every chunk it reads with `body`, keeping the connection open. */
function serveLines(lab: Lab, ip: string, port: number, body: string) {
  lab.spawn(lab.nodeNs, [
    Deno.execPath(),
    "eval",
    `for await (const c of Deno.listen({ hostname: "${ip}", port: ${port} })) {
      (async () => { for await (const _ of c.readable) await c.write(new TextEncoder().encode("${body}")); })().catch(() => {});
    }`,
  ]);
  return lab.waitForPort(lab.nodeNs, ip, port);
}

/** What a pod sees at the metadata address: "imds", "nmi", or the curl failure. */
const fromPod = (ns: string) => fetchIn(ns, "http://169.254.169.254/", 3);

/** A RedirectSync on the lab's node with this file's spec, a silent log and the given options. */
function syncOn(lab: Lab, opts: Partial<RedirectSyncOptions> = {}): RedirectSync {
  return new RedirectSync({
    spec,
    intervalMs: 60_000,
    log: createLogger({ write: () => {} }),
    host: hostIn(lab),
    ...opts,
  });
}

type Serve = (lab: Lab, ip: string, port: number, body: string) => Promise<void>;

/**
 * A lab node with one pod, the stand-in IMDS ("imds") and, unless `nmi` is false, the stand-in NMI ("nmi");
 * removed after `fn`, whatever happens.
 */
async function withNode(
  fn: (lab: Lab, pod: LabPod) => Promise<void>,
  opts: { serve?: Serve; nmi?: boolean } = {},
): Promise<void> {
  const server = opts.serve ?? serve;
  const lab = await Lab.create();
  try {
    const pod = await lab.addPod("p1");
    await server(lab, "169.254.169.254", 80, "imds");
    if (opts.nmi ?? true) await server(lab, "127.0.0.1", 2579, "nmi");
    await fn(lab, pod);
  } finally {
    await lab.close();
  }
}

Deno.test({
  name: "e2e iptables: pod traffic to IMDS reaches NMI; the node itself is not intercepted",
  ignore: !!skip,
  fn: () =>
    withNode(async (lab, pod) => {
      assert.equal(await fromPod(pod.ns), "imds", "without rules the pod reaches IMDS");
      const sync = syncOn(lab);
      await sync.setUp();
      assert.equal(sync.inPlace, true);
      assert.equal(await fromPod(pod.ns), "nmi");
      assert.equal((await lab.nodeExec(["sysctl", "-n", "net.ipv4.conf.all.route_localnet"])).trim(), "1");
      const fromNode = await lab.nodeExec(["curl", "-s", "-m", "3", "http://169.254.169.254/"]);
      assert.equal(fromNode, "imds", "hostNetwork callers go through OUTPUT, not PREROUTING (as upstream)");
    }),
});

Deno.test({
  name: "e2e iptables: rules flushed, edited, reordered or out-jumped by hand are repaired by the next sync",
  ignore: !!skip,
  fn: () =>
    withNode(async (lab, pod) => {
      const host = hostIn(lab);
      const sync = syncOn(lab, { intervalMs: 200, host });
      await sync.setUp();
      const tamperings = [
        ["iptables", "-t", "nat", "-F", "aad-metadata"],
        [
          "iptables",
          "-t",
          "nat",
          "-R",
          "aad-metadata",
          "1",
          "-p",
          "tcp",
          "-d",
          "169.254.169.254",
          "--dport",
          "80",
          "-j",
          "RETURN",
        ],
        ["iptables", "-t", "nat", "-A", "aad-metadata", "-j", "ACCEPT"],
        ["iptables", "-t", "nat", "-I", "PREROUTING", "1", "-d", "169.254.169.254", "-j", "ACCEPT"],
        ["iptables", "-t", "nat", "-D", "PREROUTING", "-j", "aad-metadata"],
      ];
      const stop = new AbortController();
      const running = sync.run(stop.signal);
      try {
        for (const [i, argv] of tamperings.entries()) {
          await lab.nodeExec(argv);
          assert.notDeepEqual(findDrift(await host.tables(spec), spec), [], `tampering ${i} changed nothing`);
          const deadline = Date.now() + 3_000;
          while (findDrift(await host.tables(spec), spec).length && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 50));
          }
          assert.deepEqual(findDrift(await host.tables(spec), spec), [], `not repaired: ${argv.join(" ")}`);
          assert.equal(await fromPod(pod.ns), "nmi");
        }
        assert.equal(sync.repairs, tamperings.length);
      } finally {
        stop.abort();
        await running;
      }
    }),
});

Deno.test({
  name:
    "e2e iptables: fail closed by default (NMI down -> refused, never IMDS); opt-in cleanup restores the original",
  ignore: !!skip,
  fn: () =>
    withNode(async (lab, pod) => {
      const sync = syncOn(lab);
      await sync.setUp();
      await sync.stop(); // fail closed: rules stay
      assert.equal(
        await fromPod(pod.ns),
        "curl exit 7",
        "nothing listens at NMI's port: connection refused",
      );
      await syncOn(lab, { removeOnStop: true }).stop();
      assert.equal(await fromPod(pod.ns), "imds");
    }, { nmi: false }),
});

Deno.test({
  name: "e2e iptables: a connection opened before the rules is cut by the conntrack flush",
  ignore: !!skip,
  fn: () =>
    withNode(async (lab, pod) => {
      // A long-lived client: connects now, then sends one ping per line on stdin over the same connection.
      const client = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          pod.ns,
          "python3",
          "-c",
          `
import socket, sys
s = socket.create_connection(("169.254.169.254", 80))
s.settimeout(2)
for _ in sys.stdin:
    try:
        s.sendall(b"ping")
        print(s.recv(100).decode() or "cut:eof", flush=True)
    except Exception as e:
        print("cut:" + type(e).__name__, flush=True)
`,
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const writer = client.stdin.getWriter();
      const reader = client.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const ask = async () => {
        await writer.write(new TextEncoder().encode("go\n"));
        let line = "";
        while (!line.includes("\n")) {
          const { value, done } = await reader.read();
          if (done) return "client exited";
          line += value;
        }
        return line.trim();
      };
      try {
        assert.equal(await ask(), "imds", "the early connection reaches IMDS before the rules");
        assert.equal(await ask(), "imds", "and stays open (keep-alive)");
        await syncOn(lab, { flushConntrack: false }).setUp();
        assert.equal(await ask(), "imds", "without the flush the early connection still bypasses NMI");
        await syncOn(lab).setUp();
        const after = await ask();
        assert.notEqual(after, "imds", "after the flush the early connection no longer reaches IMDS");
        assert.match(after, /^cut:|client exited/);
      } finally {
        await writer.close().catch(() => {});
        reader.releaseLock();
        await client.stdout.cancel().catch(() => {});
        await client.status;
      }
    }, { serve: serveLines }),
});

/** NMI's host commands through the image's wrapper (`path`: a PATH with the wrapper's links first). */
function throughWrapper(lab: Lab, path: string): HostNetwork {
  return new HostNetwork((cmd, args, stdin) =>
    runCommand("ip", ["netns", "exec", lab.nodeNs, "env", `PATH=${path}`, cmd, ...args], stdin)
  );
}

/** The node's own rules before NMI starts, as kubelet and kube-proxy leave them, and where NMI must follow. */
const backendCases: { name: string; node: string[][]; expect: "legacy" | "nft" }[] = [
  {
    name: "kubelet's hint chain in legacy",
    node: [["iptables-legacy", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"]],
    expect: "legacy",
  },
  {
    name: "kubelet's hint chain in nft",
    node: [["iptables-nft", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"]],
    expect: "nft",
  },
  {
    name: "no hint, 12 kube-proxy rules in legacy",
    node: [
      ["iptables-legacy", "-t", "nat", "-N", "KUBE-SERVICES"],
      ...Array.from(
        { length: 12 },
        (
          _,
          i,
        ) => [
          "iptables-legacy",
          "-t",
          "nat",
          "-A",
          "KUBE-SERVICES",
          "-d",
          `10.0.0.${i + 1}/32`,
          "-j",
          "RETURN",
        ],
      ),
    ],
    expect: "legacy",
  },
  { name: "no hint, the node's rules only in nft", node: [], expect: "nft" },
];

for (const c of backendCases) {
  Deno.test({
    name: `e2e iptables backend: NMI's wrapper writes where the node's rules are (${c.name} -> ${c.expect})`,
    ignore: !!skip,
    fn: () =>
      withNode(async (lab, pod) => {
        for (const argv of c.node) await lab.nodeExec(argv);
        const wrapper = await wrapperPath();
        try {
          await syncOn(lab, { host: throughWrapper(lab, wrapper.path) }).setUp();
          const other = c.expect === "legacy" ? "nft" : "legacy";
          assert.match(
            await lab.nodeExec([`iptables-${c.expect}-save`, "-t", "nat"]),
            /-A PREROUTING -j aad-metadata/,
          );
          assert.match(
            await lab.nodeExec([`iptables-${c.expect}-save`, "-t", "filter"]),
            /-A INPUT -j aad-metadata-localnet/,
          );
          assert.doesNotMatch(await lab.nodeExec([`iptables-${other}-save`]), /aad-metadata/);
          assert.equal(await fromPod(pod.ns), "nmi");
        } finally {
          await wrapper.remove();
        }
      }),
  });
}

Deno.test({
  name: "e2e iptables: missing binaries and missing NET_ADMIN are clear errors",
  ignore: !!skip,
  async fn() {
    const missing = new HostNetwork((cmd, args, stdin) => runCommand(`/nonexistent/${cmd}`, args, stdin));
    await assert.rejects(missing.tables(spec), /iptables-save not found on PATH: install it/);
    const unprivileged = new HostNetwork((cmd, args, stdin) =>
      runCommand("setpriv", [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        cmd,
        ...args,
      ], stdin)
    );
    await assert.rejects(unprivileged.ensureRedirect(spec), /needs CAP_NET_ADMIN/);
  },
});
