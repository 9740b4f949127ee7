// NMI: the node agent's token server. Flags, wiring and readiness; the parts live in their own modules.
//   deno task nmi --node <name> [flags]       (`deno task nmi --help` lists the flags)

import { FlagError, helpText, ignoredFlagsGiven, levelFromVerbosity, parseFlags } from "../lib/flags.ts";
import { buildInfo, userAgent, versionLine } from "../lib/version.ts";
import { createLogger, type Logger } from "../lib/log.ts";
import { type ProbeServer, type Readiness, startProbeServer } from "../lib/probe_server.ts";
import { loadKubeConnection } from "../lib/kube/config.ts";
import { sleep } from "../lib/sleep.ts";
import { EventRecorder } from "../lib/kube/events.ts";
import { KubeClient } from "../lib/kube/rest.ts";
import type { KubeObject } from "../lib/kube/types.ts";
import { NmiCaches } from "./caches.ts";
import { reportIdentityNotFound } from "./identity_not_found_event.ts";
import { CallerResolver } from "./caller.ts";
import { NMI_FLAGS, type NmiFlags, validateFlags } from "./config.ts";
import { ImdsClient } from "./imds_client.ts";
import { UpstreamLimiter } from "./limiter.ts";
import { exposedGc, startIdleGc } from "./idle_gc.ts";
import { NmiMetrics, type UpstreamKind } from "./metrics.ts";
import { RedirectSync } from "./iptables/sync.ts";
import { redirectTarget } from "./iptables/rules.ts";
import { isKubenetNode } from "./kubenet.ts";
import { removeNodeTaint } from "./node_taint.ts";
import { NmiServer } from "./server.ts";
import { Http1Server } from "./http1_server.ts";
import { WatchFreshness } from "./watch_freshness.ts";
import { TokenCache } from "./token_cache.ts";
import { TokenFlow } from "./token_flow.ts";
import { TokenService } from "./token_service.ts";

const USAGE =
  "Usage: deno task nmi --node <node-name> [flags]\n\nNMI answers pods' IMDS token requests with the " +
  "identity bound to them.";

interface RunningNmi {
  port: number;
  probePort?: number;
  stop(): Promise<void>;
  finished: Promise<void>;
}

function hostForUrl(ip: string): string {
  return ip.includes(":") ? `[${ip}]` : ip;
}

/** NMI refuses kubenet nodes, where pods with NET_RAW can spoof other pods' IPs (CVE-2021-1677). */
async function refuseKubenet(f: NmiFlags): Promise<void> {
  if (f["allow-network-plugin-kubenet"] || !await isKubenetNode(f["kubelet-config"])) return;
  throw new Error(
    `${f["kubelet-config"]} sets --network-plugin=kubenet, where pods with NET_RAW can spoof other pods' ` +
      "IPs and get their tokens (CVE-2021-1677); pass --allow-network-plugin-kubenet to run anyway",
  );
}

/** Everything a token request goes through, wired from the flags. */
interface Services {
  client: KubeClient;
  metrics: NmiMetrics;
  caches: NmiCaches;
  limiter: UpstreamLimiter;
  imdsBase: string;
  sweepTokens: () => void;
  flow: TokenFlow;
  callers: CallerResolver;
  freshness: WatchFreshness;
}

function tokenCaches(
  f: NmiFlags,
  metrics: NmiMetrics,
  log: Logger,
): { cache: TokenCache; saCache: TokenCache } {
  const warn = (what: string) => (_key: string, e: unknown) =>
    log.warn(what, { error: e instanceof Error ? e.message : String(e) });
  const cache = new TokenCache(
    { minLifetimeMs: f["token-min-lifetime"], refreshAheadMs: f["token-refresh-ahead"] },
    {
      onResult: (from) => metrics.cache.inc({ result: from }),
      onBackgroundError: warn("background token refresh failed"),
    },
  );
  // Service-account tokens live 10 minutes: used while 2 minutes remain, refreshed in the last 5.
  const saCache = new TokenCache({ minLifetimeMs: 120_000, refreshAheadMs: 300_000 }, {
    onBackgroundError: warn("background service-account token refresh failed"),
  });
  return { cache, saCache };
}

function buildServices(f: NmiFlags, client: KubeClient, ua: string, log: Logger): Services {
  const metrics = new NmiMetrics();
  const mode = f["operation-mode"] as "standard" | "managed";
  const caches = new NmiCaches({ client, node: f.node, mode, log });
  const limiter = new UpstreamLimiter({
    maxConcurrent: f["imds-max-concurrent"],
    perSecond: f["imds-max-rps"],
    maxQueuedPerSource: f["imds-max-queued-per-pod"],
  });
  const imdsBase = `http://${hostForUrl(f["metadata-ip"])}:${f["metadata-port"]}`;
  const upstream = (kind: UpstreamKind, ok: boolean, seconds: number) =>
    metrics.observeUpstream(kind, ok, seconds);
  const imds = new ImdsClient({
    baseUrl: imdsBase,
    timeoutMs: f["upstream-timeout"],
    limiter,
    userAgent: ua,
    onCall: upstream,
  });
  const { cache, saCache } = tokenCaches(f, metrics, log);
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
    onUpstream: upstream,
  });
  const flow = new TokenFlow({
    mode,
    node: f.node,
    micNamespace: f.MICNamespace,
    micServiceAccount: f["mic-service-account"],
    forceNamespaced: f.forceNamespaced,
    waitDeadlineMs: f["identity-wait-deadline"],
    caches,
    tokens,
    log,
    missingAfterMs: f["identity-missing-after"],
    onMissingOnNode: (a) =>
      void reportIdentityNotFound(
        recorder,
        { namespace: a.metadata.namespace ?? "", name: a.metadata.name, uid: a.metadata.uid },
        { node: f.node, clientId: a.spec.azureIdentityRef.spec.clientID },
      ).catch(() => {}),
    warnBinding: (binding, reason, message) => {
      recorder.record(binding as unknown as KubeObject, "Warning", reason, message).catch(() => {});
    },
  });
  const podStats = () => caches.pods.stats;
  const freshness = new WatchFreshness(
    () => podStats().events + podStats().bookmarks + podStats().lists,
    f["pod-watch-freshness"],
  );
  const callers = new CallerResolver({
    pods: caches.pods.store,
    client,
    node: f.node,
    freshness,
    onKubeError: (op) => metrics.kubeErrors.inc({ operation_type: op }),
  });
  const sweep = () => {
    cache.sweep();
    saCache.sweep();
  };
  return { client, metrics, caches, limiter, imdsBase, sweepTokens: sweep, flow, callers, freshness };
}

