#!/usr/bin/env bash
# Builds the client-go side of the watch_loop benchmark once into the sandbox cache (outside the
# repository), keyed by a hash of its sources, and prints the binary's path on its last line. A later run
# with unchanged sources finds the binary and returns at once.
set -euo pipefail
cd "$(dirname "$0")"

CACHE_ROOT="${AAD_SANDBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aad-pod-identity-sandbox}"
hash=$(cat go.mod go.sum main.go | sha256sum | cut -c1-12)
dir="$CACHE_ROOT/bench-client-go-$hash"
if [[ ! -x $dir/client-go-bench ]]; then
  command -v go >/dev/null || { echo "Go is required to build the client-go benchmark" >&2; exit 1; }
  mkdir -p "$CACHE_ROOT"
  exec 7>"$CACHE_ROOT/.bench-client-go.lock"
  flock 7
  if [[ ! -x $dir/client-go-bench ]]; then
    echo "[bench] building client-go v0.34.2 benchmark into $dir" >&2
    # `go install m@v` is refused here (the proxy denies version lists); a module that requires the
    # pinned version and builds with -mod=mod works.
    GOFLAGS=-mod=mod go build -trimpath -o "$dir.tmp/client-go-bench" .
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
fi
echo "$dir/client-go-bench"
