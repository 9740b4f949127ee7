// MIC, the Managed Identity Controller: flags, Azure and Kubernetes settings, wiring, leader election.
// Every replica keeps warm watch caches; only the leader plans and writes, so failover costs one lease
// duration. A leader that loses its lease exits (status 1) for its Deployment to restart it fresh.
// Wiring has one direction: cache <- controller <- elector. The cache tells subscribers that something
// changed; the elector hands the controller its leadership when it starts leading.
//   deno task mic --help

import {
  FlagError,
  type FlagValues,
  helpText,
  ignoredFlagsGiven,
  levelFromVerbosity,
  parseFlags,
} from "../lib/flags.ts";
import { loadKubeConnection } from "../lib/kube/config.ts";
import { EventRecorder } from "../lib/kube/events.ts";
import { LeaderElector } from "../lib/kube/leader_election.ts";
import { KubeClient, Resources } from "../lib/kube/rest.ts";
import { createLogger, type Logger } from "../lib/log.ts";
import { buildInfo, MIC_VERSION, userAgent, versionLine } from "../lib/version.ts";
import { type ProbeServer, startProbeServer } from "../lib/probe_server.ts";
import { type AzureSetup, loadAzure, micArmClient, reloadOnChange } from "./azure_setup.ts";
import { Controller } from "./controller.ts";
import { MIC_FLAGS } from "./flags.ts";
import { type MicMetrics, micMetrics } from "./metrics.ts";
import { watchNmiSignals } from "./nmi_signals.ts";
import { ObservedCache } from "./observed_cache.ts";
import { upgradeTypesIfRequired, upgradeTypesWithRetry } from "./type_upgrade.ts";

const USAGE = "usage: deno task mic [flags]   (MIC: assigns Azure identities to pods' nodes)";

type MicFlags = FlagValues<typeof MIC_FLAGS>;
type ParsedMicFlags = ReturnType<typeof parseFlags<typeof MIC_FLAGS>>;

const env = (name: string) => Deno.env.get(name);

/** The parsed flags, or the exit code when MIC should not run (help, version, bad flags). */
function readFlags(args: string[]): ParsedMicFlags | number {
  let parsed;
  try {
    parsed = parseFlags(MIC_FLAGS, args, (name) => Deno.env.get(name));
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    console.error(`mic: ${e.message}`);
    return 2;
  }
  if (parsed.help) {
    console.log(helpText(USAGE, MIC_FLAGS));
    return 0;
  }
  if (parsed.values.version) {
    console.log(versionLine(buildInfo(env)));
    return 0;
  }
  return parsed;
}

function micLogger(parsed: ParsedMicFlags): Logger {
  const flags = parsed.values;
  const level = parsed.given.includes("v") ? levelFromVerbosity(flags.v) : env("LOG_LEVEL");
  const log = createLogger({
    format: flags["log-format"] as "text" | "json",
    level: level === "debug" || level === "warn" || level === "error" ? level : "info",
  });
  const ignored = ignoredFlagsGiven(MIC_FLAGS, parsed);
  if (ignored.length) {
    log.info(`flags accepted for compatibility and ignored: ${ignored.map((n) => `--${n}`).join(" ")}`, {
      why: Object.fromEntries(ignored.map((n) => [n, MIC_FLAGS[n as keyof typeof MIC_FLAGS].help])),
    });
  }
  return log;
}

function instanceName(flags: MicFlags): string {
  if (flags["leader-election-instance"]) return flags["leader-election-instance"];
  try {
    return Deno.hostname();
  } catch {
    return `mic-${crypto.randomUUID().slice(0, 8)}`;
  }
}

/** SIGTERM / SIGINT: hand the lease back and stop. */
function stopOnSignals(log: Logger): { signal: AbortSignal; stopping: () => boolean } {
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) return;
    log.info("stopping: handing the lease back");
    stop.abort();
  };
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  return { signal: stop.signal, stopping: () => stop.signal.aborted };
}

interface Parts {
  flags: MicFlags;
  log: Logger;
  client: KubeClient;
  metrics: MicMetrics;
  recorder: EventRecorder;
  identity: string;
  /** One User-Agent for ARM and the apiserver, --custom-user-agent included (the original's shape). */
  userAgent: string;
}

function newController(p: Parts, setup: AzureSetup, cache: ObservedCache): Controller {
  const { flags, userAgent } = p;
  return new Controller({
    client: p.client,
    cache,
    arm: micArmClient(setup, { pollIntervalMs: flags["arm-poll-interval"], userAgent, metrics: p.metrics }),
    recorder: p.recorder,
    log: p.log,
    metrics: p.metrics,
    planner: {
      forceNamespaced: flags.forceNamespaced,
      federatedByDefault: flags["federated-by-default"],
      immutableClientIds: [...flags["immutable-user-msis"], setup.azure.userAssignedIdentityId].filter(
        Boolean,
      ),
    },
    debounceMs: flags["cycle-debounce"],
    writeConcurrency: Math.max(1, flags.createDeleteBatch),
    armConcurrency: Math.max(1, flags["arm-concurrency"]),
    targetBackoff: { baseMs: flags["arm-retry-base"], maxMs: 300_000, jitter: 0.2 },
    identityBackoff: { baseMs: flags["arm-retry-base"] * 6, maxMs: 1_800_000, jitter: 0.2 },
    driftRepairIntervalMs: flags["identity-assignment-reconcile-interval"],
  });
}

