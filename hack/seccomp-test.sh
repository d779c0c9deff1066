#!/usr/bin/env bash
# Behavioural test of the CVD seccomp profile (install/seccomp/cuttlefish-cvd.json) under containerd.
#
#   sudo hack/seccomp-test.sh                 # all steps: profile ctr cri qemu
#   sudo hack/seccomp-test.sh ctr cri         # a subset (profile always runs)
#
# A static probe (hack/seccomp/probe.c) makes each system call that matters and prints its result
# or errno. It runs as uid 1000 with every capability dropped and no_new_privs, under:
#   unconfined        no filter: what the kernel itself answers (the control)
#   default           containerd's own RuntimeDefault (`ctr run --seccomp`; Debian 12: 1.6.20,
#                     which still allows AF_VSOCK, AF_ALG and io_uring)
#   derived-default   the current upstream RuntimeDefault as derived by hack/seccomp-profile.sh
#   profile           the profile under test (`ctr run --seccomp --seccomp-profile`)
# and the steps compare the answers directly, never relying on a default to fail:
#   profile  the committed profile is what its inputs give, and the committed capture is what this
#            containerd writes for RuntimeDefault
#   ctr      socket(AF_VSOCK) succeeds; add_key, keyctl, unshare(CLONE_NEWUSER), mount, bpf are
#            refused as by the default; socket(AF_ALG) and io_uring_setup as by the current default;
#            every answer equals the derived default's except socket(AF_VSOCK)
#   cri      the same through containerd's CRI plugin, as a kubelet sends it: a Localhost profile
#            (and RuntimeDefault, for comparison) in a pod on the node's network
#   qemu     qemu (TCG) under the profile, uid 1000 without capabilities, boots hack/e2e.sh's guest
#            on a TAP, and the guest pings the host side
# Prints PASS/FAIL per check and "RESULT: N passed, M failed"; exits 1 when a check fails.
#
# Environment: SECCOMP_PROFILE=FILE tests another profile (e.g. to see the checks fail),
# CFSEC_WORK=dir (default /tmp/cfsec), GUEST_TIMEOUT=seconds (default 240).
# Safety: containerd runs in the namespace cfsec-node, the qemu container in cfsec-pod; names and
# directories are distinct from hack/e2e.sh's. Everything is removed on exit; the root network
# namespace is checked to be unchanged.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
source "$HERE/seccomp/lib.sh"
[ "$(id -u)" = 0 ] || { echo "hack/seccomp-test.sh needs root (namespaces, containerd)" >&2; exit 1; }

