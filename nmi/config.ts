// NMI's command-line flags: the original's names (docs/upstream.md, NMI flags; the original's list is
// https://github.com/Azure/aad-pod-identity/blob/v1.8.17/cmd/nmi/main.go) where they still mean something, so
// an existing DaemonSet's args keep working; flags whose job is gone are still accepted (and reported as
// ignored) rather than failing the pod. The README has the table of kept, renamed and dropped flags.

import { flag, type FlagValues, KLOG_FLAGS } from "../lib/flags.ts";

const OPERATION_MODES = ["standard", "managed"] as const;

export const NMI_FLAGS = {
  "nmi-listen-address": flag({
    kind: "string",
    default: "127.0.0.1",
    help: "address the token server binds",
  }),
  "nmi-port": flag({ kind: "int", default: 2579, help: "port of the token server (iptables DNAT target)" }),
  "metadata-ip": flag({ kind: "string", default: "169.254.169.254", help: "address of the node's IMDS" }),
  "metadata-port": flag({ kind: "int", default: 80, help: "port of the node's IMDS" }),
  node: flag({
    kind: "string",
    default: "",
    env: "NODE_NAME",
    help: "this node's name: NMI watches only its pods and AzureAssignedIdentities (required)",
  }),
  kubeconfig: flag({
    kind: "string",
    default: "",
    help: "kubeconfig path; else KUBECONFIG, else the in-cluster service account",
  }),
  forceNamespaced: flag({
    kind: "bool",
    default: false,
    env: "FORCENAMESPACED",
    envMode: "or",
    aliases: ["force-namespaced"],
    help: "a pod only gets identities from its own namespace (required by managed mode)",
  }),
  MICNamespace: flag({
    kind: "string",
    default: "default",
    aliases: ["mic-namespace"],
    help: "namespace MIC runs in; MIC's own pods (service account --mic-service-account) get the node's " +
      "identity",
  }),
  "operation-mode": flag({
    kind: "string",
    default: "standard",
    choices: OPERATION_MODES,
    foldCase: true,
    help:
      "standard: serve identities MIC assigned; managed: serve bindings directly, identities pre-attached",
  }),
  "http-probe-port": flag({
    kind: "int",
    default: 8085,
    help: "port of /healthz, /readyz and /metrics (0: a free port, -1: none)",
  }),
  "prometheus-port": flag({
    kind: "int",
    default: 9090,
    help: "another port serving /metrics (and the probes); -1 or the probe port: none extra",
  }),
  "probe-listen-address": flag({
    kind: "string",
    default: "0.0.0.0",
    help: "address of the probe and metrics ports",
  }),
  "block-instance-metadata": flag({
    kind: "bool",
    default: false,
    help: "answer 403 to /metadata/instance instead of proxying it",
  }),
  "metadata-header-required": flag({
    kind: "bool",
    default: true,
    help: "refuse requests without 'Metadata: true' (400), as IMDS; keep on: it stops SSRF",
  }),
  "set-retry-after-header": flag({
    kind: "bool",
    default: false,
    help: "when an identity is still being assigned at the deadline, answer 503 + Retry-After instead of 404",
  }),
  "retry-after-seconds": flag({
    kind: "int",
    default: 20,
    help: "Retry-After value with --set-retry-after-header (the original's fixed 20)",
  }),
  "identity-wait-deadline": flag({
    kind: "duration",
    default: 12_000,
    help: "how long a request waits for its identity to be assigned (and for IMDS to know it) before a " +
      "retryable 404/503; well under the shortest SDK budget (about 25 s)",
  }),
  "token-min-lifetime": flag({
    kind: "duration",
    default: 300_000,
    help: "never serve a cached token with less remaining lifetime than this",
  }),
  "token-refresh-ahead": flag({
    kind: "duration",
    default: 900_000,
    help: "refresh a cached token in the background once its remaining lifetime drops below this",
  }),
  "imds-max-concurrent": flag({
    kind: "int",
    default: 5,
    help: "upstream IMDS token calls in flight at once (IMDS allows 5 per VM)",
  }),
  "imds-max-rps": flag({
    kind: "int",
    default: 15,
    help: "upstream IMDS token calls per rolling second (IMDS allows 20 per VM, shared with the node)",
  }),
  "upstream-timeout": flag({
    kind: "duration",
    default: 10_000,
    help: "timeout of one call to IMDS or Azure AD, and of proxied IMDS requests",
  }),
  "log-format": flag({
    kind: "string",
    default: "text",
    choices: ["text", "json"],
    env: "LOG_FORMAT",
    help: "log line format",
  }),
  "log-level": flag({
    kind: "string",
    default: "info",
    choices: ["debug", "info", "warn", "error"],
    env: "LOG_LEVEL",
    help: "lowest level logged (debug adds one line per served token; tokens and secrets are never logged)",
  }),
  version: flag({ kind: "bool", default: false, help: "print the version and exit" }),
  // Accepted for existing manifests; their job is gone (see README "NMI flags").
  "retry-attempts-for-created": flag({
    kind: "int",
    ignored: true,
    default: 16,
    help: "ignored: replaced by --identity-wait-deadline (NMI is woken by the watch, it does not poll)",
  }),
  "retry-attempts-for-assigned": flag({
    kind: "int",
    ignored: true,
    default: 4,
    help: "ignored: replaced by --identity-wait-deadline",
  }),
  "find-identity-retry-interval": flag({
    kind: "int",
    ignored: true,
    default: 5,
    help: "ignored: replaced by --identity-wait-deadline",
  }),
  enableScaleFeatures: flag({
    kind: "bool",
    ignored: true,
    default: true,
    help: "ignored: NMI always watches only this node's AzureAssignedIdentities (label nodename)",
  }),
  enableProfile: flag({
    kind: "bool",
    default: false,
    ignored: true,
    help: "ignored: no pprof endpoint is served",
  }),
  "manage-iptables": flag({
    kind: "bool",
    default: true,
    help: "install and keep the nat redirection of metadata traffic to NMI (false: something else owns it)",
  }),
  "ipt-update-interval-sec": flag({
    kind: "int",
    default: 60,
    help:
      "seconds between checks of the iptables rules; any drift (edited, extra, reordered rules) is repaired",
  }),
  "enable-conntrack-deletion": flag({
    kind: "bool",
    default: true,
    help:
      "after the first iptables sync, delete tracked connections to the metadata endpoint so connections " +
      "opened before the rules cannot bypass them (the original defaulted to false)",
  }),
  "cleanup-iptables-on-exit": flag({
    kind: "bool",
    default: false,
    help: "remove the redirection when NMI stops, as the original did; by default it stays, so pods get " +
      "'connection refused' while NMI restarts instead of reaching IMDS (fail closed)",
  }),
  "remove-node-taint": flag({
    kind: "string",
    default: "",
    help: "taint key removed from this node once the rules are in place and the caches synced (register " +
      "nodes with it, kubelet --register-with-taints, to keep workloads off a node until NMI is ready)",
  }),
  "allow-network-plugin-kubenet": flag({
    kind: "bool",
    default: false,
    help:
      "run on kubenet nodes despite the ARP-spoofing risk (CVE-2021-1677): NMI otherwise refuses to start",
  }),
  "kubelet-config": flag({
    kind: "string",
    default: "/etc/default/kubelet",
    help: "kubelet settings file checked for --network-plugin=kubenet",
  }),
  "ad-endpoint": flag({
    kind: "string",
    default: "https://login.microsoftonline.com/",
    help: "Azure AD authority host for service-principal identities whose spec.adEndpoint is empty",
  }),
  "federated-by-default": flag({
    kind: "bool",
    default: false,
    env: "FEDERATED_BY_DEFAULT",
    help:
      "user-assigned AzureIdentities without the aadpodidentity.k8s.io/federated annotation are federated " +
      "(tokens by exchanging the pod's service-account token at Azure AD); set the same on MIC",
  }),
  "tenant-id": flag({
    kind: "string",
    default: "",
    env: "AZURE_TENANT_ID",
    help: "tenant of federated identities whose spec.tenantID is empty",
  }),
  "custom-user-agent": flag({
    kind: "string",
    default: "",
    help: "appended to NMI's User-Agent towards the apiserver",
  }),
  "mic-service-account": flag({
    kind: "string",
    default: "aad-pod-id-mic-service-account",
    help: "service account MIC's pods run as (in --MICNamespace; the manifests' name): those pods, and no " +
      "others, get the node's identity as MIC",
  }),
  "max-connections-per-ip": flag({
    kind: "int",
    default: 1024,
    help: "open connections one source address may hold on the token server; more are closed at once",
  }),
  "max-connections": flag({
    kind: "int",
    default: 8192,
    help: "open connections on the token server in all (keep under the process's file-descriptor limit)",
  }),
  "header-timeout": flag({
    kind: "duration",
    default: 10_000,
    help: "a request head (and a request body) must arrive within this, or the connection is closed",
  }),
  "idle-timeout": flag({
    kind: "duration",
    default: 30_000,
    help: "a kept-alive connection with no new request for this long is closed",
  }),
  "imds-max-queued-per-pod": flag({
    kind: "int",
    default: 64,
    help: "IMDS calls one pod may have waiting for the limiter; more are answered 503 at once",
  }),
  "pod-watch-freshness": flag({
    kind: "duration",
    default: 30_000,
    help: "when the pod watch has shown no event or bookmark for this long, a caller found in the cache " +
      "is confirmed with a direct GET (uid and IP) before it is served; 503 when that fails",
  }),
  "identity-missing-after": flag({
    kind: "duration",
    default: 60_000,
    help: 'an identity Assigned for longer than this that IMDS still answers "Identity not found" for ' +
      "(until --identity-wait-deadline) is reported to MIC with an IdentityNotFoundOnNode event, and MIC " +
      "puts it back on the VM / scale set at once",
  }),
  // klog's flags, which the original registered and its chart passes (-v from logVerbosity).
  ...KLOG_FLAGS,
};

