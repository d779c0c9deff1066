#!/bin/sh
# Prints the launch_cvd flag that gives instance i the i-th vsock CID the agent's device plugin
# allocated to this container (resource cuttlefish.dev/vsock-cid, env VSOCK_CIDS: ascending,
# comma-separated). Needs no privilege. Use it in the CVD container's entrypoint:
#   exec launch_cvd --base_instance_num=1 --num_instances=N "$(cvd-vsock-cid.sh)" ...
# launch_cvd gives instance i (from 0) the CID vsock_guest_cid[i] + i, and one value stands for
# every instance. A contiguous block therefore needs only its first CID; any other set gets the
# per-instance vector CID_i - i.
set -eu
cids=${VSOCK_CIDS:-}
[ -n "$cids" ] || { echo "VSOCK_CIDS is empty: does the container request cuttlefish.dev/vsock-cid?" >&2; exit 1; }
printf '%s\n' "$cids" | awk -F, '
{
  for (i = 1; i <= NF; i++) {
    if ($i !~ /^[1-9][0-9]*$/ || $i + 0 < 3 || (i > 1 && $i + 0 <= $(i - 1) + 0)) {
      print "VSOCK_CIDS=" $0 ": not ascending CIDs of 3 or more" > "/dev/stderr"
      exit 1
    }
    base[i] = $i - (i - 1)
    vector = vector (i > 1 ? "," : "") base[i]
  }
  print "--vsock_guest_cid=" (base[NF] == base[1] ? base[1] : vector)
}'
