#!/usr/bin/env bash
# Runs one node's containerd and kubelet. Started by node.ts as
#   nsenter --net=/run/netns/<node ns> -- unshare -m --propagation private -- bash node-run.sh <node dir>
# so both share the node's network namespace and one private mount namespace: kubelet writes fixed machine
# paths (/var/lib/kubelet, /var/log/pods, /usr/libexec/kubernetes, /etc/kubernetes, /run/xtables.lock) and
# three sysctls whatever its flags say; here those land in overlays whose upper layers live in the node's
# directory, and the sysctl files it would write are bind-mounted over with the values it wants.
set -euo pipefail
D="$1"
# shellcheck source=/dev/null
source "$D/node.env" # NODE_NAME NODE_IP CONTAINERD_BIN_DIR NODE_BIN_DIR SYS_CGROUP LOG_DIR CONTAINERD_SOCKET

# containerd, kubelet and every shim live in one cgroup of their own, so teardown finds all of them.
for h in /sys/fs/cgroup/*/; do
  if [[ -e "$h$SYS_CGROUP/cgroup.procs" ]]; then echo $$ >"$h$SYS_CGROUP/cgroup.procs"; fi
done

for p in /etc /usr/libexec /var/lib /var/log /run; do
  n="${p//\//_}"
  mkdir -p "$D/overlay/$n/upper" "$D/overlay/$n/work"
  mount -t overlay overlay -o "lowerdir=$p,upperdir=$D/overlay/$n/upper,workdir=$D/overlay/$n/work" "$p"
done
mkdir -p "$D/sysctl"
for kv in vm/overcommit_memory=1 kernel/panic=10 kernel/panic_on_oops=1; do
  f="${kv%%=*}"
  echo "${kv#*=}" >"$D/sysctl/${f//\//_}"
  mount --bind "$D/sysctl/${f//\//_}" "/proc/sys/$f"
done

export PATH="$CONTAINERD_BIN_DIR:$PATH"
start_containerd() {
  rm -f "$CONTAINERD_SOCKET"
  "$CONTAINERD_BIN_DIR/containerd" --config "$D/containerd.toml" >>"$LOG_DIR/containerd.log" 2>&1 &
  echo $! >"$D/containerd.pid"
  for _ in $(seq 1 200); do [[ -S "$CONTAINERD_SOCKET" ]] && return 0; sleep 0.05; done
  echo "containerd did not open $CONTAINERD_SOCKET" >&2
  return 1
}
start_kubelet() {
  "$NODE_BIN_DIR/kubelet" --config="$D/kubelet.json" --kubeconfig="$D/kubelet.kubeconfig" \
    --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1 >>"$LOG_DIR/kubelet.log" 2>&1 &
  echo $! >"$D/kubelet.pid"
}
# Stops one of the two and waits until it is gone (its pid file names it).
stop_one() {
  local pid
  pid=$(cat "$D/$1.pid")
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

start_containerd
start_kubelet
# Fault tests restart either in place: SIGUSR1 the kubelet, SIGUSR2 containerd (shims and pods stay).
trap 'stop_one kubelet; start_kubelet' USR1
trap 'stop_one containerd; start_containerd' USR2
trap 'stop_one kubelet; stop_one containerd; exit 0' TERM INT
while true; do
  wait || true
  sleep 0.2
done
