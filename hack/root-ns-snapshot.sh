#!/usr/bin/env bash
# Prints the root network namespace's links, addresses, routes, nft ruleset and forwarding
# sysctls, so the test suite can prove it never touched them. Read-only.
set -euo pipefail
ip -o link show | sed -E 's/ state [A-Z]+//; s/ qdisc [^ ]+//'
ip -o addr show
ip route show table all | sed 's/ linkdown//'
nft list ruleset 2>/dev/null || true
cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding
