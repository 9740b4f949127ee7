// MIC's command line: the original's flags (upstream 1.1) under their original spellings where they still
// mean something, plus the new knobs of the event-driven controller. Flags that no longer mean anything
// are still accepted (so existing manifests keep working) and ignored with one log line.

import { flag, KLOG_FLAGS } from "../lib/flags.ts";

export const MIC_FLAGS = {
  kubeconfig: flag({ kind: "string", default: "", help: "Path to a kubeconfig; empty = in-cluster config" }),
  cloudconfig: flag({
    kind: "string",
    default: "",
    help: "Path to azure.json (normally /etc/kubernetes/azure.json); empty = Azure settings from env vars",
  }),
  forceNamespaced: flag({
    kind: "bool",
    default: false,
    env: "FORCENAMESPACED",
    envMode: "or",
    help: "Match identity, binding and pod only within one namespace; AzureAssignedIdentities go there too",
  }),
  "federated-by-default": flag({
    kind: "bool",
    default: false,
    env: "FEDERATED_BY_DEFAULT",
    help:
      "User-assigned AzureIdentities without the aadpodidentity.k8s.io/federated annotation are federated: " +
      "never attached to VMs (set the same on NMI)",
  }),
  version: flag({ kind: "bool", default: false, help: "Print the version and exit" }),
  "leader-election-instance": flag({
    kind: "string",
    default: "",
    help: "This replica's leader-election identity (default: the hostname)",
  }),
  "leader-election-namespace": flag({ kind: "string", default: "default", help: "Namespace of the Lease" }),
  "leader-election-name": flag({
    kind: "string",
    default: "aad-pod-identity-mic",
    help: "Name of the Lease",
  }),
  "leader-election-duration": flag({
    kind: "duration",
    default: 15_000,
    help: "Lease duration; renew deadline is 2/3 of it, retry period 1/5",
  }),
  "http-probe-port": flag({ kind: "int", default: 8080, help: "Port of /healthz, /readyz (and /metrics)" }),
  "prometheus-port": flag({ kind: "int", default: 8888, help: "Port of /metrics (and the probes)" }),
  "probe-address": flag({
    kind: "string",
    default: "0.0.0.0",
    help: "Address the probe and metrics ports bind",
  }),
  createDeleteBatch: flag({
    kind: "int",
    default: 20,
    help: "Concurrent AzureAssignedIdentity writes",
  }),
  "immutable-user-msis": flag({
    kind: "list",
    default: [],
    help: "Comma-separated client ids never removed from a VM or scale set",
  }),
  "config-map-name": flag({
    kind: "string",
    default: "aad-pod-identity-config",
    help: "ConfigMap (in MIC_POD_NAMESPACE) recording the one-time type upgrade",
  }),
  "type-upgrade-status-key": flag({
    kind: "string",
    default: "type-upgrade-status",
    help: "Key in that ConfigMap",
  }),
  "enable-type-upgrade": flag({
    kind: "bool",
    default: true,
    help: "Rewrite PascalCase AzureIdentity/Binding/Exception objects in camelCase once per cluster",
  }),
  "identity-assignment-reconcile-interval": flag({
    kind: "duration",
    default: 180_000,
    help:
      "Drift repair: how often to re-check ARM (one GET per VM / scale set holding assigned identities) " +
      "and put back identities removed outside MIC, add-only as the original (0 = off)",
  }),
  "log-format": flag({ kind: "string", default: "text", choices: ["text", "json"], help: "Log line format" }),
  "custom-user-agent": flag({ kind: "string", default: "", help: "Appended to the ARM User-Agent" }),
  "cycle-debounce": flag({
    kind: "duration",
    default: 100,
    help: "Quiet time after a change before a cycle starts (a burst of events is one cycle)",
  }),
  "arm-retry-base": flag({
    kind: "duration",
    default: 5_000,
    help:
      "First backoff after a failed ARM call on a VM / scale set (doubles to 5m; a bad identity: x6, to 30m)",
  }),
  "watch-timeout": flag({
    kind: "duration",
    default: 0,
    help: "Server-side timeout of each watch (0 = random 5-10 min, as client-go); tests shorten it",
  }),
  "arm-concurrency": flag({ kind: "int", default: 10, help: "VMs / scale sets updated at the same time" }),
  "arm-poll-interval": flag({
    kind: "duration",
    default: 100,
    help:
      "Shortest wait between polls of an ARM long-running operation (first poll while nothing is known of its kind)",
  }),
  // Accepted and ignored: they tuned mechanisms this MIC does not have.
  syncRetryDuration: flag({
    kind: "duration",
    default: 3_600_000,
    ignored: true,
    help: "Ignored: no periodic full sync",
  }),
  enableScaleFeatures: flag({
    kind: "bool",
    default: false,
    ignored: true,
    help: "Ignored: deprecated no-op upstream too",
  }),
  enableProfile: flag({ kind: "bool", default: false, ignored: true, help: "Ignored: pprof is not served" }),
  clientQps: flag({
    kind: "float",
    default: 5,
    ignored: true,
    help: "Ignored: writes are bounded by --createDeleteBatch",
  }),
  "update-user-msi-max-retry": flag({
    kind: "int",
    default: 2,
    ignored: true,
    help: "Ignored: failed identities back off alone, with exponential backoff",
  }),
  "update-user-msi-retry-interval": flag({
    kind: "duration",
    default: 1_000,
    ignored: true,
    help: "Ignored (see above)",
  }),
  // klog's flags, which the original registered and its manifests pass (--logtostderr, -v).
  ...KLOG_FLAGS,
};

/** Flags accepted only so old manifests parse (the original's and klog's); main reports those given. */
export const IGNORED_FLAGS = (Object.keys(MIC_FLAGS) as (keyof typeof MIC_FLAGS)[])
  .filter((n) => (MIC_FLAGS[n] as { ignored?: boolean }).ignored);
