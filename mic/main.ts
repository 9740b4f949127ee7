// MIC, the Managed Identity Controller: flags, Azure and Kubernetes settings, wiring, leader election.
// Every replica keeps warm watch caches; only the leader plans and writes, so failover costs one lease
// duration. A leader that loses its lease exits (status 1) for its Deployment to restart it fresh.
//   deno task mic --help

import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/identity";
import { FlagError, helpText, ignoredFlagsGiven, levelFromVerbosity, parseFlags } from "../lib/flags.ts";
import { buildInfo, MIC_VERSION, userAgent, versionLine } from "../lib/version.ts";
import {
  type AzureConfig,
  azureConfigFromEnv,
  credentialsOf,
  parseAzureJson,
} from "../lib/azure/azure_json.ts";
import { createArmClient } from "../lib/azure/arm_client.ts";
import { type CloudEnvironment, resolveCloud } from "../lib/azure/cloud.ts";
import { armCredential } from "../lib/azure/credentials.ts";
import { loadKubeConnection } from "../lib/kube/config.ts";
import { EventRecorder } from "../lib/kube/events.ts";
import { LeaderElector } from "../lib/kube/leader_election.ts";
import { KubeClient } from "../lib/kube/rest.ts";
import { createLogger, type Logger } from "../lib/log.ts";
import { type ProbeServer, startProbeServer } from "../lib/probe_server.ts";
import { Controller } from "./executor.ts";
import { MIC_FLAGS } from "./flags.ts";
import { micMetrics, recordArmCall } from "./metrics.ts";
import { ObservedCache } from "./snapshot.ts";
import { upgradeTypesIfRequired } from "./type_upgrade.ts";

export { MIC_VERSION };
const USAGE = "usage: deno task mic [flags]   (MIC: assigns Azure identities to pods' nodes)";

function env(name: string): string | undefined {
  return Deno.env.get(name);
}

async function loadAzureConfig(path: string): Promise<AzureConfig> {
  if (!path) return azureConfigFromEnv(env);
  return parseAzureJson(await Deno.readTextFile(path), path);
}

async function loadCloud(cfg: AzureConfig): Promise<CloudEnvironment> {
  const file = env("AZURE_ENVIRONMENT_FILEPATH");
  return resolveCloud(cfg.cloud, file ? { path: file, text: await Deno.readTextFile(file) } : undefined);
}

/** The credential behind it is swapped when azure.json changes (rotated secret), the ARM client stays. */
class ReloadableCredential implements TokenCredential {
  constructor(public current: TokenCredential) {}
  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    return this.current.getToken(scopes, options);
  }
}

