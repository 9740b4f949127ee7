// MIC's Deployment and NMI's DaemonSet as Helm templates: the objects micDeployment / nmiDaemonSet build for
// deploy/, with the parts the original chart's values set replaced by template code. Defaults come from
// the built objects, so the chart rendered with its default values equals deploy/aad-pod-identity.yaml.

import type { Container, DaemonSet, Deployment, EnvVar } from "./k8s.ts";
import { HelmTemplate, yamlAt } from "./helm_template.ts";
import { ADMIN_SECRET, defaultOptions, type ManifestOptions } from "./options.ts";
import { micDeployment, nmiDaemonSet } from "./workloads.ts";

/** A flag and the .Values path of its value; a mapped flag may give its whole value expression instead. */
type ArgSpec = [flag: string, valuesPath: string, valueExpr?: string];

/** The value deploy/ passes for a flag (`--flag=value`). */
function argValue(args: readonly string[], flag: string): string {
  const a = args.find((x) => x.startsWith(`${flag}=`));
  if (a === undefined) throw new Error(`deploy args lack ${flag}`);
  return a.slice(flag.length + 1);
}

const q = (s: string) => JSON.stringify(s);

/**
 * Args as template lines: deploy's args with `mapped` flags taken from .Values (deploy's value as the
 * default), then `optional` flags only when their value is set (as the original chart did).
 */
function argLines(
  col: number,
  deployArgs: readonly string[],
  mapped: ArgSpec[],
  optional: ArgSpec[],
): string {
  const pad = " ".repeat(col);
  const mappedFlags = new Set(mapped.map(([f]) => f));
  const lines: string[] = [];
  for (const arg of deployArgs) {
    const flag = arg.split("=")[0];
    const spec = mapped.find(([f]) => f === flag);
    if (!spec) {
      if (!mappedFlags.has(flag)) lines.push(`${pad}- ${q(arg)}`);
      continue;
    }
    const value = spec[2] ?? `${spec[1]} | default ${q(argValue(deployArgs, flag))}`;
    lines.push(`${pad}- {{ printf "%s=%v" ${q(flag)} (${value}) | quote }}`);
  }
  for (const [flag, path] of optional) {
    lines.push(
      `${pad}{{- with ${path} }}`,
      `${pad}- {{ printf "%s=%v" ${q(flag)} . | quote }}`,
      `${pad}{{- end }}`,
    );
  }
  return `\n${lines.join("\n")}`;
}

/** Pod-level keys every workload takes from its .Values section, as the original chart's templates. */
function podKeys(t: HelmTemplate, section: string): Record<string, null> {
  return {
    [t.optional("imagePullSecrets", ".Values.imagePullSecrets")]: null,
    [
      t.lines((col) =>
        `${" ".repeat(col)}{{- with ${section}.priorityClassName }}\n${" ".repeat(col)}priorityClassName: ` +
        `{{ . | quote }}\n${" ".repeat(col)}{{- end }}`
      )
    ]: null,
    [t.optional("topologySpreadConstraints", `${section}.topologySpreadConstraints`)]: null,
  };
}

function labelsWith(t: HelmTemplate, base: Record<string, string>, path: string): string {
  return t.block((col) =>
    `\n${yamlAt(base, col)}\n${" ".repeat(col)}{{- with ${path} }}{{- toYaml . | nindent ${col} }}{{- end }}`
  );
}

/** env: deploy's entries, FORCENAMESPACED as the original passed it, and `extra` template lines. */
function envBlock(t: HelmTemplate, env: EnvVar[], extra: (col: number) => string[]): string {
  return t.block((col) => {
    const pad = " ".repeat(col);
    return [
      "",
      yamlAt(env, col),
      `${pad}{{- if eq (toString .Values.forceNamespaced) "true" }}`,
      `${pad}- name: FORCENAMESPACED`,
      `${pad}  value: "true"`,
      `${pad}{{- end }}`,
      ...extra(col),
    ].join("\n");
  });
}