function startTokenServer(f: NmiFlags, s: Services, log: Logger, signal: AbortSignal): Http1Server {
  const handler = new NmiServer({
    flow: s.flow,
    callers: s.callers,
    caches: s.caches,
    imdsBase: s.imdsBase,
    limiter: s.limiter,
    blockInstanceMetadata: f["block-instance-metadata"],
    metadataHeaderRequired: f["metadata-header-required"],
    upstreamTimeoutMs: f["upstream-timeout"],
    waitDeadlineMs: f["identity-wait-deadline"],
    retryAfterSeconds: f["set-retry-after-header"] ? f["retry-after-seconds"] : undefined,
    metrics: s.metrics,
    log,
  });
  return new Http1Server({
    hostname: f["nmi-listen-address"],
    port: f["nmi-port"],
    handler: handler.handle,
    log,
    signal,
    limits: {
      headTimeoutMs: f["header-timeout"],
      bodyTimeoutMs: f["header-timeout"],
      idleTimeoutMs: f["idle-timeout"],
      maxConnectionsPerIp: f["max-connections-per-ip"],
      maxConnections: f["max-connections"],
    },
  });
}

function redirectFor(f: NmiFlags, port: number, log: Logger): RedirectSync | undefined {
  if (!f["manage-iptables"]) return undefined;
  return new RedirectSync({
    spec: {
      metadataIp: f["metadata-ip"],
      metadataPort: f["metadata-port"],
      targetIp: redirectTarget(f["nmi-listen-address"]),
      targetPort: port,
    },
    intervalMs: f["ipt-update-interval-sec"] * 1000,
    flushConntrack: f["enable-conntrack-deletion"],
    removeOnStop: f["cleanup-iptables-on-exit"],
    log,
  });
}

function readinessOf(caches: NmiCaches, redirect: RedirectSync | undefined): () => Readiness {
  return () => {
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
}

function startProbes(
  f: NmiFlags,
  metrics: NmiMetrics,
  readiness: () => Readiness,
  signal: AbortSignal,
): ProbeServer[] {
  const ports = [f["http-probe-port"]];
  if (f["prometheus-port"] !== f["http-probe-port"]) ports.push(f["prometheus-port"]);
  return ports.filter((p) => p >= 0).map((port) =>
    startProbeServer({
      hostname: f["probe-listen-address"],
      port,
      registry: metrics.registry,
      readiness,
      signal,
    })
  );
}

async function startNmi(f: NmiFlags, log: Logger): Promise<RunningNmi> {
  await refuseKubenet(f);
  const ac = new AbortController();
  const conn = await loadKubeConnection({ kubeconfigPath: f.kubeconfig || undefined });
  const ua = userAgent("NMI", buildInfo((n) => Deno.env.get(n)), f["custom-user-agent"]);
  const client = new KubeClient(conn, { userAgent: ua, requestTimeoutMs: 10_000 });
  const s = buildServices(f, client, ua, log);
  const running = s.caches.start(ac.signal);
  s.freshness.start(ac.signal);
  const sweep = setInterval(s.sweepTokens, 60_000);
  const server = startTokenServer(f, s, log, ac.signal);
  startIdleGc({
    count: () => server.stats.requests + s.caches.changes.version,
    gc: exposedGc(),
    log,
    signal: ac.signal,
  });
  const release = () => {
    clearInterval(sweep);
    s.limiter.close();
    ac.abort();
  };

  // The redirection goes in only once the server listens, so DNAT never points at a closed port.
  const redirect = redirectFor(f, server.addr.port, log);
  try {
    await redirect?.setUp();
  } catch (e) {
    release();
    await Promise.allSettled([server.finished, running]);
    conn.close();
    throw e;
  }
  const redirecting = redirect?.run(ac.signal);
  const readiness = readinessOf(s.caches, redirect);
  const probes = startProbes(f, s.metrics, readiness, ac.signal);
  log.info("NMI listening", {
    address: `${f["nmi-listen-address"]}:${server.addr.port}`,
    probePort: probes[0]?.port,
    node: f.node,
    mode: f["operation-mode"],
    imds: s.imdsBase,
  });
  s.caches.synced.then(() => log.info("caches synced"));
  const taint = f["remove-node-taint"];
  const untainted = taint
    ? removeTaintWhenReady(client, f.node, taint, readiness, ac.signal, log)
    : undefined;

  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      release();
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
