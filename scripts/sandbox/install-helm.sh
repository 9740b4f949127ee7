#!/usr/bin/env bash
# Builds a pinned helm from its Go module (helm.sh/helm/v3) into the same cache as the control plane, once.
# Later runs find the binary and return at once. A helm the user already has wins: HELM_BIN.
# Prints the path of the helm binary on its last line.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.19.0}"
CACHE_ROOT="${AAD_SANDBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aad-pod-identity-sandbox}"
BIN_DIR="$CACHE_ROOT/bin-helm-${HELM_VERSION}"

log() { echo "[helm] $*" >&2; }

if [[ -n "${HELM_BIN:-}" ]]; then
  [[ -x "$HELM_BIN" ]] || { echo "HELM_BIN=$HELM_BIN is not executable" >&2; exit 1; }
  echo "$HELM_BIN"
  exit 0
fi
if [[ -x "$BIN_DIR/helm" ]]; then
  log "cached: $BIN_DIR/helm"
  echo "$BIN_DIR/helm"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.helm-build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
  if [[ -x "$BIN_DIR/helm" ]]; then echo "$BIN_DIR/helm"; exit 0; fi
fi

command -v go >/dev/null || { echo "Go is required to build helm (or set HELM_BIN)" >&2; exit 1; }
start=$(date +%s)
rm -rf "$BIN_DIR.tmp"
mkdir -p "$BIN_DIR.tmp"
log "building helm $HELM_VERSION"
# helm's version string comes from ldflags, as its Makefile sets it.
GOBIN="$BIN_DIR.tmp" GOFLAGS=-mod=mod go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
rm -rf "$BIN_DIR"
mv "$BIN_DIR.tmp" "$BIN_DIR"
log "built in $(($(date +%s) - start)) s: $BIN_DIR/helm"
echo "$BIN_DIR/helm"
