# syntax=docker/dockerfile:1
# MIC and NMI as two small images, built with `deno compile` from the same sources the tests run.
#   docker build --target mic -t aad-pod-identity/mic:1.9.0-deno .
#   docker build --target nmi -t aad-pod-identity/nmi:1.9.0-deno .
# The permission flags of each `deno compile` are exactly mic/permissions.ts and nmi/permissions.ts (a unit
# test, tests/unit/scripts/dockerfile.test.ts, keeps them in step): no --allow-all, no --allow-write, and
# NMI may run only iptables-save, iptables-restore, conntrack and sysctl. The --v8-flags there (heap limits,
# chosen by `deno task bench nmi`) are baked into each binary by `deno compile`.

ARG DENO_VERSION=2.9.6

FROM denoland/deno:debian-${DENO_VERSION} AS build
WORKDIR /src
COPY deno.json deno.lock ./
COPY lib lib
COPY mic mic
COPY nmi nmi
RUN deno install --frozen --entrypoint mic/main.ts nmi/main.ts
RUN deno compile --frozen --allow-net --allow-read --allow-env --allow-sys --v8-flags=--max-semi-space-size=2,--memory-saver-mode --output /out/mic mic/main.ts
RUN deno compile --frozen --allow-net --allow-read --allow-env --allow-run=iptables-save,iptables-restore,conntrack,sysctl --v8-flags=--max-semi-space-size=4 --output /out/nmi nmi/main.ts

# MIC: no shell, no package manager, non-root; the Deployment adds a read-only root filesystem.
FROM gcr.io/distroless/cc-debian12:nonroot AS mic
COPY --from=build /out/mic /usr/local/bin/mic
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/mic"]

# NMI: the host tools it drives. It runs as root in the DaemonSet with only NET_ADMIN and NET_RAW.
# iptables, iptables-save and iptables-restore are the wrapper nmi/iptables/iptables-wrapper.sh: each call
# runs in the backend (legacy or nft) that holds the node's kube-proxy/kubelet rules, chosen at run time as
# kube-proxy's image does; IPTABLES_MODE=legacy|nft in the DaemonSet's env overrides it.
FROM debian:12-slim AS nmi
RUN apt-get update \
  && apt-get install -y --no-install-recommends iptables conntrack procps ca-certificates \
  && rm -rf /var/lib/apt/lists/*
COPY --chmod=0755 nmi/iptables/iptables-wrapper.sh /usr/sbin/iptables-wrapper
RUN update-alternatives --install /usr/sbin/iptables iptables /usr/sbin/iptables-wrapper 100 \
    --slave /usr/sbin/iptables-restore iptables-restore /usr/sbin/iptables-wrapper \
    --slave /usr/sbin/iptables-save iptables-save /usr/sbin/iptables-wrapper \
  && test "$(readlink -f /usr/sbin/iptables-save)" = /usr/sbin/iptables-wrapper
COPY --from=build /out/nmi /usr/local/bin/nmi
ENTRYPOINT ["/usr/local/bin/nmi"]
