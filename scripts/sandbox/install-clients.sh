#!/usr/bin/env bash
# The unmodified SDK applications the end-to-end tests run inside pod namespaces, built once per version
# into the sandbox cache (outside the repository) and reused while their pinned sources are unchanged:
#   Go:     azidentity ManagedIdentityCredential / DefaultAzureCredential, go-autorest adal (tests/clients/go)
#   Python: azure-identity in a virtual environment of its own (tests/clients/python/requirements.txt)
# Writes their locations to $CACHE_ROOT/clients.env (sourced by tests/support/clients.ts).
# With --image-inputs also what only the real-node SDK images need (scripts/images/sdk_images.ts runs it):
#   az:     azure-cli in a virtual environment of its own (tests/clients/azcli/requirements.txt, pinned)
#   demo:   the original's cmd/demo of github.com/Azure/aad-pod-identity v1.8.17, from the Go module proxy
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE_ROOT="${AAD_SANDBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aad-pod-identity-sandbox}"
log() { echo "[clients] $*" >&2; }
mkdir -p "$CACHE_ROOT"
exec 8>"$CACHE_ROOT/.clients.lock"
flock 8

hash_of() { cat "$@" | sha256sum | cut -c1-12; }

go_src=tests/clients/go
go_dir="$CACHE_ROOT/clients-go-$(hash_of $go_src/go.mod $go_src/go.sum $(find $go_src/cmd -name '*.go' | sort))"
if [[ ! -x $go_dir/adal-demo || ! -x $go_dir/azidentity-token ]]; then
  command -v go >/dev/null || { echo "Go is required to build the Go test clients" >&2; exit 1; }
  log "building Go clients into $go_dir"
  (cd "$go_src" && GOFLAGS=-mod=mod go build -trimpath -o "$go_dir.tmp/" ./cmd/...)
  rm -rf "$go_dir" && mv "$go_dir.tmp" "$go_dir"
fi

# A virtual environment at $1 with the pinned requirements $2 (more pip flags after), marked complete last.
venv_install() {
  local dir=$1 req=$2
  shift 2
  [[ -f $dir/.complete ]] && return
  log "creating Python virtual environment $dir"
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" -r "$req"
  touch "$dir/.complete"
}

py_req=tests/clients/python/requirements.txt
py_dir="$CACHE_ROOT/clients-python-$(hash_of $py_req)"
venv_install "$py_dir" "$py_req"

if [[ ${1:-} == --image-inputs ]]; then
  az_req=tests/clients/azcli/requirements.txt
  az_dir="$CACHE_ROOT/clients-azcli-$(hash_of $az_req)"
  # azure-cli's own pins are exact; the file pins the rest too, hence --no-deps.
  venv_install "$az_dir" "$az_req" --no-deps
  demo_version=v1.8.17
  demo_dir="$CACHE_ROOT/clients-demo-$demo_version"
  if [[ ! -x $demo_dir/demo ]]; then
    log "building the original's demo ($demo_version) into $demo_dir"
    src=$(GOFLAGS=-mod=mod go mod download -json "github.com/Azure/aad-pod-identity@$demo_version" |
      sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' -o "$demo_dir.tmp/demo" ./cmd/demo)
    rm -rf "$demo_dir" && mv "$demo_dir.tmp" "$demo_dir"
  fi
  cat > "$CACHE_ROOT/image-inputs.env" <<ENV
AAD_AZCLI=$az_dir
AAD_DEMO=$demo_dir/demo
ENV
fi

cat > "$CACHE_ROOT/clients.env" <<ENV
AAD_GO_CLIENTS=$go_dir
AAD_PYTHON=$py_dir/bin/python
ENV
log "ready: $go_dir, $py_dir"
