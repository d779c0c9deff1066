#!/usr/bin/env bash
# The agent's kubelet device plugin against a kubelet stand-in that speaks the real Device Plugin
# API v1beta1 (hack/device-plugin/kubelet_stand_in.py), with stubs generated at test time from a
# packaged api.proto (hack/device-plugin/stubs.sh). Run as root: `sudo hack/device-plugin-test.sh`.
# CUTTLEFISH_CNI_AGENT=path tests that agent binary (default: the static release build).
# Prints ok/FAIL per check and "N passed, M failed"; exits 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "hack/device-plugin-test.sh needs root (mknod)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
hack/device-plugin/stubs.sh "$work/py"
agent=${CUTTLEFISH_CNI_AGENT:-$(hack/build-release.sh)/cuttlefish-cni-agent}
echo "== kubelet stand-in against $agent" >&2
PYTHONPATH="$work/py" /usr/bin/python3 hack/device-plugin/kubelet_stand_in.py test "$agent" "$work"
