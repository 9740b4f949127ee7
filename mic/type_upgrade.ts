// The original's one-time "type upgrade" (docs/upstream.md, "## CRDs"): objects written in the pre-1.6
// PascalCase spelling are rewritten in camelCase, so printer columns, kubectl and other tools see their
// fields. Done once per cluster, recorded under a key in a ConfigMap; off by flag. Objects already in
// camelCase are not touched.

import { BINDING_SPEC_ALIASES, EXCEPTION_SPEC_ALIASES, IDENTITY_SPEC_ALIASES } from "../lib/api/casing.ts";
import { InvalidObjectError, normalize } from "../lib/api/normalize.ts";
import { toWire } from "../lib/api/wire.ts";
import { KubeApiError, type KubeClient, Resources, type ResourceType } from "../lib/kube/rest.ts";
import type { KubeObject } from "../lib/kube/types.ts";
import { sleep } from "../lib/sleep.ts";
import type { Logger } from "../lib/log.ts";

interface TypeUpgradeOptions {
  client: KubeClient;
  namespace: string;
  configMapName: string;
  statusKey: string;
  version: string;
  log: Logger;
  fence: () => void;
}

type Raw = KubeObject & { spec?: Record<string, unknown> };

const LEGACY: [ResourceType, readonly string[]][] = [
  [Resources.azureIdentities, Object.values(IDENTITY_SPEC_ALIASES)],
  [Resources.azureIdentityBindings, Object.values(BINDING_SPEC_ALIASES)],
  [Resources.azurePodIdentityExceptions, Object.values(EXCEPTION_SPEC_ALIASES)],
];

/** Whether an object's spec still uses a PascalCase field name. */
function usesLegacyCasing(obj: Raw, legacy: readonly string[]): boolean {
  const spec = obj.spec;
  return !!spec && typeof spec === "object" && legacy.some((k) => k in spec);
}

/** Returns how many objects were rewritten; 0 and no writes when the ConfigMap says it is done. */
export async function upgradeTypesIfRequired(o: TypeUpgradeOptions): Promise<number> {
  const { client, log } = o;
  let cm: KubeObject & { data?: Record<string, string> } | undefined;
  try {
    cm = await client.get(Resources.configMaps, o.configMapName, o.namespace);
    if (cm.data?.[o.statusKey]) return 0;
  } catch (e) {
    if (!(e instanceof KubeApiError && e.isNotFound)) throw e;
  }
  let rewritten = 0;
  for (const [rt, legacy] of LEGACY) {
    const list = await client.listAll<Raw>(rt);
    for (const raw of list.items) {
      if (!usesLegacyCasing(raw, legacy)) continue;
      let wire: Record<string, unknown>;
      try {
        wire = toWire(normalize({ ...raw, apiVersion: "aadpodidentity.k8s.io/v1", kind: rt.kind }));
      } catch (e) {
        if (!(e instanceof InvalidObjectError)) throw e;
        log.warn(`type upgrade: ${e.message}; left as it is`);
        continue;
      }
      // Keep every metadata field (owner references, managed fields...) and the resourceVersion (a CAS).
      const body = { ...wire, metadata: raw.metadata } as unknown as KubeObject;
      o.fence();
      try {
        await client.update(rt, body);
        rewritten++;
      } catch (e) {
        if (e instanceof KubeApiError && (e.isConflict || e.isNotFound)) continue; // changed meanwhile
        throw e;
      }
    }
  }
  o.fence();
  const data = { ...(cm?.data ?? {}), [o.statusKey]: o.version };
  if (cm) await client.update(Resources.configMaps, { ...cm, data } as KubeObject);
  else {
    await client.create(Resources.configMaps, {
      metadata: { name: o.configMapName, namespace: o.namespace },
      data,
    } as KubeObject);
  }
  log.info(
    `type upgrade: ${rewritten} objects rewritten in camelCase; recorded in ConfigMap ` +
      `${o.namespace}/${o.configMapName} key ${o.statusKey}`,
  );
  return rewritten;
}

interface UpgradeRetry {
  attempts: number;
  /** Attempt n waits n x this before the next one. */
  delayMs: number;
}

/**
 * The upgrade, tried again on failure (right after an apiserver (re)start its storage may still be
 * initialising); a failure after the last attempt is logged and MIC goes on with objects as they are.
 * Returns at once when `signal` aborts (leadership lost or shutdown), also while waiting between attempts.
 */
export async function upgradeTypesWithRetry(
  upgrade: () => Promise<number>,
  log: Logger,
  signal: AbortSignal,
  retry: UpgradeRetry = { attempts: 5, delayMs: 1_000 },
): Promise<void> {
  for (let attempt = 1; attempt <= retry.attempts && !signal.aborted; attempt++) {
    try {
      await upgrade();
      return;
    } catch (e) {
      if (signal.aborted) return;
      if (attempt === retry.attempts) {
        log.error("type upgrade failed; continuing with objects as they are", { error: e });
        return;
      }
      if (!(await sleep(retry.delayMs * attempt, signal))) return;
    }
  }
}
