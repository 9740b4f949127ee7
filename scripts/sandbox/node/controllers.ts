// kube-controller-manager and kube-scheduler for the real nodes, each with its own client certificate
// (system:kube-controller-manager, system:kube-scheduler: the apiserver's bootstrap RBAC grants them what
// they need). They run on this machine's loopback beside the apiserver; no leader election (one of each).

import { spawnDetached } from "../detached.ts";
import { type ClusterAccess, identityKubeconfig } from "./identity.ts";
import type { NodeBinaries } from "./binaries.ts";

interface ControllersOptions {
  cluster: ClusterAccess;
  /** The service-account signing key (the token controller and the root CA publisher need it). */
  serviceAccountKeyPath: string;
  dir: string;
  logDir: string;
  bins: NodeBinaries;
}

/** Starts both; returns their pids (stop them with stopPid). */
export async function startControllers(o: ControllersOptions): Promise<number[]> {
  await Deno.mkdir(o.dir, { recursive: true });
  await Deno.mkdir(o.logDir, { recursive: true });
  const cm = await identityKubeconfig(
    o.cluster,
    o.dir,
    "controller-manager",
    "system:kube-controller-manager",
  );
  const sched = await identityKubeconfig(o.cluster, o.dir, "scheduler", "system:kube-scheduler");
  const cmPid = spawnDetached([
    `${o.bins.nodeBinDir}/kube-controller-manager`,
    `--kubeconfig=${cm}`,
    `--authentication-kubeconfig=${cm}`,
    `--authorization-kubeconfig=${cm}`,
    "--leader-elect=false",
    "--bind-address=127.0.0.1",
    "--secure-port=0",
    // Every controller acts as its own service account, as kubeadm clusters do.
    "--use-service-account-credentials=true",
    `--service-account-private-key-file=${o.serviceAccountKeyPath}`,
    `--root-ca-file=${o.cluster.caCertPath}`,
    "--service-cluster-ip-range=10.96.0.0/16",
    // Its default is a machine-wide path it would create.
    `--flex-volume-plugin-dir=${o.dir}/flex`,
    "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route",
    "--node-monitor-grace-period=20s",
    "--v=1",
  ], `${o.logDir}/kube-controller-manager.log`);
  const schedPid = spawnDetached([
    `${o.bins.nodeBinDir}/kube-scheduler`,
    `--kubeconfig=${sched}`,
    `--authentication-kubeconfig=${sched}`,
    `--authorization-kubeconfig=${sched}`,
    "--leader-elect=false",
    "--bind-address=127.0.0.1",
    "--secure-port=0",
    "--v=1",
  ], `${o.logDir}/kube-scheduler.log`);
  return [cmPid, schedPid];
}
