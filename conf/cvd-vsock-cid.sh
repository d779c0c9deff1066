#!/bin/sh
# Prints the launch_cvd flag that gives this pod's Cuttlefish instances their node-unique vsock
# CIDs. Needs no privilege. In the CVD container's entrypoint:
#   exec launch_cvd $(cvd-vsock-cid.sh) --base_instance_num=1 --num_instances=N ...
# The CIDs come from, in this order:
# - VSOCK_CIDS (every CID, ascending, comma-separated) or VSOCK_CID (the lowest), which the
#   device plugin of cuttlefish-cni-agent sets (resource cuttlefish.dev/vsock-cid);
# - the cid= in the alias of the pod's links, which cuttlefish-cni writes with vsockCid: "auto"
#   (the pod's CIDs are then cid, cid+1, ...).
# launch_cvd gives instance i (counted from 0) the CID vector[i] + i, and repeats the vector's
# first value for instances past its end. CIDs c0 < c1 < ... therefore need vector[i] = c_i - i,
# and a contiguous set needs one value. (CVD_VSOCK_CID_SYSFS_NET replaces /sys/class/net in
# tests.)
set -eu

fail() {
    echo "cvd-vsock-cid.sh: $*" >&2
    exit 1
}

cids=${VSOCK_CIDS:-${VSOCK_CID:-}}
if [ -z "$cids" ]; then
    alias_file=${CVD_VSOCK_CID_SYSFS_NET:-/sys/class/net}/cvd-ebr/ifalias
    alias=$(cat "$alias_file" 2>/dev/null) || alias=
    cids=$(printf '%s\n' "$alias" | sed -n 's/^cuttlefish-cni .* cid=\([0-9][0-9]*\)\( .*\)\{0,1\}$/\1/p')
    [ -n "$cids" ] || fail "no vsock CID: VSOCK_CIDS and VSOCK_CID are unset (device plugin resource cuttlefish.dev/vsock-cid), and $alias_file has no cid= (cuttlefish-cni with vsockCid: \"auto\")"
elif [ -n "${VSOCK_CIDS:-}" ] && [ -n "${VSOCK_CID:-}" ] && [ "${VSOCK_CIDS%%,*}" != "$VSOCK_CID" ]; then
    fail "VSOCK_CID=$VSOCK_CID is not the lowest of VSOCK_CIDS=$VSOCK_CIDS"
fi

vector=
distinct=
index=0
previous=
old_ifs=$IFS
IFS=,
for cid in $cids; do
    case $cid in
        '' | *[!0-9]* | 0?*) fail "bad CID '$cid' in '$cids': expected ascending decimal numbers" ;;
    esac
    [ "${#cid}" -le 10 ] && [ "$cid" -ge 3 ] && [ "$cid" -le 4294967294 ] ||
        fail "CID $cid in '$cids' is outside 3..4294967294"
    [ -z "$previous" ] || [ "$cid" -gt "$previous" ] || fail "CIDs '$cids' are not strictly ascending"
    value=$((cid - index))
    vector=${vector:+$vector,}$value
    [ "$index" = 0 ] && first=$value
    [ "$value" = "$first" ] || distinct=yes
    previous=$cid
    index=$((index + 1))
done
IFS=$old_ifs
[ "$index" -gt 0 ] || fail "no CID in '$cids'"
case $cids in *,) fail "bad CID '' in '$cids': expected ascending decimal numbers" ;; esac

if [ -n "$distinct" ]; then
    echo "--vsock_guest_cid=$vector"
else
    echo "--vsock_guest_cid=$first"
fi
