#!/bin/sh
# Prints this pod's first Cuttlefish instance number, as allocated by cuttlefish-cni
# (`baseInstance: "auto"`). Needs no privilege: it reads the names of the pod's interfaces.
# Use it in the CVD container's entrypoint:
#   base=$(cvd-base-instance.sh) && exec launch_cvd --base_instance_num="$base" ...
# The vsock CID is then base + 2, unique on the node.
set -eu
base=$(ls /sys/class/net | sed -n 's/^cvd-mtap-0*\([0-9][0-9]*\)$/\1/p' | sort -n | head -n 1)
[ -n "$base" ] || { echo "no cvd-mtap-NN interface: is cuttlefish-cni chained for this pod?" >&2; exit 1; }
echo "$base"