function startProbes(
  p: Parts,
  ready: () => boolean,
  isLeader: () => boolean,
  signal: AbortSignal,
): ProbeServer[] {
  const probes: ProbeServer[] = [];
  for (const port of new Set([p.flags["http-probe-port"], p.flags["prometheus-port"]])) {
    if (port < 0) continue;
    probes.push(startProbeServer({
      hostname: p.flags["probe-address"],
      port,
      registry: p.metrics.registry,
      readiness: () => ready() ? { ready: true } : { ready: false, reason: "watch caches not synced" },
      // The original's /healthz said "Active" once its sync loop ran: on the leader only.
      active: () => ready() && isLeader(),
      signal,
    }));
  }
  return probes;
}

/** The Lease as an Event's object: client-go's leader election writes `LeaderElection` events on its lock. */
function leaseEvent(p: Parts, message: string): Promise<void> {
  return p.recorder.record(
    {
      apiVersion: "coordination.k8s.io/v1",
      kind: Resources.leases.kind,
      metadata: { name: p.flags["leader-election-name"], namespace: p.flags["leader-election-namespace"] },
    },
    "Normal",
    "LeaderElection",
    `${p.identity} ${message}`,
  );
}

function newElector(p: Parts, cache: ObservedCache, controller: Controller): LeaderElector {
  const { flags, client, log } = p;
  const durationMs = flags["leader-election-duration"];
  const elector: LeaderElector = new LeaderElector({
    client,
    namespace: flags["leader-election-namespace"],
    name: flags["leader-election-name"],
    identity: p.identity,
    leaseDurationMs: durationMs,
    renewDeadlineMs: Math.round(durationMs * 2 / 3),
    retryPeriodMs: Math.round(durationMs / 5),
    log,
    onStartedLeading: async (signal) => {
      p.metrics.leaderAcquired.inc();
      await leaseEvent(p, "became leader");
      if (!(await cache.waitForSync(signal))) return;
      const fence = () => {
        if (!elector.isLeader()) throw new Error("lost leadership during the type upgrade");
      };
      if (flags["enable-type-upgrade"]) {
        await upgradeTypesWithRetry(
          () =>
            upgradeTypesIfRequired({
              client,
              namespace: Deno.env.get("MIC_POD_NAMESPACE") || flags["leader-election-namespace"],
              configMapName: flags["config-map-name"],
              statusKey: flags["type-upgrade-status-key"],
              version: MIC_VERSION,
              log,
              fence,
            }),
          log,
          signal,
        );
      }
      log.info(
        `leading: ${cache.pods.store.size} bound pods, ${cache.assigned.store.size} assigned identities`,
      );
      await controller.run({ signal, isLeader: () => elector.isLeader() });
    },
    onStoppedLeading: () => void leaseEvent(p, "stopped leading"),
  });
  return elector;
}

async function runMic(flags: MicFlags, log: Logger, setup: AzureSetup): Promise<number> {
  const conn = await loadKubeConnection({ kubeconfigPath: flags.kubeconfig || undefined });
  const ua = userAgent("MIC", buildInfo(env), flags["custom-user-agent"]);
  const client = new KubeClient(conn, { userAgent: ua });
  const identity = instanceName(flags);
  const p: Parts = {
    flags,
    log,
    client,
    metrics: micMetrics(),
    recorder: new EventRecorder({ client, instance: identity, log }),
    identity,
    userAgent: ua,
  };
  const stop = stopOnSignals(log);
  if (flags.cloudconfig) reloadOnChange(flags.cloudconfig, setup, log, stop.signal);
  const watchTimeout = flags["watch-timeout"]
    ? { watchTimeoutSeconds: Math.max(1, Math.round(flags["watch-timeout"] / 1000)) }
    : {};
  const cache = new ObservedCache({ client, log, ...watchTimeout });
  const controller = newController(p, setup, cache);
  cache.start(stop.signal);
  watchNmiSignals(
    { client, log, cache, recheck: (t) => controller.recheck(t), ...watchTimeout },
    stop.signal,
  );
  let synced = false;
  cache.waitForSync(stop.signal).then((ok) => (synced = ok));
  const elector = newElector(p, cache, controller);
  const probes = startProbes(p, () => synced, () => elector.isLeader(), stop.signal);
  // The original counted here (entering the election), not on winning it: dashboards read it that way.
  p.metrics.leaderElections.inc();
  await elector.run(stop.signal);
  await Promise.allSettled(probes.map((probe) => probe.shutdown()));
  // Bounded: with the apiserver gone the last events are lost, not the exit.
  await Promise.race([p.recorder.drain(), new Promise((r) => setTimeout(r, 2_000))]);
  conn.close();
  if (!stop.stopping()) {
    log.error("lost the leader lease: exiting so a fresh replica takes over");
    return 1;
  }
  return 0;
}

async function main(args: string[]): Promise<number> {
  const parsed = readFlags(args);
  if (typeof parsed === "number") return parsed;
  const flags = parsed.values;
  const log = micLogger(parsed);
  let setup: AzureSetup;
  try {
    setup = await loadAzure(flags.cloudconfig);
  } catch (e) {
    log.error(`Azure settings: ${(e as Error).message}`);
    return 1;
  }
  return await runMic(flags, log, setup);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
