// NMI: the node agent's token server. Flags, wiring and readiness; the parts live in their own modules.
//   deno task nmi --node <name> [flags]       (`deno task nmi --help` lists the flags)

import { FlagError, helpText, ignoredFlagsGiven, levelFromVerbosity, parseFlags } from "../lib/flags.ts";
import { buildInfo, NMI_VERSION, userAgent, versionLine } from "../lib/version.ts";
import { createLogger, type Logger } from "../lib/log.ts";
import { startProbeServer } from "../lib/probe_server.ts";
import { loadKubeConnection } from "../lib/kube/config.ts";
import { sleep } from "../lib/sleep.ts";
import { EventRecorder } from "../lib/kube/events.ts";
import { KubeClient } from "../lib/kube/rest.ts";
import type { KubeObject } from "../lib/kube/types.ts";
import { NmiCaches } from "./caches.ts";
import { CallerResolver } from "./caller.ts";
import { NMI_FLAGS, type NmiFlags, validateFlags } from "./config.ts";
import { ImdsClient } from "./imds_client.ts";
import { UpstreamLimiter } from "./limiter.ts";
import { NmiMetrics } from "./metrics.ts";
import { RedirectSync } from "./iptables/sync.ts";
import { redirectTarget } from "./iptables/rules.ts";
import { isKubenetNode } from "./kubenet.ts";
import { removeNodeTaint } from "./node_taint.ts";
import { createHandler } from "./server.ts";
import { TokenCache } from "./token_cache.ts";
import { TokenFlow } from "./token_flow.ts";
import { TokenService } from "./token_service.ts";

export { NMI_VERSION };
const USAGE =
  "Usage: deno task nmi --node <node-name> [flags]\n\nNMI answers pods' IMDS token requests with the " +
  "identity bound to them.";

export interface RunningNmi {
  port: number;
  probePort?: number;
  stop(): Promise<void>;
  finished: Promise<void>;
}

function hostForUrl(ip: string): string {
  return ip.includes(":") ? `[${ip}]` : ip;
}