STEPS=("$@")
((${#STEPS[@]})) || STEPS=(ctr cri qemu)
PROFILE=${SECCOMP_PROFILE:-$REPO/install/seccomp/cuttlefish-cvd.json}
GUEST_TIMEOUT=${GUEST_TIMEOUT:-240}
CAPTURE=$HERE/seccomp/containerd-1.6.20-runtime-default.json
DERIVED=$RUN/derived-runtime-default.json
PROBE_BIN=$CACHE/seccomp-probe
REFUSED_BY_DEFAULT=(add_key keyctl unshare-user mount bpf)

trap cfsec_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# result FILE NAME: the probe's answer for NAME ("ok" or an errno name), "missing" if absent
result() {
    [ -f "$1" ] || { echo missing; return; }
    awk -v n="$2" '$1 == "PROBE" && $2 == n {print $3; f=1} END {if (!f) print "missing"}' "$1"
}
show_results() { # FILE...: one table, one column per file
    local f n line
    printf '  %-18s' probe
    for f in "$@"; do printf ' %-16s' "$(basename "$f" .probe)"; done
    echo
    for n in $(awk '$1 == "PROBE" {print $2}' "$1"); do
        line=$(printf '  %-18s' "$n")
        for f in "$@"; do line+=$(printf ' %-16s' "$(result "$f" "$n")"); done
        echo "$line"
    done
}
# same_except FILE_A FILE_B PROBE...: every probe answers the same in both files, except the listed
same_except() {
    local a=$1 b=$2
    shift 2
    grep -q '^PROBE ' "$a" && grep -q '^PROBE ' "$b" || return 1
    diff <(awk -v skip=" $* " '$1 == "PROBE" && index(skip, " " $2 " ") == 0' "$a") \
        <(awk -v skip=" $* " '$1 == "PROBE" && index(skip, " " $2 " ") == 0' "$b")
}
# the checks on one run under the profile: P (profile), D (containerd's default),
# R (derived current default), U (unconfined; may be empty)
check_answers() { # WHERE P D R [U]
    local where=$1 p=$2 d=$3 r=$4 u=${5:-} c
    check "$where: the probe ran under a seccomp filter (Seccomp: 2)" test "$(result "$p" seccomp-mode)" = 2
    check "$where: socket(AF_VSOCK, SOCK_STREAM, 0) succeeds under the profile" test "$(result "$p" socket-vsock)" = ok
    check "$where: socket(AF_VSOCK) is refused (EPERM) by the derived current RuntimeDefault: the allowance is what lets it through" \
        test "$(result "$r" socket-vsock)" = EPERM
    for c in "${REFUSED_BY_DEFAULT[@]}"; do
        check "$where: $c refused as by containerd's RuntimeDefault ($(result "$d" "$c"))" bash -c \
            "[ '$(result "$p" "$c")' = '$(result "$d" "$c")' ] && [ '$(result "$p" "$c")' != ok ] && [ '$(result "$p" "$c")' != missing ]"
    done
    check "$where: socket(AF_ALG) refused with EPERM, as by the current RuntimeDefault (containerd's own default here: $(result "$d" socket-alg))" \
        bash -c "[ '$(result "$p" socket-alg)' = EPERM ] && [ '$(result "$r" socket-alg)' = EPERM ]"
    check "$where: io_uring_setup refused with EPERM, as by the current RuntimeDefault (containerd's own default here: $(result "$d" io_uring_setup))" \
        bash -c "[ '$(result "$p" io_uring_setup)' = EPERM ] && [ '$(result "$r" io_uring_setup)' = EPERM ]"
    check "$where: clone3 answers ENOSYS as under the RuntimeDefault (glibc then falls back to clone)" \
        bash -c "[ '$(result "$p" clone3)' = ENOSYS ] && [ '$(result "$d" clone3)' = ENOSYS ]"
    check "$where: socket(AF_INET), socket(AF_INET6), socket(AF_UNIX), socket(AF_NETLINK) succeed" bash -c \
        "for c in socket-inet socket-inet6 socket-unix socket-netlink; do [ \"\$(awk -v n=\$c '\$2 == n {print \$3}' '$p')\" = ok ] || exit 1; done"
    check "$where: every other probe answers as under the derived current RuntimeDefault (only socket-vsock differs)" \
        same_except "$p" "$r" socket-vsock
    if [ -n "$u" ]; then
        check "$where: control: unconfined, add_key, keyctl, unshare(CLONE_NEWUSER), mount and socket(AF_ALG) answer otherwise than under the defaults (the probe sees the filter)" \
            bash -c "for c in add_key keyctl unshare-user mount; do
                [ \"\$(awk -v n=\$c '\$2 == n {print \$3}' '$u')\" != \"\$(awk -v n=\$c '\$2 == n {print \$3}' '$d')\" ] || exit 1; done
                [ \"\$(awk '\$2 == \"socket-alg\" {print \$3}' '$u')\" != \"\$(awk '\$2 == \"socket-alg\" {print \$3}' '$r')\" ]"
    fi
}

# --- steps -------------------------------------------------------------------------------------
step_profile() {
    check "the committed profile is what hack/seccomp-profile.sh derives from its inputs" "$HERE/seccomp-profile.sh" --check
    "$HERE/seccomp-profile.sh" --runtime-default "$DERIVED"
    check "the profile under test is valid JSON with defaultAction SCMP_ACT_ERRNO" \
        bash -c "jq -e '.defaultAction == \"SCMP_ACT_ERRNO\" and (.syscalls | length > 0)' '$PROFILE' >/dev/null"
    capture_runtime_default "$RUN/captured.json"
    check "the committed capture is what this containerd ($(containerd --version | cut -d' ' -f3)) writes for RuntimeDefault with no capabilities" \
        diff <(jq -S . "$CAPTURE") <(jq -S . "$RUN/captured.json")
}

step_ctr() {
    local mode args caps
    mapfile -t caps < <(all_caps_dropped)
    for mode in unconfined default derived-default profile; do
        case $mode in
        unconfined) args=() ;;
        default) args=(--seccomp) ;;
        derived-default) args=(--seccomp --seccomp-profile "$DERIVED") ;;
        profile) args=(--seccomp --seccomp-profile "$PROFILE") ;;
        esac
        ctr_ "${CTR_RUN[@]}" --rm "${args[@]}" "${caps[@]}" $IMG cfsec-$mode /bin/seccomp-probe >"$RUN/$mode.probe" 2>&1 ||
            echo "ctr run ($mode) failed: $(cat "$RUN/$mode.probe")"
    done
    show_results "$RUN"/{unconfined,default,derived-default,profile}.probe
    check_answers "ctr" "$RUN/profile.probe" "$RUN/default.probe" "$RUN/derived-default.probe" "$RUN/unconfined.probe"
}

step_cri() {
    local kubelet_dir=$RUN/kubelet-seccomp/profiles
    cri_stubs "$RUN/cri-py" || { fail "cri: no CRI v1 stubs (cargo fetch of the k8s-cri crate, protoc)"; return 1; }
    # where a kubelet keeps Localhost profiles (/var/lib/kubelet/seccomp/...): it sends the full path
    mkdir -p "$kubelet_dir"
    cp "$PROFILE" "$kubelet_dir/cuttlefish-cvd.json"
    cp "$DERIVED" "$kubelet_dir/derived-default.json"
    mkdir -p "$RUN/cri"
    PYTHONPATH=$RUN/cri-py in_node python3 "$HERE/seccomp/cri-probe.py" "$CD_SOCK" $PAUSE_IMG $IMG "$RUN/cri" \
        runtime-default=runtime-default derived-default="localhost:$kubelet_dir/derived-default.json" \
        localhost="localhost:$kubelet_dir/cuttlefish-cvd.json" unconfined=unconfined
    check "cri: containerd applied the Localhost profile exactly as the file says" \
        diff <(jq -S . "$PROFILE") <(jq -S . "$RUN/cri/localhost.seccomp.json")
    check "cri: RuntimeDefault with capabilities drop ALL is the committed capture (what the profile derives from)" \
        diff <(jq -S . "$CAPTURE") <(jq -S . "$RUN/cri/runtime-default.seccomp.json")
    show_results "$RUN/cri"/{unconfined,runtime-default,derived-default,localhost}.probe
    check_answers "cri" "$RUN/cri/localhost.probe" "$RUN/cri/runtime-default.probe" "$RUN/cri/derived-default.probe" "$RUN/cri/unconfined.probe"
    if [ -f "$RUN/profile.probe" ]; then
        check "cri: the Localhost container answers exactly as the ctr run under the same profile" \
            same_except "$RUN/cri/localhost.probe" "$RUN/profile.probe"
    fi
}

step_qemu() {
    local caps out=$LOG/qemu-console.txt pid n t0 qemu
    mapfile -t caps < <(all_caps_dropped)
    build_guest # hack/e2e.sh's guest: Debian's kernel and a busybox initramfs (hack/e2e/guest-init.sh)
    make_tun_node
    # the pod: cvd-mtap-01 owned by uid 1000 with the host side 192.168.97.1/30, as cuttlefish-cni makes it
    ip netns add $POD
    ip -n $POD link set lo up
    ip -n $POD tuntap add dev cvd-mtap-01 mode tap user 1000 group 1000 vnet_hdr
    ip -n $POD addr add 192.168.97.1/30 dev cvd-mtap-01
    ip -n $POD link set cvd-mtap-01 up
    # and cvd-etap-01 with a DHCP server, so the guest's eth1 gets its lease without waiting
    ip -n $POD tuntap add dev cvd-etap-01 mode tap user 1000 group 1000 vnet_hdr
    ip -n $POD addr add 192.168.98.1/24 dev cvd-etap-01
    ip -n $POD link set cvd-etap-01 up
    printf '%s\n' "interface cvd-etap-01" "start 192.168.98.2" "end 192.168.98.9" "lease_file $RUN/udhcpd.leases" \
        "pidfile $RUN/udhcpd.pid" "opt subnet 255.255.255.0" "opt router 192.168.98.1" "opt lease 3600" >"$RUN/udhcpd.conf"
    : >"$RUN/udhcpd.leases"
    nsenter --net=/run/netns/$POD busybox udhcpd -f "$RUN/udhcpd.conf" >"$LOG/udhcpd.log" 2>&1 &
    save_pid udhcpd $!
    qemu="exec /usr/bin/qemu-system-x86_64 -accel tcg -cpu max -machine q35 -m 256 -smp 1 -nodefaults -no-user-config
 -display none -serial stdio -no-reboot -kernel /guest/vmlinuz -initrd /guest/initramfs.cpio.gz
 -append 'console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init cfe2e.peer=192.168.97.1'
 -netdev tap,id=n0,ifname=cvd-mtap-01,script=no,downscript=no,vnet_hdr=on -device virtio-net-pci,netdev=n0
 -netdev tap,id=n1,ifname=cvd-etap-01,script=no,downscript=no,vnet_hdr=on -device virtio-net-pci,netdev=n1"
    t0=$(ms_now)
    nsenter --net=/run/netns/$NODE "${CTR[@]}" "${CTR_RUN[@]}" --rm --seccomp --seccomp-profile "$PROFILE" "${caps[@]}" \
        --with-ns "network:/run/netns/$POD" --device /dev/net/tun \
        --mount "type=bind,src=$RUN/dev/tun,dst=/dev/net/tun,options=rbind:rw" \
        --mount "type=bind,src=/usr,dst=/usr,options=rbind:ro" --mount "type=bind,src=$RUN/guest,dst=/guest,options=rbind:ro" \
        --pid-file "$RUN/qemu.pid" $IMG cfsec-qemu /bin/sh -c "$(tr '\n' ' ' <<<"$qemu")" </dev/null >"$out" 2>&1 &
    save_pid ctr-qemu $!
    n=50
    while ((n-- > 0)) && ! [ -s "$RUN/qemu.pid" ]; do sleep 0.1; done
    pid=$(cat "$RUN/qemu.pid" 2>/dev/null)
    sleep 0.5
    grep -E '^(Name|Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' "/proc/$pid/status" 2>/dev/null | tr -s '\t' ' ' | sed 's/^/  qemu /'
    check "qemu runs as uid 1000, CapEff 0, NoNewPrivs 1, under a seccomp filter (Seccomp: 2)" bash -c "st=/proc/$pid/status;
        grep -q '^Name:.qemu-system-x86' \$st && grep -Eq '^Uid:\s+1000\s' \$st && grep -Eq '^CapEff:\s+0+$' \$st &&
        grep -Eq '^NoNewPrivs:\s+1' \$st && grep -Eq '^Seccomp:\s+2' \$st"
    check "the container's seccomp filter is the profile (config.json of its bundle)" \
        diff <(jq -S . "$PROFILE") <(jq -S .linux.seccomp "$BUNDLES/cfsec/cfsec-qemu/config.json")
    n=$((GUEST_TIMEOUT * 5))
    while ((n-- > 0)) && kill -0 "$(cat "$PIDS/ctr-qemu.pid")" 2>/dev/null && ! grep -q GUEST-DONE "$out"; do sleep 0.2; done
    timing "ctr run -> guest done (TCG)" $(($(ms_now) - t0))
    sed 's/^/  | /' "$out"
    check "guest under the profile: eth0 on cvd-mtap-01 is up (192.168.97.2/30)" grep -q 'GUEST-NET-UP .*eth0 192.168.97.2/30' "$out"
    check "guest under the profile: eth1 on cvd-etap-01 leased 192.168.98.x by DHCP" grep -q 'GUEST-DHCP bound ip=192\.168\.98\.' "$out"
    check "guest under the profile: pings the host side 192.168.97.1 through qemu's TAP (3/3)" bash -c \
        "grep -q GUEST-FIRST-PING '$out' && grep -q 'GUEST-PING3 3 packets transmitted, 3 packets received' '$out'"
    check "guest under the profile: reaches the end of its init and powers off" grep -q GUEST-DONE "$out"
    check "qemu printed no seccomp or permission error" bash -c "! grep -Eqi 'seccomp|operation not permitted|bad system call' '$out'"
    wait_pid_saved ctr-qemu 30
    kill_saved udhcpd
    ip netns del $POD
}
wait_pid_saved() { # NAME SECONDS: wait for a recorded child to exit, then forget it
    local pid n=$(($2 * 10))
    pid=$(cat "$PIDS/$1.pid" 2>/dev/null) || return 0
    while ((n-- > 0)) && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    kill_saved "$1"
}

# --- main ----------------------------------------------------------------------------------------
cfsec_cleanup >/dev/null 2>&1
if findmnt -rn -o TARGET | grep -q "^$RUN/"; then echo "something is still mounted under $RUN: not removing it" >&2; exit 1; fi
rm -rf --one-file-system "$RUN"
mkdir -p "$RUN" "$LOG" "$PIDS" "$CACHE"
: >"$RESULTS"
ROOT_BEFORE=$(root_ns_snapshot)
STEP=prepare
need_pkgs containerd runc jq busybox-static libcap2-bin gcc libc6-dev iproute2 util-linux procps xz-utils \
    qemu-system-x86 python3 python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc || exit 1
dpkg-query -W containerd runc libseccomp2 qemu-system-x86 | sed 's/^/  /'
echo "profile under test: $PROFILE"
if [ ! -x "$PROBE_BIN" ] || [ "$HERE/seccomp/probe.c" -nt "$PROBE_BIN" ]; then
    gcc -O2 -Wall -static -o "$PROBE_BIN" "$HERE/seccomp/probe.c" || exit 1
fi
start_containerd || exit 1
import_images "$PROBE_BIN" || exit 1

for STEP in profile "${STEPS[@]}"; do
    printf '\n############ step %s\n' "$STEP"
    declare -F "step_$STEP" >/dev/null || { fail "unknown step"; continue; }
    "step_$STEP" || fail "step stopped early (rc $?)"
done

STEP=teardown
cfsec_cleanup
check "no cfsec-* netns left" bash -c "! ip netns list | grep -q '^cfsec-'"
check "the root network namespace is unchanged" test "$ROOT_BEFORE" = "$(root_ns_snapshot)"
npass=$(grep -c '^PASS' "$RESULTS")
nfail=$(grep -c '^FAIL' "$RESULTS")
printf '\n'
grep '^FAIL' "$RESULTS"
echo "RESULT: $npass passed, $nfail failed (logs: $LOG)"
[ "$nfail" -eq 0 ]
