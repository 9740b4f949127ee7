// The kubelet mode of the sandbox (`up --kubelet`): a real cluster (node/cluster.ts: kubelet and
// containerd per node, aad-pod-identity installed with `deno task deploy`) held by a detached supervisor
// (kubelet_supervisor.ts), and the verbs that differ from the process mode: pods are real containers of the
// user's image placed by the scheduler, `exec` and `logs` go through the container runtime (kubectl).

import { runKubectl } from "./control_plane.ts";
import { alive, spawnDetached, tailOf } from "./detached.ts";
import type { KubeletReady } from "./kubelet_supervisor.ts";
import { type PodImage, type SandboxPod, type SandboxRecord, writeRecord } from "./sandbox_state.ts";
import { SDK_NODE_IMAGE } from "../images/build.ts";
import { importImages } from "../images/oci.ts";

type Print = (line: string) => void;

const SUPERVISOR = new URL("./kubelet_supervisor.ts", import.meta.url).pathname;
/** A cold machine builds kubelet, containerd and the images first; another cluster may hold the lock. */
const UP_TIMEOUT_MS = 40 * 60_000;
/** The supervisor's teardown of a node cluster takes 7-11 s; it is never cut short by SIGKILL early. */
const SUPERVISOR_GRACE_MS = 180_000;
/** The default image's program stays up, so that `exec` can run in it (token_claims.mjs is its command). */
const KEEP_ALIVE = ["/usr/local/bin/node", "-e", "setInterval(() => {}, 3600000)"];

/** Starts the supervisor, relays its progress, and fills the record with the cluster it reports. */
export async function startKubeletCluster(r: SandboxRecord, nodes: number, print: Print): Promise<void> {
  const readyPath = `${r.dir}/kubelet-ready.json`;
  const log = `${r.logDir}/supervisor.log`;
  const pid = spawnDetached(
    [Deno.execPath(), "run", "-A", SUPERVISOR, `${r.dir}/cluster`, r.logDir!, String(nodes), readyPath],
    log,
  );
  r.pids.push({ what: "kubelet cluster supervisor", pid, graceMs: SUPERVISOR_GRACE_MS });
  r.kubelet = { nodes, readyPath };
  // Recorded before the wait: `down` while the cluster starts (or waits for another) must find it.
  await writeRecord(r);
  const ready = await awaitReady(pid, readyPath, log, print);
  r.cluster = ready.cluster;
  r.azure = ready.azure;
  r.kubelet = {
    ...r.kubelet,
    ready: true,
    ctr: ready.ctr,
    containerdSockets: ready.nodes.map((n) => n.containerdSocket),
    nodeNames: ready.nodes.map((n) => n.name),
  };
}

async function awaitReady(
  pid: number,
  readyPath: string,
  log: string,
  print: Print,
): Promise<Extract<KubeletReady, { ok: true }>> {
  const deadline = Date.now() + UP_TIMEOUT_MS;
  let shown = 0;
  let hinted = false;
  while (Date.now() < deadline) {
    const lines = (await Deno.readTextFile(log).catch(() => "")).split("\n");
    for (const l of lines.slice(shown, -1)) print(`  ${l}`);
    shown = Math.max(shown, lines.length - 1);
    if (!hinted && shown === 0 && Date.now() > deadline - UP_TIMEOUT_MS + 10_000) {
      hinted = true;
      print(
        "  starting: another real cluster on this machine may hold the lock (or node components are building)",
      );
    }
    const ready = await Deno.readTextFile(readyPath).then(
      (t) => JSON.parse(t) as KubeletReady,
      () => undefined,
    );
    if (ready?.ok) return ready;
    if (ready && !ready.ok) throw new Error(`the cluster did not start: ${ready.error}`);
    if (!alive(pid)) throw new Error(`the cluster's supervisor exited; its log:\n${await tailOf(log)}`);
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`the cluster was not up after ${UP_TIMEOUT_MS / 60_000} min; log ${log}`);
}

