#!/usr/bin/env bash
# Builds pinned kube-apiserver, kubectl and etcd from their Go modules into a cache outside the repository,
# once. Later runs find the binaries and return at once. Binaries a user already has win:
#   KUBE_BIN_DIR (holding all three) or KUBE_APISERVER_BIN / KUBECTL_BIN / ETCD_BIN.
# `--node` builds the node's and the controllers' binaries instead (kubelet, kube-scheduler,
# kube-controller-manager) with the same recipe into their own directory (KUBE_NODE_BIN_DIR wins).
# Prints the directory holding the binaries on its last line.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CACHE_ROOT="${AAD_SANDBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aad-pod-identity-sandbox}"
if [[ "${1:-}" == "--node" ]]; then
  BIN_DIR="$CACHE_ROOT/bin-node-k8s-${K8S_VERSION}"
  BINARIES=(kubelet kube-scheduler kube-controller-manager)
  USER_DIR="${KUBE_NODE_BIN_DIR:-}"
else
  BIN_DIR="$CACHE_ROOT/bin-k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}"
  BINARIES=(kube-apiserver kubectl etcd)
  USER_DIR="${KUBE_BIN_DIR:-}"
fi

log() { echo "[control-plane] $*" >&2; }
all_built() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$1/$b" ]] || return 1; done
}

if [[ -n "$USER_DIR" ]]; then
  all_built "$USER_DIR" || { echo "$USER_DIR lacks one of: ${BINARIES[*]}" >&2; exit 1; }
  echo "$USER_DIR"
  exit 0
fi

if all_built "$BIN_DIR"; then
  log "cached: $BIN_DIR"
  echo "$BIN_DIR"
  exit 0
fi

# One build at a time: a second run (another checkout, a parallel CI step) waits, then finds the binaries.
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
  if all_built "$BIN_DIR"; then
    log "cached: $BIN_DIR"
    echo "$BIN_DIR"
    exit 0
  fi
fi

command -v go >/dev/null || { echo "Go is required to build the control plane (or set KUBE_BIN_DIR)" >&2; exit 1; }
start=$(date +%s)
SRC="$CACHE_ROOT/src"
rm -rf "$BIN_DIR.tmp"
mkdir -p "$SRC/kubernetes" "$SRC/etcd" "$BIN_DIR.tmp"

# --- kube-apiserver + kubectl: a consumer module that maps every k8s.io staging module to its published tag.
build_kubernetes() {
  cd "$SRC/kubernetes"
  local staging="v0.${K8S_VERSION#v1.}"
  if [[ ! -f go.mod ]] || ! grep -q "k8s.io/kubernetes $K8S_VERSION" go.mod; then
    log "resolving k8s.io/kubernetes $K8S_VERSION"
    printf 'module aadpodidentity.local/controlplane\n\ngo 1.24\n' > go.mod
    local gomod
    gomod=$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
    {
      echo
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo
      echo "replace ("
      sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9./-]*\) => ./staging/src/.*#\1#p' "$gomod" |
        sort -u | while read -r m; do echo "	$m => $m $staging"; done
      echo ")"
    } >> go.mod
    GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" "k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION"
  fi
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  local b
  for b in "$@"; do
    log "building $b"
    GOFLAGS=-mod=mod go build -trimpath -ldflags "$ld" -o "$BIN_DIR.tmp/$b" "k8s.io/kubernetes/cmd/$b"
  done
}

# --- etcd: its own consumer module (its go.mod has replace lines, so `go install m@v` is refused).
build_etcd() {
  cd "$SRC/etcd"
  if [[ ! -f go.mod ]] || ! grep -q "go.etcd.io/etcd/server/v3 $ETCD_VERSION" go.mod; then
    printf 'module aadpodidentity.local/etcd\n\ngo 1.24\n' > go.mod
    GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  fi
  log "building etcd"
  GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$BIN_DIR.tmp/etcd" go.etcd.io/etcd/server/v3
}

if [[ "${1:-}" == "--node" ]]; then
  build_kubernetes "${BINARIES[@]}"
else
  build_etcd
  build_kubernetes kube-apiserver kubectl
fi
rm -rf "$BIN_DIR" && mv "$BIN_DIR.tmp" "$BIN_DIR"
log "built in $(( $(date +%s) - start ))s into $BIN_DIR ($(du -sh "$BIN_DIR" | cut -f1))"
echo "$BIN_DIR"