export async function startNmi(f: NmiFlags, log: Logger): Promise<RunningNmi> {
  if (!f["allow-network-plugin-kubenet"] && await isKubenetNode(f["kubelet-config"])) {
    throw new Error(
      `${f["kubelet-config"]} sets --network-plugin=kubenet, where pods with NET_RAW can spoof other pods' ` +
        "IPs and get their tokens (CVE-2021-1677); pass --allow-network-plugin-kubenet to run anyway",
    );
  }
  const ac = new AbortController();
  const conn = await loadKubeConnection({ kubeconfigPath: f.kubeconfig || undefined });
  const ua = userAgent("NMI", buildInfo((n) => Deno.env.get(n)), f["custom-user-agent"]);
  const client = new KubeClient(conn, { userAgent: ua, requestTimeoutMs: 10_000 });
  const metrics = new NmiMetrics();
  const mode = f["operation-mode"] as "standard" | "managed";
  const caches = new NmiCaches({ client, node: f.node, mode, log });
  const limiter = new UpstreamLimiter({
    maxConcurrent: f["imds-max-concurrent"],
    perSecond: f["imds-max-rps"],
  });
  const imdsBase = `http://${hostForUrl(f["metadata-ip"])}:${f["metadata-port"]}`;
  const imds = new ImdsClient({
    baseUrl: imdsBase,
    timeoutMs: f["upstream-timeout"],
    limiter,
    userAgent: ua,
  });
  const cache = new TokenCache(
    { minLifetimeMs: f["token-min-lifetime"], refreshAheadMs: f["token-refresh-ahead"] },
    {
      onResult: (from) => metrics.cache.inc({ result: from }),
      onBackgroundError: (_key, e) =>
        log.warn("background token refresh failed", { error: e instanceof Error ? e.message : String(e) }),
    },
  );
  // Service-account tokens live 10 minutes: used while 2 minutes remain, refreshed in the last 5.
  const saCache = new TokenCache({ minLifetimeMs: 120_000, refreshAheadMs: 300_000 }, {
    onBackgroundError: (_key, e) =>
      log.warn("background service-account token refresh failed", {
        error: e instanceof Error ? e.message : String(e),
      }),
  });
  const recorder = new EventRecorder({ client, instance: f.node, log });
  const tokens = new TokenService({
    imds,
    cache,
    caches,
    federation: {
      kube: client,
      byDefault: f["federated-by-default"],
      tenantId: f["tenant-id"],
      node: f.node,
      saCache,
    },
    defaultAdEndpoint: f["ad-endpoint"],
    timeoutMs: f["upstream-timeout"],
    userAgent: ua,
    log,
    onUpstream: (kind, ok, seconds) => metrics.observeUpstream(kind, ok, seconds),
  });
  const flow = new TokenFlow({
    mode,
    node: f.node,
    micNamespace: f.MICNamespace,
    forceNamespaced: f.forceNamespaced,
    waitDeadlineMs: f["identity-wait-deadline"],
    setRetryAfter: f["set-retry-after-header"],
    retryAfterSeconds: f["retry-after-seconds"],
    caches,
    tokens,
    log,
    warnBinding: (binding, reason, message) => {
      recorder.record(binding as unknown as KubeObject, "Warning", reason, message).catch(() => {});
    },
  });
  const callers = new CallerResolver({
    pods: caches.pods.store,
    client,
    node: f.node,
    onKubeError: (op) => metrics.kubeErrors.inc({ operation_type: op }),
  });
  const running = caches.start(ac.signal);
  const sweep = setInterval(() => {
    cache.sweep();
    saCache.sweep();
  }, 60_000);

  const server = Deno.serve(
    {
      hostname: f["nmi-listen-address"],
      port: f["nmi-port"],
      signal: ac.signal,
      onListen: () => {},
      onError: (e) => {
        log.error("request handler failed", { error: e instanceof Error ? e.message : String(e) });
        return new Response(JSON.stringify({ error: "server_error", error_description: "internal error" }), {
          status: 500,
          headers: { "content-type": "application/json; charset=utf-8" },
        });
      },
    },
    createHandler({
      flow,
      callers,
      caches,
      imdsBase,
      limiter,
      blockInstanceMetadata: f["block-instance-metadata"],
      metadataHeaderRequired: f["metadata-header-required"],
      upstreamTimeoutMs: f["upstream-timeout"],
      waitDeadlineMs: f["identity-wait-deadline"],
      metrics,
      log,
    }),
  );

  // The redirection goes in only once the server listens, so DNAT never points at a closed port.
  let redirect: RedirectSync | undefined;
  let redirecting: Promise<void> | undefined;
  if (f["manage-iptables"]) {
    redirect = new RedirectSync({
      spec: {
        metadataIp: f["metadata-ip"],
        metadataPort: f["metadata-port"],
        targetIp: redirectTarget(f["nmi-listen-address"]),
        targetPort: server.addr.port,
      },
      intervalMs: f["ipt-update-interval-sec"] * 1000,
      flushConntrack: f["enable-conntrack-deletion"],
      removeOnStop: f["cleanup-iptables-on-exit"],
      log,
    });
    try {
      await redirect.setUp();
    } catch (e) {
      ac.abort();
      await Promise.allSettled([server.finished, running]);
      conn.close();
      clearInterval(sweep);
      limiter.close();
      throw e;
    }
    redirecting = redirect.run(ac.signal);
  }

  const readiness = () => {
    if (!caches.isSynced()) {
      return { ready: false, reason: `caches not synced: ${caches.pending().join("; ")}` };
    }
    if (redirect && !redirect.inPlace) {
      return {
        ready: false,
        reason: `iptables redirection not in place: ${redirect.lastError || "starting"}`,
      };
    }
    return { ready: true };
  };
  const probes: ReturnType<typeof startProbeServer>[] = [];
  if (f["http-probe-port"] >= 0) {
    probes.push(startProbeServer({
      hostname: f["probe-listen-address"],
      port: f["http-probe-port"],
      registry: metrics.registry,
      readiness,
      signal: ac.signal,
    }));
  }
  if (f["prometheus-port"] >= 0 && f["prometheus-port"] !== f["http-probe-port"]) {
    probes.push(startProbeServer({
      hostname: f["probe-listen-address"],
      port: f["prometheus-port"],
      registry: metrics.registry,
      readiness,
      signal: ac.signal,
    }));
  }
  log.info("NMI listening", {
    address: `${f["nmi-listen-address"]}:${server.addr.port}`,
    probePort: probes[0]?.port,
    node: f.node,
    mode,
    imds: imdsBase,
  });
  caches.synced.then(() => log.info("caches synced"));
  const taint = f["remove-node-taint"];
  const untainted = taint
    ? removeTaintWhenReady(client, f.node, taint, readiness, ac.signal, log)
    : undefined;

  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      clearInterval(sweep);
      limiter.close();
      ac.abort();
      await Promise.allSettled([
        server.finished,
        running,
        redirecting,
        untainted,
        ...probes.map((p) => p.finished),
      ]);
      await redirect?.stop().catch((e) =>
        log.error("iptables cleanup failed", { error: (e as Error).message })
      );
      conn.close();
    })();
  return { port: server.addr.port, probePort: probes[0]?.port, stop, finished: server.finished };
}

