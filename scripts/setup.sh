#!/usr/bin/env bash
# Everything a fresh machine needs before the tests or the demo, idempotent and quick when already done:
# Debian packages, the pinned control plane (built once into a cache outside the repo), npm modules.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v iptables >/dev/null || need_pkgs+=(iptables)
command -v conntrack >/dev/null || need_pkgs+=(conntrack)
command -v ip >/dev/null || need_pkgs+=(iproute2)
command -v sysctl >/dev/null || need_pkgs+=(procps)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v wrk >/dev/null || need_pkgs+=(wrk)  # the load tool of `deno task bench nmi`
if ((${#need_pkgs[@]})); then
  echo "[setup] installing Debian packages: ${need_pkgs[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >&2
fi

bash scripts/sandbox/install-control-plane.sh >/dev/null
# helm, for the chart tests (charts/aad-pod-identity against the original chart), built the same way.
bash scripts/sandbox/install-helm.sh >/dev/null
# A real node (kubelet, controllers, containerd, runc, CNI, image tools) for tests/node, which need root.
if [[ $(id -u) -eq 0 ]]; then bash scripts/sandbox/node/install-node.sh >/dev/null; fi

# Unmodified Node.js applications the tests run (the SDKs as a pod would use them), pinned by package-lock.
node_clients=tests/clients/node
if [[ ! -f $node_clients/node_modules/.package-lock.json || $node_clients/package-lock.json -nt $node_clients/node_modules/.package-lock.json ]]; then
  echo "[setup] installing Node test clients" >&2
  npm ci --prefix "$node_clients" --no-audit --no-fund --loglevel=error >&2
fi

# Resolve and cache every npm package named in deno.json's import map (and lock them in deno.lock).
if command -v deno >/dev/null; then deno install --quiet >&2; else npx -y deno@2.9.6 install --quiet >&2; fi

# Unmodified Go and Python SDK applications for the end-to-end tests (cached by their pinned versions).
bash scripts/sandbox/install-clients.sh
