// What the real-node tests do through kubectl, as a user would: apply objects, read one as JSON, poll until
// something holds, run a pod to its end and read the last JSON line it printed.
import assert from "node:assert/strict";
import type { RealCluster } from "../../scripts/sandbox/node/cluster.ts";

/** Objects through `kubectl apply -f -`, as one List. */
export async function kubectlApply(c: RealCluster, items: object[]): Promise<void> {
  const out = await c.kubectl(
    ["apply", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items }),
  );
  assert.equal(out.code, 0, out.stderr);
}

/** `kubectl <args> -o json`, parsed (args include the verb: ["get", "pod", name]). */
export async function kubectlJson<T>(c: RealCluster, args: string[]): Promise<T> {
  const out = await c.kubectl([...args, "-o", "json"]);
  if (out.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${out.stderr}`);
  return JSON.parse(out.stdout) as T;
}

/** Polls `probe` until it gives a value; a thrown error counts as not yet (the last one is reported). */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const v = await probe().catch((e) => void (last = e));
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last})` : ""}`);
}

/** Creates `pod` and waits (up to `timeoutMs`) until it has ended; its phase and logs. */
export async function runPodToEnd(
  c: RealCluster,
  pod: { metadata: { name: string; [field: string]: unknown }; [field: string]: unknown },
  timeoutMs: number,
): Promise<{ phase: string; logs: string }> {
  const name = pod.metadata.name;
  const created = await c.kubectl(["create", "-f", "-"], JSON.stringify(pod));
  assert.equal(created.code, 0, created.stderr);
  const phase = await until(`pod ${name} to end`, async () => {
    const p = await kubectlJson<{ status: { phase?: string } }>(c, ["get", "pod", name]);
    return p.status.phase === "Succeeded" || p.status.phase === "Failed" ? p.status.phase : undefined;
  }, timeoutMs);
  const logs = await c.kubectl(["logs", name]);
  assert.equal(logs.code, 0, logs.stderr);
  return { phase, logs: logs.stdout };
}

/** The last line of `logs` that is a JSON object (an SDK may log lines of its own before the program's). */
export function lastJsonLine(logs: string): Record<string, unknown> | undefined {
  const line = logs.trim().split("\n").filter((l) => l.startsWith("{")).pop();
  return line === undefined ? undefined : JSON.parse(line);
}
