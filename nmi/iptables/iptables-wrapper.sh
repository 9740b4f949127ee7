#!/bin/sh
# Installed in the NMI image as iptables, iptables-save and iptables-restore: runs the command it was called
# as in the backend (legacy or nft) that holds the node's own rules, chosen at run time the way kube-proxy's
# image does it (https://github.com/kubernetes-sigs/iptables-wrappers), because rules written through the
# other backend run in a different kernel subsystem and their order against kube-proxy's is lost.
#
# The choice, per call (the image's root filesystem is read-only, so nothing is cached):
#   1. IPTABLES_MODE=legacy|nft in the environment wins.
#   2. The backend whose mangle table holds kubelet's KUBE-IPTABLES-HINT chain, then KUBE-KUBELET-CANARY.
#   3. legacy if it holds 10 or more rules, else the backend holding more rules (legacy on a tie).
# POSIX sh only: the image has no bash.

set -eu

called=$(basename "$0")
case "$called" in
iptables | iptables-save | iptables-restore) ;;
*)
  echo "iptables-wrapper: called as '$called'; link it as iptables, iptables-save or iptables-restore" >&2
  exit 2
  ;;
esac

has_chain() { # backend chain
  "iptables-$1-save" -t mangle 2>/dev/null | grep -q "^:$2 "
}

count_rules() { # backend
  { "iptables-$1-save" 2>/dev/null || true; "ip6tables-$1-save" 2>/dev/null || true; } | grep -c '^-' || true
}

detect() {
  for chain in KUBE-IPTABLES-HINT KUBE-KUBELET-CANARY; do
    for backend in legacy nft; do
      if has_chain "$backend" "$chain"; then
        echo "$backend"
        return
      fi
    done
  done
  legacy=$(count_rules legacy)
  if [ "$legacy" -ge 10 ]; then
    echo legacy
    return
  fi
  nft=$(count_rules nft)
  if [ "$legacy" -ge "$nft" ]; then echo legacy; else echo nft; fi
}

mode="${IPTABLES_MODE:-}"
[ -n "$mode" ] || mode=$(detect)
case "$mode" in
legacy | nft) ;;
*)
  echo "iptables-wrapper: IPTABLES_MODE must be legacy or nft, not '$mode'" >&2
  exit 2
  ;;
esac

exec "iptables-$mode${called#iptables}" "$@"
