// NMI on a lab node (scripts/sandbox/netns.ts: the node and its pods as network namespaces): the flags that
// put it in front of the node's mirrored IMDS with its real iptables rules, its readiness as seen from the
// node namespace, and a pod's curl to 169.254.169.254. Shared by the e2e and the security suites.

import type { Lab, LabPod } from "../../scripts/sandbox/netns.ts";
import { type Harness, type NmiProcess, tokenPath, waitUntil } from "../integration/nmi/harness.ts";

/** A random port in 20000..39999 (NMI's probe server, a relay). */
export function randomPort(): number {
  return 20000 + Math.floor(Math.random() * 20000);
}

/**
 * NMI's flags on a lab node: the node's IMDS at 169.254.169.254:80 (the lab mirrors the emulator's there),
 * NMI on 2579, its iptables rules managed and checked every second.
 */
export function labNmiFlags(probePort: number): string[] {
  return [
    "--metadata-ip=169.254.169.254",
    "--metadata-port=80",
    "--nmi-port=2579",
    `--http-probe-port=${probePort}`,
    "--manage-iptables=true",
    "--ipt-update-interval-sec=1",
  ];
}

/** The harness apiserver's port on 127.0.0.1 (what the lab mirrors into its namespaces). */
export async function apiserverPort(h: Harness): Promise<number> {
  const server = h.cluster.server ||
    /server:\s*(\S+)/.exec(await Deno.readTextFile(h.cluster.kubeconfigPath))![1];
  return Number(new URL(server).port);
}

/** Waits until NMI's /readyz answers 200 inside the node namespace; a timeout's error carries `nmi`'s logs. */
export async function waitNmiReady(lab: Lab, probePort: number, nmi?: NmiProcess): Promise<void> {
  const curl = [
    "curl",
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    `http://127.0.0.1:${probePort}/readyz`,
  ];
  await waitUntil(
    "NMI ready in the node namespace",
    async () => await lab.exec(lab.nodeNs, curl, { allowFail: true }) === "200",
    30_000,
    100,
  ).catch((e) => {
    if (!nmi) throw e;
    throw new Error(`${(e as Error).message}; NMI logs:\n${nmi.logs.join("\n")}`);
  });
}

interface CurlTokenOptions {
  /** Request headers as curl's -H takes them ("Metadata: true"). */
  headers?: string[];
  /** Defaults to Key Vault. */
  resource?: string;
  clientId?: string;
  timeoutSeconds?: number;
}

/**
 * A token request from a pod through 169.254.169.254, by curl: status and body (no status when nothing
 * answered), curl's exit code, and the seconds it took.
 */
export async function curlToken(
  pod: LabPod,
  opts: CurlTokenOptions = {},
): Promise<{ status?: number; body: string; exit: number; seconds: number }> {
  const t0 = performance.now();
  const query: Record<string, string> = opts.clientId ? { client_id: opts.clientId } : {};
  const url = `http://169.254.169.254${tokenPath(opts.resource ?? "https://vault.azure.net", query)}`;
  const curl = ["curl", "-s", "-m", String(opts.timeoutSeconds ?? 10), "-w", "\n%{http_code}"];
  const headers = (opts.headers ?? []).flatMap((header) => ["-H", header]);
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", pod.ns, ...curl, ...headers, url],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const i = text.lastIndexOf("\n");
  return {
    status: out.success ? Number(text.slice(i + 1)) : undefined,
    body: text.slice(0, i),
    exit: out.code,
    seconds: (performance.now() - t0) / 1000,
  };
}