function watchConfig(path: string, onChange: () => Promise<void>, log: Logger, signal: AbortSignal): void {
  (async () => {
    let watcher: Deno.FsWatcher;
    try {
      watcher = Deno.watchFs(path);
    } catch (e) {
      log.warn(`cannot watch ${path}; changes need a restart`, { error: e });
      return;
    }
    signal.addEventListener("abort", () => watcher.close(), { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    for await (const ev of watcher) {
      if (ev.kind === "access") continue;
      clearTimeout(timer);
      timer = setTimeout(() => onChange().catch((e) => log.error(`reloading ${path}`, { error: e })), 200);
    }
  })();
}

export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseFlags(MIC_FLAGS, args, env);
  } catch (e) {
    if (e instanceof FlagError) {
      console.error(`mic: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (parsed.help) {
    console.log(helpText(USAGE, MIC_FLAGS));
    return 0;
  }
  const f = parsed.values;
  if (f.version) {
    console.log(versionLine(buildInfo(env)));
    return 0;
  }
  const level = parsed.given.includes("v") ? levelFromVerbosity(f.v) : env("LOG_LEVEL");
  const log = createLogger({
    format: f["log-format"] as "text" | "json",
    level: level === "debug" || level === "warn" || level === "error" ? level : "info",
  });
  const ignored = ignoredFlagsGiven(MIC_FLAGS, parsed);
  if (ignored.length) {
    log.info(`flags accepted for compatibility and ignored: ${ignored.map((n) => `--${n}`).join(" ")}`, {
      why: Object.fromEntries(ignored.map((n) => [n, MIC_FLAGS[n as keyof typeof MIC_FLAGS].help])),
    });
  }

  let azure: AzureConfig;
  let cloud: CloudEnvironment;
  try {
    azure = await loadAzureConfig(f.cloudconfig);
    cloud = await loadCloud(azure);
  } catch (e) {
    log.error(`Azure settings: ${(e as Error).message}`);
    return 1;
  }
  const credential = new ReloadableCredential(armCredential(credentialsOf(azure), cloud));
  const metrics = micMetrics();
  // One User-Agent for ARM and the apiserver, --custom-user-agent included (the original's shape).
  const ua = userAgent("MIC", buildInfo(env), f["custom-user-agent"]);
  const arm = createArmClient({
    credential,
    endpoint: cloud.resourceManagerEndpoint,
    audience: cloud.tokenAudience,
    pollIntervalMs: f["arm-poll-interval"],
    userAgent: ua,
    onCall: (op, code, seconds) => recordArmCall(metrics, op, code, seconds),
  });

  const conn = await loadKubeConnection({ kubeconfigPath: f.kubeconfig || undefined });
  const client = new KubeClient(conn, { userAgent: ua });
  let identity = f["leader-election-instance"];
  if (!identity) {
    try {
      identity = Deno.hostname();
    } catch {
      identity = `mic-${crypto.randomUUID().slice(0, 8)}`;
    }
  }
  const stop = new AbortController();
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    log.info("stopping: handing the lease back");
    stop.abort();
  };
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);

  if (f.cloudconfig) {
    watchConfig(
      f.cloudconfig,
      async () => {
        const next = await loadAzureConfig(f.cloudconfig);
        credential.current = armCredential(credentialsOf(next), await loadCloud(next));
        log.info(`${f.cloudconfig} changed: Azure credentials reloaded`);
      },
      log,
      stop.signal,
    );
  }

  // The cache, controller and elector refer to each other; these late-bound slots break the cycle.
  const late: { elector?: LeaderElector; controller?: Controller } = {};
  const isLeader = () => !!late.elector?.isLeader();
  const cache = new ObservedCache({
    client,
    log,
    onChange: () => late.controller?.trigger(),
    ...(f["watch-timeout"]
      ? { watchTimeoutSeconds: Math.max(1, Math.round(f["watch-timeout"] / 1000)) }
      : {}),
  });
  const controller = late.controller = new Controller({
    client,
    cache,
    arm,
    recorder: new EventRecorder({ client, instance: identity, log }),
    log,
    metrics,
    isLeader,
    planner: {
      forceNamespaced: f.forceNamespaced,
      federatedByDefault: f["federated-by-default"],
      immutableClientIds: [...f["immutable-user-msis"], azure.userAssignedIdentityId].filter(Boolean),
    },
    debounceMs: f["cycle-debounce"],
    writeConcurrency: Math.max(1, f.createDeleteBatch),
    armConcurrency: Math.max(1, f["arm-concurrency"]),
    targetBackoff: { baseMs: f["arm-retry-base"], maxMs: 300_000, jitter: 0.2 },
    identityBackoff: { baseMs: f["arm-retry-base"] * 6, maxMs: 1_800_000, jitter: 0.2 },
    driftRepairIntervalMs: f["identity-assignment-reconcile-interval"],
  });
  cache.start(stop.signal);
  let synced = false;
  cache.waitForSync(stop.signal).then((ok) => (synced = ok));

  const probes: ProbeServer[] = [];
  for (const port of new Set([f["http-probe-port"], f["prometheus-port"]])) {
    if (port < 0) continue;
    probes.push(startProbeServer({
      hostname: f["probe-address"],
      port,
      registry: metrics.registry,
      readiness: () => synced ? { ready: true } : { ready: false, reason: "watch caches not synced" },
      // The original's /healthz said "Active" once its sync loop ran: on the leader only.
      active: () => synced && isLeader(),
      signal: stop.signal,
    }));
  }

  const durationMs = f["leader-election-duration"];
  const podNamespace = env("MIC_POD_NAMESPACE") || f["leader-election-namespace"];
  const elector = late.elector = new LeaderElector({
    client,
    namespace: f["leader-election-namespace"],
    name: f["leader-election-name"],
    identity,
    leaseDurationMs: durationMs,
    renewDeadlineMs: Math.round(durationMs * 2 / 3),
    retryPeriodMs: Math.round(durationMs / 5),
    log,
    onStartedLeading: async (signal) => {
      metrics.leaderAcquired.inc();
      if (!(await cache.waitForSync(signal))) return;
      // Retried: right after an apiserver (re)start its storage may still be initialising.
      for (let attempt = 1; f["enable-type-upgrade"] && attempt <= 5 && !signal.aborted; attempt++) {
        try {
          await upgradeTypesIfRequired({
            client,
            namespace: podNamespace,
            configMapName: f["config-map-name"],
            statusKey: f["type-upgrade-status-key"],
            version: MIC_VERSION,
            log,
            fence: () => {
              if (!isLeader()) throw new Error("lost leadership during the type upgrade");
            },
          });
          break;
        } catch (e) {
          if (attempt < 5) {
            await new Promise((r) => setTimeout(r, 1000 * attempt));
            continue;
          }
          log.error("type upgrade failed; continuing with objects as they are", { error: e });
        }
      }
      log.info(
        `leading: ${cache.pods.store.size} bound pods, ${cache.assigned.store.size} assigned identities`,
      );
      await controller.run(signal);
    },
  });
  // The original counted here (entering the election), not on winning it: dashboards read it that way.
  metrics.leaderElections.inc();
  await elector.run(stop.signal);
  await Promise.allSettled(probes.map((p) => p.shutdown()));
  conn.close();
  if (!stopping) {
    log.error("lost the leader lease: exiting so a fresh replica takes over");
    return 1;
  }
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