export type NmiFlags = FlagValues<typeof NMI_FLAGS>;

/** Cross-flag checks the parser cannot make; returns the problems (empty when fine). */
export function validateFlags(f: NmiFlags): string[] {
  const problems: string[] = [];
  if (!f.node) problems.push("--node (or NODE_NAME) is required");
  if (f["operation-mode"] === "managed" && !f.forceNamespaced) {
    problems.push("--operation-mode=managed needs --forceNamespaced (as the original)");
  }
  for (const p of ["nmi-port", "metadata-port"] as const) {
    if (f[p] < 0 || f[p] > 65535) problems.push(`--${p} must be a port number`);
  }
  if (f["imds-max-concurrent"] < 1) problems.push("--imds-max-concurrent must be at least 1");
  if (f["imds-max-rps"] < 1) problems.push("--imds-max-rps must be at least 1");
  for (const p of ["max-connections-per-ip", "max-connections", "imds-max-queued-per-pod"] as const) {
    if (f[p] < 1) problems.push(`--${p} must be at least 1`);
  }
  if (f["ipt-update-interval-sec"] < 1) problems.push("--ipt-update-interval-sec must be at least 1");
  if (f["token-refresh-ahead"] < f["token-min-lifetime"]) {
    problems.push("--token-refresh-ahead must be at least --token-min-lifetime");
  }
  return problems;
}
