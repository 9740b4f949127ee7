#!/usr/bin/env bash
# Installs what a real node needs, idempotent and cached outside the repository:
#   - Debian packages: runc, the CNI plugins, umoci and skopeo (local image builds), busybox-static;
#   - containerd 2.x (containerd, ctr, containerd-shim-runc-v2) built from its Go module;
#   - kubelet, kube-scheduler, kube-controller-manager (install-control-plane.sh --node).
# Prints `KEY=VALUE` lines on stdout: NODE_BIN_DIR (kubelet and controllers), CONTAINERD_BIN_DIR.
# CONTAINERD_BIN_DIR set by the user wins over the build.
set -euo pipefail
cd "$(dirname "$0")"

CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.2.1}"
CACHE_ROOT="${AAD_SANDBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aad-pod-identity-sandbox}"
log() { echo "[node] $*" >&2; }

need=()
command -v runc >/dev/null || need+=(runc)
[[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
command -v umoci >/dev/null || need+=(umoci)
command -v skopeo >/dev/null || need+=(skopeo)
[[ -x /bin/busybox ]] || need+=(busybox-static)
command -v nsenter >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
  log "installing Debian packages: ${need[*]}"
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >&2
fi

build_containerd() {
  local dir="$CACHE_ROOT/bin-containerd-$CONTAINERD_VERSION"
  local bins=(containerd ctr containerd-shim-runc-v2)
  local b ok=1
  for b in "${bins[@]}"; do [[ -x "$dir/$b" ]] || ok=0; done
  if ((ok)); then echo "$dir"; return; fi
  command -v go >/dev/null || { echo "Go is required to build containerd (or set CONTAINERD_BIN_DIR)" >&2; exit 1; }
  local start src="$CACHE_ROOT/src/containerd"
  start=$(date +%s)
  mkdir -p "$src" && rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  cd "$src"
  if [[ ! -f go.mod ]] || ! grep -q "github.com/containerd/containerd/v2 $CONTAINERD_VERSION" go.mod; then
    printf 'module aadpodidentity.local/containerd\n\ngo 1.24\n' > go.mod
    GOFLAGS=-mod=mod go get "github.com/containerd/containerd/v2@$CONTAINERD_VERSION" >&2
  fi
  local ld="-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION"
  for b in "${bins[@]}"; do
    log "building $b $CONTAINERD_VERSION"
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -tags "no_btrfs no_devmapper no_zfs" -ldflags "$ld" \
      -o "$dir.tmp/$b" "github.com/containerd/containerd/v2/cmd/$b" >&2
  done
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  log "containerd built in $(($(date +%s) - start))s into $dir"
  echo "$dir"
}

mkdir -p "$CACHE_ROOT"
exec 8>"$CACHE_ROOT/.node-build.lock"
flock 8
if [[ -n "${CONTAINERD_BIN_DIR:-}" ]]; then
  containerd_dir="$CONTAINERD_BIN_DIR"
else
  containerd_dir=$(build_containerd)
fi
node_dir=$(bash ../install-control-plane.sh --node | tail -n 1)
echo "NODE_BIN_DIR=$node_dir"
echo "CONTAINERD_BIN_DIR=$containerd_dir"