/** Once NMI is ready, takes the start-up taint off its node (retrying until it works or NMI stops). */
async function removeTaintWhenReady(
  client: KubeClient,
  node: string,
  key: string,
  readiness: () => { ready: boolean },
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  let lastError = "";
  while (!signal.aborted) {
    if (readiness().ready) {
      try {
        const removed = await removeNodeTaint(client, node, key);
        log.info(removed ? `removed taint ${key} from node ${node}` : `node ${node} has no taint ${key}`);
        return;
      } catch (e) {
        const msg = (e as Error).message;
        if (msg !== lastError) log.warn(`cannot remove taint ${key} from node ${node}: ${msg}`);
        lastError = msg;
      }
    }
    await sleep(1000, signal);
  }
}

if (import.meta.main) {
  let f: NmiFlags;
  let given: readonly string[] = [];
  try {
    const parsed = parseFlags(NMI_FLAGS, Deno.args, (n) => Deno.env.get(n));
    given = parsed.given;
    if (parsed.help) {
      console.log(helpText(USAGE, NMI_FLAGS));
      Deno.exit(0);
    }
    f = parsed.values;
    if (parsed.rest.length) throw new FlagError(`unexpected arguments: ${parsed.rest.join(" ")}`);
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    console.error(`nmi: ${e.message}`);
    Deno.exit(2);
  }
  if (f.version) {
    console.log(versionLine(buildInfo((n) => Deno.env.get(n))));
    Deno.exit(0);
  }
  const problems = validateFlags(f);
  if (problems.length) {
    for (const p of problems) console.error(`nmi: ${p}`);
    Deno.exit(2);
  }
  // klog's -v stands in for --log-level when only it is given (the original chart's logVerbosity).
  const level = given.includes("v") && !given.includes("log-level") ? levelFromVerbosity(f.v) : undefined;
  const log = createLogger({
    format: f["log-format"] as "text" | "json",
    level: level ?? f["log-level"] as "debug" | "info" | "warn" | "error",
  });
  const ignored = ignoredFlagsGiven(NMI_FLAGS, { given });
  if (ignored.length) {
    log.warn(`flags accepted for compatibility and ignored: ${ignored.map((n) => `--${n}`).join(" ")}`, {
      why: Object.fromEntries(ignored.map((n) => [n, NMI_FLAGS[n as keyof NmiFlags].help])),
    });
  }
  let nmi: RunningNmi;
  try {
    nmi = await startNmi(f, log);
  } catch (e) {
    log.error("NMI failed to start", { error: e instanceof Error ? e.message : String(e) });
    Deno.exit(1);
  }
  const onSignal = () => {
    log.info("shutting down");
    nmi.stop().then(() => Deno.exit(0));
  };
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
}