function withPorts(t: HelmTemplate, c: Container, probePath: string, metricsPath: string): void {
  const probe = t.expr(`${probePath} | default ${c.livenessProbe!.httpGet.port}`);
  const metrics = t.expr(`${metricsPath} | default ${c.ports![1].containerPort}`);
  c.ports = [
    { ...c.ports![0], containerPort: probe as unknown as number },
    { ...c.ports![1], containerPort: metrics as unknown as number },
  ];
  c.livenessProbe!.httpGet.port = probe as unknown as number;
  c.readinessProbe!.httpGet.port = probe as unknown as number;
}

const MIC_MAPPED: ArgSpec[] = [
  ["--leader-election-namespace", ".Values.mic.leaderElection.namespace"],
  ["--leader-election-name", ".Values.mic.leaderElection.name"],
  ["--leader-election-instance", ".Values.mic.leaderElection.instance"],
  ["--http-probe-port", ".Values.mic.probePort"],
  ["--prometheus-port", ".Values.mic.prometheusPort"],
  ["--log-format", ".Values.mic.loggingFormat"],
];
const MIC_OPTIONAL: ArgSpec[] = [
  ["--leader-election-duration", ".Values.mic.leaderElection.duration"],
  ["-v", ".Values.mic.logVerbosity"],
  ["--syncRetryDuration", ".Values.mic.syncRetryDuration"],
  ["--createDeleteBatch", ".Values.mic.createDeleteBatch"],
  ["--clientQps", ".Values.mic.clientQps"],
  ["--immutable-user-msis", `(join "," .Values.mic.immutableUserMSIs)`],
  ["--update-user-msi-max-retry", ".Values.mic.updateUserMSIMaxRetry"],
  ["--update-user-msi-retry-interval", ".Values.mic.updateUserMSIRetryInterval"],
  ["--identity-assignment-reconcile-interval", ".Values.mic.identityAssignmentReconcileInterval"],
  ["--custom-user-agent", ".Values.customUserAgent"],
];

/** MIC: the hostPath (azure.json) variant, or the Secret variant when `adminsecret` is set. */
export function micTemplate(t: HelmTemplate, o: ManifestOptions): Deployment {
  const dep = micDeployment(o);
  const fromSecret = micDeployment({ ...o, azureConfig: { source: "secret", secretName: ADMIN_SECRET } });
  const c = dep.spec.template.spec.containers[0];
  const s = fromSecret.spec.template.spec.containers[0];
  const deployArgs = c.args;
  const cloudconfig = argValue(deployArgs, "--cloudconfig");
  withPorts(t, c, ".Values.mic.probePort", ".Values.mic.prometheusPort");
  c.image = t.expr(`printf "%s/%s:%s" .Values.image.repository .Values.mic.image .Values.mic.tag`);
  c.imagePullPolicy = t.expr(".Values.image.imagePullPolicy") as Container["imagePullPolicy"];
  c.resources = t.toYaml(".Values.mic.resources") as unknown as Container["resources"];
  c.args = t.block((col) => {
    const pad = " ".repeat(col);
    const rest = argLines(
      col,
      deployArgs.filter((a) => !a.startsWith("--cloudconfig=")),
      MIC_MAPPED,
      MIC_OPTIONAL,
    );
    return `\n${pad}{{- if not .Values.adminsecret }}\n${pad}- {{ printf "--cloudconfig=%s" ` +
      `(.Values.mic.cloudConfig | default ${q(cloudconfig)}) | quote }}\n${pad}{{- end }}${rest}`;
  }) as unknown as string[];
  const secretEnv = s.env!.filter((e) => e.valueFrom && "secretKeyRef" in e.valueFrom);
  c.env = envBlock(t, c.env!, (col) => {
    const pad = " ".repeat(col);
    return [
      `${pad}{{- if .Values.adminsecret }}`,
      yamlAt(secretEnv, col),
      `${pad}{{- end }}`,
      `${pad}{{- if .Values.mic.customCloud.enabled }}`,
      `${pad}- name: AZURE_ENVIRONMENT_FILEPATH`,
      `${pad}  value: {{ .Values.mic.customCloud.configPath | quote }}`,
      `${pad}{{- end }}`,
    ];
  }) as unknown as EnvVar[];
  const hostSc = c.securityContext;
  c.securityContext = t.block((col) => {
    const pad = " ".repeat(col);
    return `\n${pad}{{- if .Values.adminsecret }}\n${yamlAt(s.securityContext, col)}\n${pad}{{- else }}\n` +
      `${yamlAt(hostSc, col)}\n${pad}{{- end }}`;
  }) as unknown as Container["securityContext"];
  const mount = c.volumeMounts![0];
  const volume = dep.spec.template.spec.volumes![0];
  delete c.volumeMounts;
  Object.assign(c, { [mountsOrVolumes(t, "volumeMounts", mount, "mountPath")]: null });
  const spec = dep.spec.template.spec;
  delete spec.volumes;
  spec.nodeSelector = t.toYaml(".Values.mic.nodeSelector") as unknown as Record<string, string>;
  spec.affinity = t.toYaml(".Values.mic.affinity") as unknown as Record<string, unknown>;
  Object.assign(spec, {
    ...podKeys(t, ".Values.mic"),
    [t.optional("tolerations", ".Values.mic.tolerations")]: null,
    [mountsOrVolumes(t, "volumes", volume, "hostPath")]: null,
  });
  dep.spec.replicas = t.expr(".Values.mic.replicas") as unknown as number;
  dep.spec.template.metadata.labels = labelsWith(
    t,
    dep.spec.template.metadata.labels,
    ".Values.mic.podLabels",
  ) as unknown as Record<string, string>;
  Object.assign(dep.spec.template.metadata, {
    [t.optional("annotations", ".Values.mic.podAnnotations")]: null,
  });
  return dep;
}

