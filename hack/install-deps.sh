#!/usr/bin/env bash
# Installs what the demo and the tests need on Debian 12, only when something is missing.
# Needs root. The plugin itself needs none of this on a node.
set -euo pipefail
# prometheus: tests/netns/metrics.rs runs its own server on loopback, started and stopped by the test.
packages=(iproute2 nftables containernetworking-plugins util-linux procps jq busybox strace prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
