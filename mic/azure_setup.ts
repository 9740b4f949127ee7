// MIC's Azure side at start-up: azure.json (or the original's env vars), the cloud, a credential that is
// swapped when azure.json changes (a rotated secret), and the ARM client with its metrics.

import {
  type AzureConfig,
  azureConfigFromEnv,
  credentialsOf,
  parseAzureJson,
} from "../lib/azure/azure_json.ts";
import { createArmClient, type IdentityArm } from "../lib/azure/arm_client.ts";
import { type CloudEnvironment, resolveCloud } from "../lib/azure/cloud.ts";
import { armCredential } from "../lib/azure/credentials.ts";
import type { AccessToken, GetTokenOptions, TokenCredential } from "../lib/azure/token_credential.ts";
import type { Logger } from "../lib/log.ts";
import { type MicMetrics, recordArmCall } from "./metrics.ts";

export interface AzureSetup {
  azure: AzureConfig;
  cloud: CloudEnvironment;
  credential: ReloadableCredential;
}

function env(name: string): string | undefined {
  return Deno.env.get(name);
}

async function loadAzureConfig(path: string): Promise<AzureConfig> {
  if (!path) return azureConfigFromEnv(env);
  return await parseAzureJson(await Deno.readTextFile(path), path);
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

/** Reads azure.json (`path`, or env vars when empty) and the cloud; throws with a clear message. */
export async function loadAzure(path: string): Promise<AzureSetup> {
  const azure = await loadAzureConfig(path);
  const cloud = await loadCloud(azure);
  return {
    azure,
    cloud,
    credential: new ReloadableCredential(await armCredential(credentialsOf(azure), cloud)),
  };
}

/** Re-reads azure.json 200 ms after it changes and swaps the credential in place. */
export function reloadOnChange(path: string, setup: AzureSetup, log: Logger, signal: AbortSignal): void {
  const reload = async () => {
    const next = await loadAzureConfig(path);
    setup.credential.current = await armCredential(credentialsOf(next), await loadCloud(next));
    log.info(`${path} changed: Azure credentials reloaded`);
  };
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
      timer = setTimeout(() => reload().catch((e) => log.error(`reloading ${path}`, { error: e })), 200);
    }
  })();
}

export function micArmClient(
  setup: AzureSetup,
  o: { pollIntervalMs: number; userAgent: string; metrics: MicMetrics },
): IdentityArm {
  return createArmClient({
    credential: setup.credential,
    endpoint: setup.cloud.resourceManagerEndpoint,
    audience: setup.cloud.tokenAudience,
    pollIntervalMs: o.pollIntervalMs,
    userAgent: o.userAgent,
    onCall: (op, code, seconds) => recordArmCall(o.metrics, op, code, seconds),
  });
}