/** MIC's azure.json mount and volume (without adminsecret) and the custom cloud file (customCloud). */
function mountsOrVolumes(
  t: HelmTemplate,
  key: "volumeMounts" | "volumes",
  azureJson: object,
  kind: "mountPath" | "hostPath",
): string {
  return t.lines((col) => {
    const pad = " ".repeat(col);
    const custom = kind === "mountPath"
      ? [
        `${pad}- name: custom-env-file`,
        `${pad}  mountPath: {{ .Values.mic.customCloud.configPath }}`,
        `${pad}  readOnly: true`,
      ]
      : [
        `${pad}- name: custom-env-file`,
        `${pad}  hostPath:`,
        `${pad}    path: {{ .Values.mic.customCloud.configPath }}`,
      ];
    const json = yamlAt([azureJson], col);
    return [
      `${pad}{{- if or (not .Values.adminsecret) .Values.mic.customCloud.enabled }}`,
      `${pad}${key}:`,
      `${pad}{{- if not .Values.adminsecret }}`,
      json.replaceAll(DEFAULT_PATH, `{{ .Values.mic.cloudConfig | default ${q(DEFAULT_PATH)} }}`),
      `${pad}{{- end }}`,
      `${pad}{{- if .Values.mic.customCloud.enabled }}`,
      ...custom,
      `${pad}{{- end }}`,
      `${pad}{{- end }}`,
    ].join("\n");
  });
}

const DEFAULT_PATH = "/etc/kubernetes/azure.json";

const NMI_MAPPED: ArgSpec[] = [
  ["--http-probe-port", ".Values.nmi.probePort"],
  ["--prometheus-port", ".Values.nmi.prometheusPort"],
  ["--MICNamespace", ".Values.nmi.micNamespace", ".Values.nmi.micNamespace | default .Release.Namespace"],
  ["--kubelet-config", ".Values.nmi.kubeletConfig"],
  ["--log-format", ".Values.nmi.loggingFormat"],
];
const NMI_OPTIONAL: ArgSpec[] = [
  ["-v", ".Values.nmi.logVerbosity"],
  ["--ipt-update-interval-sec", ".Values.nmi.ipTableUpdateTimeIntervalInSeconds"],
  ["--retry-attempts-for-created", ".Values.nmi.retryAttemptsForCreated"],
  ["--retry-attempts-for-assigned", ".Values.nmi.retryAttemptsForAssigned"],
  ["--find-identity-retry-interval", ".Values.nmi.findIdentityRetryIntervalInSeconds"],
  ["--block-instance-metadata", ".Values.nmi.blockInstanceMetadata"],
  ["--allow-network-plugin-kubenet", ".Values.nmi.allowNetworkPluginKubenet"],
  ["--custom-user-agent", ".Values.customUserAgent"],
  ["--set-retry-after-header", ".Values.nmi.setRetryAfterHeader"],
  ["--enable-conntrack-deletion", ".Values.nmi.enableConntrackDeletion"],
];

