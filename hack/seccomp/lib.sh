# hack/seccomp/lib.sh: helpers for hack/seccomp-profile.sh and hack/seccomp-test.sh (sourced, not
# run; the caller sets HERE to hack/).
#
# containerd (Debian's, CRI plugin enabled) runs by hand inside a network namespace of its own,
# cfsec-node, with its root, state and sockets under $W/run (W = $CFSEC_WORK, default /tmp/cfsec).
# Every name is cfsec-*, distinct from hack/e2e.sh's cfe2e-*, so both can run at once. Processes
# are recorded and killed by PID; cleanup removes only namespaces and mounts of ours.

CFE2E_WORK=${CFSEC_WORK:-/tmp/cfsec}
# need_pkgs, save_pid/kill_saved, kill_netns_pids, umount_under_work, make_docker_archive, check,
# write_containerd_config, all_caps_dropped
source "$HERE/e2e/lib.sh"
NODE=cfsec-node UP=cfsec-up PROBE=cfsec-probe POD=cfsec-pod
CD=$RUN/containerd
CD_SOCK=$CD/containerd.sock
CTR=(ctr --address "$CD_SOCK" --namespace cfsec)
CTR_RUN=(run --runc-root "$CD/runc") # runc's state under $CD too, not in /run/containerd/runc
# containerd 1.6 puts shim sockets and ctr's FIFOs under /run/containerd whatever its config says:
# the directories there that did not exist before we started are removed again (when empty, and
# when no other containerd runs)
RUN_DIRS=(/run/containerd /run/containerd/s /run/containerd/fifo)
IMG=localhost/cfsec-probe:latest
PAUSE_IMG=localhost/cfsec-pause:latest
BUNDLES=$CD/state/io.containerd.runtime.v2.task # <namespace>/<container id>/config.json

ctr_() { in_node "${CTR[@]}" "$@"; }

# start_containerd: Debian's containerd in cfsec-node, CRI plugin on (host-network pods need no CNI)
start_containerd() {
    local d
    for d in "${RUN_DIRS[@]}"; do [ -e "$d" ] || echo "$d" >>"$RUN/created-run-dirs"; done
    ip netns add $NODE
    ip -n $NODE link set lo up
    write_containerd_config "$CD" $PAUSE_IMG "$CD/cni-bin" "$CD/net.d"
    nsenter --net=/run/netns/$NODE containerd --config "$CD/config.toml" >"$LOG/containerd.log" 2>&1 &
    save_pid containerd $!
    local n=200
    while ((n-- > 0)); do ctr_ version >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "containerd did not answer on $CD_SOCK; its log:" >&2
    tail -20 "$LOG/containerd.log" >&2
    return 1
}

# import_images PROBE_BINARY: a busybox-static image with the probe, uid 1000 (ctr has no --user),
# in the ctr namespace and in the CRI's k8s.io namespace, plus a pause image for CRI sandboxes.
# /usr stays empty: the qemu check bind-mounts the host's /usr there.
import_images() {
    local r=$RUN/rootfs a
    rm -rf "$r"
    mkdir -p "$r"/{bin,etc,dev,proc,sys,tmp,run,usr,guest}
    chmod 1777 "$r/tmp"
    cp /bin/busybox "$r/bin/busybox"
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"; done
    install -m 0755 "$1" "$r/bin/seccomp-probe"
    ln -s usr/lib "$r/lib"
    ln -s usr/lib64 "$r/lib64"
    printf 'root:x:0:0:root:/root:/bin/sh\ncvd:x:1000:1000:cvd:/tmp:/bin/sh\n' >"$r/etc/passwd"
    printf 'root:x:0:\ncvd:x:1000:\n' >"$r/etc/group"
    tar --numeric-owner --owner=0 --group=0 -C "$r" -cf "$RUN/rootfs.tar" .
    make_docker_archive "$RUN/rootfs.tar" "$RUN/image.tar" $IMG 1000:1000
    ctr_ images import "$RUN/image.tar" >/dev/null
    in_node ctr --address "$CD_SOCK" --namespace k8s.io images import "$RUN/image.tar" >/dev/null
    make_docker_archive "$RUN/rootfs.tar" "$RUN/pause.tar" $PAUSE_IMG "" "$PAUSE_CMD"
    in_node ctr --address "$CD_SOCK" --namespace k8s.io images import "$RUN/pause.tar" >/dev/null
}

# capture_runtime_default OUT: the .linux.seccomp that containerd writes into the task bundle for
# `ctr run --seccomp` with every capability dropped (what RuntimeDefault is for a pod that drops ALL)
capture_runtime_default() {
    local out=$1 id=cfsec-capture caps
    mapfile -t caps < <(all_caps_dropped)
    ctr_ "${CTR_RUN[@]}" -d --seccomp "${caps[@]}" $IMG $id /bin/sleep 60 >/dev/null
    jq -e '.linux.seccomp' "$BUNDLES/cfsec/$id/config.json" >"$out"
    ctr_ task kill -s KILL $id >/dev/null 2>&1 || true
    local n=50
    while ((n-- > 0)) && ctr_ task ls -q 2>/dev/null | grep -qx $id; do
        ctr_ task rm -f $id >/dev/null 2>&1 || true
        sleep 0.1
    done
    ctr_ container rm $id >/dev/null
}

cfsec_cleanup() {
    set +e
    local ns c
    if [ -f "$PIDS/containerd.pid" ] && [ -e /run/netns/$NODE ]; then
        for ns in cfsec k8s.io; do
            for c in $(in_node ctr --address "$CD_SOCK" --namespace $ns containers ls -q 2>/dev/null); do
                in_node ctr --address "$CD_SOCK" --namespace $ns task kill -s KILL "$c" >/dev/null 2>&1
                sleep 0.2
                in_node ctr --address "$CD_SOCK" --namespace $ns task rm -f "$c" >/dev/null 2>&1
                in_node ctr --address "$CD_SOCK" --namespace $ns containers rm "$c" >/dev/null 2>&1
            done
        done
    fi
    kill_saved ctr-qemu
    kill_saved udhcpd
    kill_saved containerd
    kill_netns_pids $NODE # the shims and whatever else still runs in cfsec-node: ours
    kill_netns_pids $POD
    ip netns del $NODE 2>/dev/null
    ip netns del $POD 2>/dev/null
    umount_under_work
    # (not while another containerd runs: it may use them, even empty)
    if [ -f "$RUN/created-run-dirs" ] && ! pgrep -x containerd >/dev/null; then
        sort -r "$RUN/created-run-dirs" | xargs -r rmdir 2>/dev/null
    fi
    rm -f "$RUN/created-run-dirs"
}
