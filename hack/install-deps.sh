#!/usr/bin/env bash
# Installs what the demo and the tests need on Debian 12, only when something is missing.
# Needs root. The plugin itself needs none of this on a node. `hack/install-deps.sh PKG...` adds
# packages a script needs beyond these.
set -euo pipefail
source "$(dirname "$0")/lib/host.sh"
# prometheus: tests/netns/metrics.rs runs its own server on loopback, started and stopped by the test.
need_pkgs iproute2 nftables containernetworking-plugins util-linux procps jq busybox strace prometheus "$@"