/** NMI: standard or managed mode by `operationMode`, as deploy/ renders each. */
export function nmiTemplate(t: HelmTemplate, o: ManifestOptions): DaemonSet {
  const ds = nmiDaemonSet(o);
  const managedArgs = nmiDaemonSet({ ...o, mode: "managed" }).spec.template.spec.containers[0].args
    .filter((a) => !ds.spec.template.spec.containers[0].args.includes(a));
  const c = ds.spec.template.spec.containers[0];
  const deployArgs = c.args;
  withPorts(t, c, ".Values.nmi.probePort", ".Values.nmi.prometheusPort");
  c.image = t.expr(`printf "%s/%s:%s" .Values.image.repository .Values.nmi.image .Values.nmi.tag`);
  c.imagePullPolicy = t.expr(".Values.image.imagePullPolicy") as Container["imagePullPolicy"];
  c.resources = t.toYaml(".Values.nmi.resources") as unknown as Container["resources"];
  // A boolean: `default` would turn an explicit false into deploy's true.
  const header =
    `ternary ${argValue(deployArgs, "--metadata-header-required")} .Values.nmi.metadataHeaderRequired ` +
    `(kindIs "invalid" .Values.nmi.metadataHeaderRequired)`;
  const mapped: ArgSpec[] = [...NMI_MAPPED, ["--metadata-header-required", "", header]];
  c.args = t.block((col) => {
    const pad = " ".repeat(col);
    return `${
      argLines(col, deployArgs, mapped, NMI_OPTIONAL)
    }\n${pad}{{- if eq .Values.operationMode "managed" }}\n` +
      managedArgs.map((a) => `${pad}- ${q(a)}`).join("\n") + `\n${pad}{{- end }}`;
  }) as unknown as string[];
  c.env = envBlock(t, c.env!, () => []) as unknown as EnvVar[];
  const kubeletDir = t.expr(
    `dir (.Values.nmi.kubeletConfig | default ${q(argValue(deployArgs, "--kubelet-config"))})`,
  );
  for (const m of c.volumeMounts!) if (m.name === "kubelet-defaults") m.mountPath = kubeletDir;
  const spec = ds.spec.template.spec;
  for (const v of spec.volumes!) if (v.name === "kubelet-defaults") v.hostPath!.path = kubeletDir;
  spec.nodeSelector = t.toYaml(".Values.nmi.nodeSelector") as unknown as Record<string, string>;
  spec.tolerations = t.toYaml(".Values.nmi.tolerations") as unknown as typeof spec.tolerations;
  Object.assign(spec, {
    ...podKeys(t, ".Values.nmi"),
    [t.optional("affinity", ".Values.nmi.affinity")]: null,
  });
  ds.spec.updateStrategy = t.toYaml(".Values.nmi.updateStrategy") as unknown as typeof ds.spec.updateStrategy;
  ds.spec.template.metadata.labels = labelsWith(
    t,
    ds.spec.template.metadata.labels,
    ".Values.nmi.podLabels",
  ) as unknown as Record<string, string>;
  Object.assign(ds.spec.template.metadata, {
    [t.optional("annotations", ".Values.nmi.podAnnotations")]: null,
  });
  return ds;
}

export function chartOptions(t: HelmTemplate): ManifestOptions {
  return { ...defaultOptions("standard"), namespace: t.expr(".Release.Namespace") };
}
