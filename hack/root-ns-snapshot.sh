#!/usr/bin/env bash
# Prints the root network namespace's links, addresses, routes, nft ruleset and forwarding
# sysctls, so the test suite can prove it never touched them. Read-only.
set -euo pipefail
source "$(dirname "$0")/lib/host.sh"
root_ns_snapshot