async function kubectl(r: SandboxRecord, args: string[], stdin?: string): Promise<string> {
  const out = await runKubectl(r.cluster!.kubectl, r.cluster!.kubeconfigPath, args, stdin);
  if (out.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${out.stderr.trim()}`);
  return out.stdout;
}

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { ok: out.success, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The name an archive carries: a docker archive's RepoTags, or an OCI layout's image-name annotation. */
export async function archiveImageName(archive: string): Promise<string | undefined> {
  const docker = await run("tar", ["-xOf", archive, "manifest.json"]);
  if (docker.ok) {
    const tags = (JSON.parse(docker.stdout) as { RepoTags?: string[] }[])[0]?.RepoTags;
    if (tags?.length) return tags[0];
  }
  const oci = await run("tar", ["-xOf", archive, "index.json"]);
  if (oci.ok) {
    const annotations = (JSON.parse(oci.stdout) as { manifests?: { annotations?: Record<string, string> }[] })
      .manifests?.[0]?.annotations ?? {};
    return annotations["io.containerd.image.name"] ?? annotations["org.opencontainers.image.ref.name"];
  }
  return undefined;
}

/** Imports the archive into every node's containerd; returns the image reference to run. */
async function importArchive(r: SandboxRecord, img: PodImage, print: Print): Promise<string> {
  const archive = img.imageArchive!;
  const stat = await Deno.stat(archive).catch(() => undefined);
  if (!stat?.isFile) throw new Error(`--image-archive ${archive}: no such file`);
  const ref = img.image ?? await archiveImageName(archive);
  if (!ref) throw new Error(`${archive} names no image: say which with --image REF`);
  const k = r.kubelet!;
  await Promise.all(k.containerdSockets!.map((socket) => importImages(k.ctr!, socket, [archive])));
  print(`imported ${archive} (${ref}) into ${k.nodeNames!.join(", ")}`);
  return ref;
}

function podObject(
  p: { name: string; namespace: string },
  binding: string | undefined,
  image: string,
  keepAlive: boolean,
): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: p.name, namespace: p.namespace, labels: binding ? { aadpodidbinding: binding } : {} },
    spec: {
      restartPolicy: "Never",
      containers: [{
        name: "app",
        image,
        // No registry is reachable here: an image is there because it was built or imported.
        imagePullPolicy: "IfNotPresent",
        ...(keepAlive ? { command: KEEP_ALIVE } : {}),
      }],
    },
  };
}

interface PodStatus {
  spec: { nodeName?: string };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { state?: { waiting?: { reason?: string; message?: string } } }[];
  };
}

/** Why a pod will not start by itself: an image that is not there, or a spec the runtime refuses. */
const STUCK = /^(ErrImagePull|ImagePullBackOff|ErrImageNeverPull|InvalidImageName|CreateContainer\w*Error)$/;

/** "ready", "ended" (an app that ran to its end: `logs` shows what it printed), or why it is stuck. */
export function podProgress(s: PodStatus): "ready" | "ended" | { stuck: string } | undefined {
  if (s.status.phase === "Succeeded" || s.status.phase === "Failed") return "ended";
  if (s.status.conditions?.some((c) => c.type === "Ready" && c.status === "True")) return "ready";
  const w = s.status.containerStatuses?.[0]?.state?.waiting;
  if (w?.reason && STUCK.test(w.reason)) return { stuck: `${w.reason}: ${w.message ?? ""}` };
  return undefined;
}

async function awaitPod(r: SandboxRecord, p: { name: string; namespace: string }): Promise<PodStatus> {
  const deadline = Date.now() + 120_000;
  let s: PodStatus | undefined;
  while (Date.now() < deadline) {
    s = JSON.parse(await kubectl(r, ["get", "pod", p.name, "-n", p.namespace, "-o", "json"])) as PodStatus;
    const progress = podProgress(s);
    if (progress === "ready" || progress === "ended") return s;
    if (progress) throw new Error(`pod ${p.namespace}/${p.name} cannot start: ${progress.stuck}`);
    await new Promise((res) => setTimeout(res, 300));
  }
  throw new Error(`pod ${p.namespace}/${p.name} not Ready after 120 s (${s?.status.phase})`);
}

/**
 * A real pod of `image` (default: the SDK image, kept running), labelled with the binding; waits until it
 * is Ready, or has run to its end (restartPolicy Never: an app that gets a token and exits stays readable).
 */
export async function kubeletPod(
  r: SandboxRecord,
  p: { name: string; namespace: string },
  binding: string | undefined,
  img: PodImage,
  print: Print,
): Promise<SandboxPod> {
  const image = img.imageArchive ? await importArchive(r, img, print) : img.image ?? SDK_NODE_IMAGE;
  await kubectl(
    r,
    ["apply", "-f", "-"],
    JSON.stringify(podObject(p, binding, image, image === SDK_NODE_IMAGE)),
  );
  const s = await awaitPod(r, p);
  print(
    `pod ${p.namespace}/${p.name} on ${s.spec.nodeName}, IP ${s.status.podIP}, image ${image}` +
      (binding ? `, aadpodidbinding=${binding}` : "") +
      (podProgress(s) === "ended" ? `; it ran to its end (${s.status.phase})` : ""),
  );
  print(
    podProgress(s) === "ended"
      ? `  deno task sandbox logs ${p.name}`
      : image === SDK_NODE_IMAGE
      ? `  deno task sandbox exec ${p.name} -- node /app/token_claims.mjs   # @azure/identity, prints the token's claims`
      : `  deno task sandbox exec ${p.name} -- <command in the image>`,
  );
  return { ...p, ip: s.status.podIP ?? "" };
}

/** `kubectl exec` (or `logs`) against the sandbox cluster, with the caller's terminal or piped. */
export async function kubeletKubectl(
  r: SandboxRecord,
  args: string[],
  io: "inherit" | "piped",
): Promise<Deno.CommandOutput | Deno.CommandStatus> {
  const cmd = new Deno.Command(r.cluster!.kubectl, {
    args: [`--kubeconfig=${r.cluster!.kubeconfigPath}`, ...args],
    stdin: io === "inherit" ? "inherit" : "null",
    stdout: io,
    stderr: io,
  });
  return io === "inherit" ? await cmd.spawn().status : await cmd.output();
}

/** What `up --kubelet` prints once the cluster is up. */
export function kubeletReadyLines(r: SandboxRecord): string[] {
  return [
    `real cluster up: ${r.kubelet!.nodeNames!.join(", ")} (kubelet + containerd), MIC and NMI deployed ` +
    `by \`deno task deploy\``,
    `  export KUBECONFIG=${r.cluster!.kubeconfigPath}`,
    `  ${r.cluster!.kubectl} get pods -A`,
  ];
}
