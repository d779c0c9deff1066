#!/usr/bin/env bash
# End-to-end tests of cuttlefish-cni under real container runtimes, with a real guest VM.
#
#   sudo hack/e2e.sh                      # all steps: podman containerd cri guest
#   sudo hack/e2e.sh podman guest         # a subset
#
# Steps (each prints PASS/FAIL per check; the script exits 1 when any check fails):
#   podman      podman 4.3, network_backend "cni", chain [ptp + host-local] -> cuttlefish-cni
#               (select: all). Container: --cap-drop=ALL, uid 1000, no-new-privileges, a
#               /dev/net/tun device. Inside: the TAPs and bridges exist with their addresses, the
#               process attaches to cvd-mtap-01 with TUNSETIFF and cannot create a TAP of its own.
#               After `podman stop`: the (held) pod netns has nothing of ours, the log shows DEL ok.
#   containerd  containerd 1.6 started by hand, `ctr run --cni` under the CVD seccomp profile
#               (install/seccomp/cuttlefish-cvd.json), the same chain and checks. ctr
#               sends DEL with an empty CNI_NETNS; it must succeed, and the pod netns must be gone.
#   cri         containerd 1.6's CRI plugin driven like a kubelet (hack/e2e/cri.py), devices and
#               vsock CIDs from the agent's device plugin (Allocate through the kubelet stand-in).
#               Two CVD pods at once, both at instance 1 (cvd-mtap-01), each serving port 6520 on
#               its pod IP, with different VSOCK_CIDs. The CVD containers run as uid 1000 without
#               capabilities under install/seccomp/cuttlefish-cvd.json, with TAPs owned by uid 1000:
#               pod 0 attaches to every TAP and opens an AF_VSOCK socket, while uid 1001 is refused;
#               pod 1 runs the qemu guest, whose traffic leaves masqueraded, and connects to the
#               guest's link-local address over cvd-ebr on port 5554, as the fastboot proxy does.
#   guest       qemu (TCG) inside a podman container (uid 1000, no capabilities) boots a Debian
#               kernel on cvd-mtap-01, guest side 192.168.97.2/30 via 192.168.97.1 (as Cuttlefish
#               configures its mobile interface), and on cvd-etap-01 as eth1, which takes its
#               address by DHCP from cuttlefish-cni-agent (as Android's Ethernet does). The guest
#               reaches a peer namespace, and the peer sees the pod's address, never
#               192.168.97.2. The guest powers off, DEL runs.
#
# Environment: CUTTLEFISH_CNI_BIN=path (skip the build), ACCEL=tcg|kvm (default tcg),
# GUEST_TIMEOUT=seconds (default 240), CFE2E_WORK=dir (default /tmp/cfe2e).
# CFE2E_SABOTAGE=nat: self-test; deletes the pod's nft table before the guest boots, so the
# masquerade checks of the guest step must FAIL.
#
# Safety: every runtime runs inside the namespace cfe2e-node, so nothing lands in the root
# namespace (checked by a snapshot before and after). Traffic goes only to namespaces made here.
# Files outside the work area (/etc/cni/net.d/00-cfe2e.conflist, symlinks in /opt/cni/bin, and
# those directories if absent) are created only when absent, recorded, and removed on exit.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
source "$HERE/e2e/lib.sh"
[ "$(id -u)" = 0 ] || { echo "hack/e2e.sh needs root (namespaces, runtimes, mknod)" >&2; exit 1; }

STEPS=("$@")
((${#STEPS[@]})) || STEPS=(podman containerd cri guest)
ACCEL=${ACCEL:-tcg}
GUEST_TIMEOUT=${GUEST_TIMEOUT:-240}
IMG=localhost/cfe2e-busybox:latest
CTR_IMG=localhost/cfe2e-busybox-u1000:latest
LIMITS=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096) # root has no CAP_SYS_RESOURCE here
CD=$RUN/containerd
CTR=(ctr --address "$CD/containerd.sock" --namespace cfe2e)
SECCOMP_PROFILE=$REPO/install/seccomp/cuttlefish-cvd.json
VAR_LIB_CNI_EXISTED=$([ -d /var/lib/cni ] && echo 1 || echo 0)
VAR_LIB_CONTAINERS_EXISTED=$([ -d /var/lib/containers ] && echo 1 || echo 0)

pm() { in_node "${PODMAN[@]}" "$@"; } # podman, hence conmon and the CNI plugins, in cfe2e-node
ctr_() { in_node "${CTR[@]}" "$@"; }
# podman keeps everything under $RUN/podman; crun refuses this host's hybrid cgroups: runc
P=$RUN/podman
export CONTAINERS_CONF=$P/containers.conf # inherited by conmon's exit command (podman cleanup)
PODMAN=(podman --root "$P/root" --runroot "$P/run" --tmpdir "$P/tmp" --storage-driver overlay
    --cgroup-manager cgroupfs --events-backend file --network-backend cni
    --network-config-dir "$P/net.d" --runtime runc)
podman_setup() {
    mkdir -p "$P"/{root,run,tmp,net.d}
    cat >"$CONTAINERS_CONF" <<EOF
[network]
network_backend = "cni"
cni_plugin_dirs = ["$CNIBIN"]
network_config_dir = "$P/net.d"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    write_conflist "$P/net.d/00-$NET.conflist"
}

cleanup() {
    set +e
    trap - ERR
    if [ -e /run/netns/$NODE ] && [ -f "$CONTAINERS_CONF" ]; then
        pm rm -f -t 0 cfe2e-p1 cfe2e-vm1 >/dev/null 2>&1
    fi
    if [ -f "$PIDS/containerd.pid" ] && [ -e /run/netns/$NODE ]; then
        ctr_ task kill -s KILL c1 >/dev/null 2>&1
        sleep 0.5
        ctr_ task rm -f c1 >/dev/null 2>&1
        ctr_ container rm c1 >/dev/null 2>&1
    fi
    kill_saved ctr-run
    kill_saved containerd
    cri_cleanup
    kill_saved agent
    teardown_topology # also kills, by PID, the shims and conmons left in cfe2e-node
    umount_under_work
    ledger_undo
    if [ "$VAR_LIB_CNI_EXISTED" = 0 ] && [ -d /var/lib/cni ]; then # libcni's cache, made by the runtimes for us
        find /var/lib/cni -depth -type d -empty -delete 2>/dev/null
    fi
    # podman (root) writes its blob-info cache to /var/lib/containers/cache whatever --root says;
    # remove it only when we made the directory and nothing else is in it
    if [ "$VAR_LIB_CONTAINERS_EXISTED" = 0 ] && [ "$(ls -A /var/lib/containers 2>/dev/null)" = cache ] &&
        [ "$(ls -A /var/lib/containers/cache)" = blob-info-cache-v1.boltdb ]; then
        rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb
        rmdir /var/lib/containers/cache /var/lib/containers
    fi
}
STEP_PID=
on_signal() { # stop the running step (by its PID), then exit: the EXIT trap cleans up
    echo "signal $1: stopping" >&2
    [ -n "$STEP_PID" ] && kill "$STEP_PID" 2>/dev/null
    exit $((128 + $(kill -l "$1")))
}
trap cleanup EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

# ---------------------------------------------------------------------------------------------------
step_prepare() {
    need_pkgs podman conmon runc containerd golang-github-containers-common containernetworking-plugins \
        qemu-system-x86 busybox-static tcpdump gcc libc6-dev jq nftables iproute2 util-linux libcap2-bin procps xz-utils \
        python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc
    dpkg-query -W podman containerd runc conmon containernetworking-plugins qemu-system-x86 busybox-static | sed 's/^/  /'
    local bin=${CUTTLEFISH_CNI_BIN:-} t0
    if [ -z "$bin" ]; then
        say "building the plugin: CARGO_TARGET_DIR=/tmp/e2e-target hack/build-release.sh"
        t0=$(ms_now)
        bin=$(cd "$REPO" && PATH=$(cargo_path) CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/e2e-target} hack/build-release.sh)/cuttlefish-cni
        timing "plugin build (cargo, release, static)" $(($(ms_now) - t0))
    fi
    [ -x "$bin" ] || { echo "no plugin binary at $bin"; return 1; }
    echo "plugin: $bin ($(stat -c %s "$bin") bytes; $(file -b "$bin" 2>/dev/null | cut -d, -f1-2))"
    check "plugin binary is static (ldd)" bash -c "ldd '$bin' 2>&1 | grep -Eq 'statically linked|not a dynamic executable'"
    setup_cni_bin "$bin"
    # The DHCP node agent for the bridges (README, "DHCP on the bridges"): ours, by PID.
    local agent
    agent=$(dirname "$bin")/cuttlefish-cni-agent
    [ -x "$agent" ] || { echo "no cuttlefish-cni-agent beside the plugin ($agent)"; return 1; }
    # its device plugin serves the kubelet stand-in of the cri step, from device nodes made here
    make_dev_root "$RUN/dev-root"
    "$agent" --socket "$AGENT_SOCK" --state-dir "$RUN/agent-state" --device-plugin-dir "$DEVICE_PLUGINS" \
        --dev-root "$RUN/dev-root" --cid-range 10-41 --metrics-address 127.0.0.1:0 >"$LOG/agent.log" 2>&1 &
    save_pid agent $!
    echo "$agent" >"$RUN/agent-path"
    check "the DHCP agent answers on $AGENT_SOCK" wait_for 10 "$agent" status --socket "$AGENT_SOCK"
    mkdir -p "$CACHE"
    if [ ! -x "$CACHE/tunprobe" ] || [ "$HERE/e2e/tunprobe.c" -nt "$CACHE/tunprobe" ]; then
        gcc -O2 -Wall -static -o "$CACHE/tunprobe" "$HERE/e2e/tunprobe.c"
    fi
    if [ ! -x "$CACHE/seccomp-probe" ] || [ "$HERE/seccomp/probe.c" -nt "$CACHE/seccomp-probe" ]; then
        gcc -O2 -Wall -static -o "$CACHE/seccomp-probe" "$HERE/seccomp/probe.c"
    fi
    make_tun_node
    t0=$(ms_now)
    build_guest
    timing "guest kernel + initramfs" $(($(ms_now) - t0))
    make_rootfs_tar "$RUN/rootfs.tar"
    # what a fresh netns starts with; DEL must bring the pod back to it
    ip netns add $PROBE
    ip netns exec $PROBE cat /proc/sys/net/ipv4/ip_forward >"$RUN/fresh-ip-forward"
    ip netns del $PROBE
    setup_topology
    : >"$PLUGIN_LOG"
}

# shared checks on what a container printed (cfe2e-inside) -------------------------------------------
check_inside() { # FILE
    local f=$1
    check "inside: uid 1000, CapEff 0, CapBnd 0, NoNewPrivs 1" bash -c "grep -q '^IN-ID uid=1000' '$f' &&
        grep -q '^IN-CapEff: 0000000000000000' '$f' && grep -q '^IN-CapBnd: 0000000000000000' '$f' && grep -q '^IN-NoNewPrivs: 1' '$f'"
    check "inside: /sys/class/net has cvd-ebr cvd-wbr cvd-mtap-01 cvd-wifiap-01 cvd-etap-01 cvd-wtap-01" \
        bash -c "[ \$(grep -c '^IN-LINK cvd-' '$f') = 6 ] && ! grep -q '^IN-NOLINK' '$f'"
    check "inside: cvd-etap-01 is a port of cvd-ebr, cvd-wtap-01 of cvd-wbr" bash -c \
        "grep -q '^IN-LINK cvd-etap-01 master=cvd-ebr ' '$f' && grep -q '^IN-LINK cvd-wtap-01 master=cvd-wbr ' '$f'"
    check "inside: the TAPs are persistent tap+no_pi+vnet_hdr (tun_flags 0x5802)" bash -c \
        "[ \$(grep -E '^IN-LINK cvd-(mtap|wifiap|etap|wtap)-01 .*tun_flags=0x5802 ' '$f' | wc -l) = 4 ]"
    check "inside: addresses 192.168.97.1/30 (mtap), 192.168.94.1/30 (wifiap), 192.168.98.1/24 (ebr), 192.168.96.1/24 (wbr)" bash -c \
        "grep -q '^IN-ADDR cvd-mtap-01 192.168.97.1/30' '$f' && grep -q '^IN-ADDR cvd-wifiap-01 192.168.94.1/30' '$f' &&
         grep -q '^IN-ADDR cvd-ebr 192.168.98.1/24' '$f' && grep -q '^IN-ADDR cvd-wbr 192.168.96.1/24' '$f'"
    check "inside: ip_forward is 1 in the pod" grep -q '^IN-IP-FORWARD 1' "$f"
    check "inside: uid 1000 attaches to cvd-mtap-01 and cvd-wifiap-01 (TUNSETIFF IFF_TAP|IFF_NO_PI|IFF_VNET_HDR)" bash -c \
        "grep -q '^TUNPROBE-ATTACH-OK cvd-mtap-01' '$f' && grep -q '^TUNPROBE-ATTACH-OK cvd-wifiap-01' '$f'"
    check "inside: the same process cannot create a TAP of its own (EPERM)" grep -q '^TUNPROBE-CREATE-DENIED Operation not permitted' "$f"
    check "inside: the pod reaches the peer through the primary plugin" grep -q "^IN-PEER PEER-SAW 10\.251\.1\." "$f"
}
# host-side checks on a running pod's netns
check_pod_netns_built() { # NETNS_PATH
    local objs
    objs=$(cuttlefish_objects "$1")
    check "pod netns: 6 cvd-* links and nft table ip cuttlefish_nat" bash -c "[ \$(grep -c '^link cvd-' <<<'$objs') = 6 ] && grep -qx nft <<<'$objs'"
    nsenter --net="$1" nft list table ip cuttlefish_nat >"$RUN/nft-$STEP.txt" 2>&1 || true
    check "pod netns: masquerade for 192.168.97.0/30, 192.168.94.0/30, 192.168.98.0/24, 192.168.96.0/24" bash -c \
        "for s in 192.168.97.0/30 192.168.94.0/30 192.168.98.0/24 192.168.96.0/24; do
           grep -Eq \"ip saddr \$s .*masquerade\" '$RUN/nft-$STEP.txt' || exit 1; done"
}
check_pod_netns_clean() { # NETNS_PATH
    local objs fwd
    objs=$(cuttlefish_objects "$1")
    [ -z "$objs" ] || echo "left in the pod netns: $(echo $objs)"
    check "after DEL: no cvd-* link and no cuttlefish_nat table in the pod netns" test -z "$objs"
    check "after DEL: the primary's eth0 is gone too" bash -c "! nsenter --net='$1' ip link show eth0 >/dev/null 2>&1"
    fwd=$(nsenter --net="$1" cat /proc/sys/net/ipv4/ip_forward)
    check "after DEL: ip_forward back to a fresh netns's value ($(cat "$RUN/fresh-ip-forward"))" test "$fwd" = "$(cat "$RUN/fresh-ip-forward")"
}
wait_for() { # SECONDS CMD...: poll CMD every 0.1 s
    local n=$(($1 * 10))
    shift
    while ((n-- > 0)); do "$@" && return 0; sleep 0.1; done
    return 1
}

# ---------------------------------------------------------------------------------------------------
step_podman() {
    local t0 cid sandbox held=$RUN/held-podman-netns out=$LOG/podman-inside.txt
    podman_setup
    pm import --change 'CMD ["/bin/sh"]' "$RUN/rootfs.tar" $IMG >/dev/null
    echo "network backend: $(pm info --format '{{.Host.NetworkBackend}}')"
    pm network ls
    check "podman (backend cni) lists network $NET with driver ptp" bash -c \
        "[ \"\$(CONTAINERS_CONF=$CONTAINERS_CONF nsenter --net=/run/netns/$NODE ${PODMAN[*]} network inspect $NET --format '{{.Driver}}')\" = ptp ]"
    t0=$(ms_now)
    pm run -d --name cfe2e-p1 "${LIMITS[@]}" --network $NET --cap-drop=ALL --user 1000:1000 \
        --security-opt no-new-privileges --device "$RUN/dev/tun:/dev/net/tun" $IMG /bin/cfe2e-inside $PEER_IP >/dev/null
    timing "podman run -d (netns + chain ADD + start)" $(($(ms_now) - t0))
    wait_for 30 bash -c "CONTAINERS_CONF=$CONTAINERS_CONF nsenter --net=/run/netns/$NODE ${PODMAN[*]} logs cfe2e-p1 2>&1 | grep -q IN-READY" || true
    pm logs cfe2e-p1 >"$out" 2>&1
    sed 's/^/  | /' "$out"
    cid=$(pm inspect -f '{{.Id}}' cfe2e-p1)
    sandbox=$(pm inspect -f '{{.NetworkSettings.SandboxKey}}' cfe2e-p1)
    echo "container $cid, pod netns $sandbox"
    check_inside "$out"
    check "plugin log: command=ADD for the container, outcome=ok" plugin_log_has ADD "$cid"
    check_pod_netns_built "$sandbox"
    check "node: ptp's host-side veth is in cfe2e-node" bash -c "[ -n \"\$(ip -n $NODE -o link show type veth | grep -v ' cfe2e-up0@')\" ]"
    touch "$held"
    mount --bind "$sandbox" "$held" # keep the pod netns, to look into it after the stop
    t0=$(ms_now)
    pm stop -t 2 cfe2e-p1 >/dev/null
    timing "podman stop (incl. chain DEL)" $(($(ms_now) - t0))
    check "plugin log: command=DEL for the container, outcome=ok" wait_for 10 plugin_log_has DEL "$cid"
    grep -E "container=$cid/eth0" "$PLUGIN_LOG" | sed 's/^/  log: /'
    check_pod_netns_clean "$held"
    check "node: no pod veth left in cfe2e-node; host-local lease released" bash -c \
        "[ -z \"\$(ip -n $NODE -o link show type veth | grep -v ' cfe2e-up0@')\" ] && ! ls '$RUN/ipam/$NET' 2>/dev/null | grep -q '^10\.251\.'"
    umount "$held"
    rm -f "$held"
    pm rm cfe2e-p1 >/dev/null
}

# ---------------------------------------------------------------------------------------------------
step_containerd() {
    local t0 f c capdrop=() tpid nsino out=$LOG/ctr-inside.txt cni_id
    # ctr hard-codes the plugin dir /opt/cni/bin and the conf dir /etc/cni/net.d (first file wins)
    ensure_dir "$SYS_BIN"
    ensure_dir "$(dirname "$SYS_CONF")"
    for f in ptp host-local loopback; do
        own_symlink "/usr/lib/cni/$f" "$SYS_BIN/$f" || echo "note: $SYS_BIN/$f exists already and is used as it is"
    done
    own_symlink "$CNIBIN/cuttlefish-cni" "$SYS_BIN/cuttlefish-cni" ||
        { fail "$SYS_BIN/cuttlefish-cni exists and is not ours: not replacing it"; return 1; }
    write_conflist "$RUN/ctr.conflist"
    own_file "$RUN/ctr.conflist" "$SYS_CONF" || { fail "$SYS_CONF exists and is not ours"; return 1; }
    f=$(ls /etc/cni/net.d | grep -E '\.(conf|conflist|json)$' | sort | head -1)
    check "ctr will read our conflist (first of: $(ls /etc/cni/net.d | tr '\n' ' '))" test "$f" = "$(basename "$SYS_CONF")"

    mkdir -p "$CD"
    cat >"$CD/config.toml" <<EOF
version = 2
root = "$CD/root"
state = "$CD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CD/containerd.sock"
[ttrpc]
  address = "$CD/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CD/opt"
EOF
    t0=$(ms_now)
    nsenter --net=/run/netns/$NODE containerd --config "$CD/config.toml" >"$LOG/containerd.log" 2>&1 &
    save_pid containerd $!
    wait_for 20 bash -c "nsenter --net=/run/netns/$NODE ${CTR[*]} version >/dev/null 2>&1"
    timing "containerd start" $(($(ms_now) - t0))
    make_docker_archive "$RUN/rootfs.tar" "$RUN/ctr-image.tar" $CTR_IMG 1000:1000 # ctr has no --user
    ctr_ images import "$RUN/ctr-image.tar" >/dev/null
    # NoNewPrivileges is ctr's default
    mapfile -t capdrop < <(all_caps_dropped)
    # --device adds the cgroup rule for c 10:200 (not in containerd's default list); the bind
    # mount puts our 0666 node over the 0600 copy of the host's node
    t0=$(ms_now)
    # under the CVD pod's Localhost seccomp profile (install/seccomp/cuttlefish-cvd.json)
    nsenter --net=/run/netns/$NODE "${CTR[@]}" run --cni --seccomp --seccomp-profile "$SECCOMP_PROFILE" \
        "${capdrop[@]}" --device /dev/net/tun \
        --mount "type=bind,src=$RUN/dev/tun,dst=/dev/net/tun,options=rbind:rw" --pid-file "$RUN/ctr-task.pid" \
        $CTR_IMG c1 /bin/cfe2e-inside $PEER_IP </dev/null >"$out" 2>&1 &
    save_pid ctr-run $!
    wait_for 30 grep -q IN-READY "$out" || true
    timing "ctr run --cni to IN-READY (netns + chain ADD + start + probes)" $(($(ms_now) - t0))
    sed 's/^/  | /' "$out"
    check_inside "$out"
    tpid=$(cat "$RUN/ctr-task.pid")
    nsino=$(stat -L -c %i /proc/$tpid/ns/net)
    cni_id=$(grep -oE 'command=ADD .*container=[^ ]*c1/eth0' "$PLUGIN_LOG" | tail -1 | sed -E 's/.*container=([^ ]*)\/eth0/\1/')
    echo "task pid $tpid, pod netns /proc/$tpid/ns/net (net:[$nsino]), CNI container id ${cni_id:-?}"
    check "the container runs under $(basename "$SECCOMP_PROFILE") (Seccomp: 2, and it is the bundle's linux.seccomp)" bash -c \
        "grep -Eq '^Seccomp:\s+2' /proc/$tpid/status &&
         diff <(jq -S . '$SECCOMP_PROFILE') <(jq -S .linux.seccomp '$CD/state/io.containerd.runtime.v2.task/cfe2e/c1/config.json') >/dev/null"
    check "plugin log: command=ADD for the container, outcome=ok" plugin_log_has ADD "${cni_id:-none}"
    check_pod_netns_built /proc/$tpid/ns/net
    t0=$(ms_now)
    ctr_ task kill -s TERM c1
    wait "$(cat "$PIDS/ctr-run.pid")" || true
    rm -f "$PIDS/ctr-run.pid"
    timing "task kill -> ctr run returned (incl. chain DEL)" $(($(ms_now) - t0))
    grep -E "container=${cni_id:-none}/eth0|DEL without a netns" "$PLUGIN_LOG" | sed 's/^/  log: /'
    check "plugin log: DEL with empty CNI_NETNS for the container, outcome=ok" bash -c \
        "grep -Eq 'command=DEL .*container=${cni_id:-none}/eth0 .*outcome=ok' '$PLUGIN_LOG' && grep -q 'DEL without a netns' '$PLUGIN_LOG'"
    check "after DEL: the pod netns is gone (no process or mount holds net:[$nsino]), and with it our objects" \
        wait_for 10 bash -c "! { ls -l /proc/[0-9]*/ns/net 2>/dev/null | grep -q 'net:\[$nsino\]' || grep -q 'net:\[$nsino\]' /proc/self/mountinfo; }"
    check "node: ptp's host-side veth gone from cfe2e-node; host-local lease released" wait_for 10 bash -c \
        "[ -z \"\$(ip -n $NODE -o link show type veth | grep -v ' cfe2e-up0@')\" ] && ! ls '$RUN/ipam/$NET' 2>/dev/null | grep -q '^10\.251\.'"
    ctr_ container rm c1 >/dev/null 2>&1 || true
    ctr_ task kill -s KILL c1 >/dev/null 2>&1 || true
    kill_saved containerd
}

# ---------------------------------------------------------------------------------------------------
step_guest() {
    local t0 t_run t_ping='' t_done='' t_del='' running cid sandbox qpid pod_ip held=$RUN/held-guest-netns out=$LOG/guest-console.txt
    local devs=(--device "$RUN/dev/tun:/dev/net/tun") qaccel="-accel tcg -cpu max"
    podman_setup
    pm image exists $IMG || pm import --change 'CMD ["/bin/sh"]' "$RUN/rootfs.tar" $IMG >/dev/null
    if [ "$ACCEL" = kvm ]; then
        mknod -m 0666 "$RUN/dev/kvm" c "$(stat -c %Hr /dev/kvm)" "$(stat -c %Lr /dev/kvm)"
        devs+=(--device "$RUN/dev/kvm:/dev/kvm")
        qaccel="-accel kvm -cpu host"
    fi
    local qemu="qemu-system-x86_64 $qaccel -machine q35 -m 256 -smp 1 -nodefaults -no-user-config
 -display none -serial stdio -no-reboot -kernel /guest/vmlinuz -initrd /guest/initramfs.cpio.gz
 -append 'console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init cfe2e.peer=$PEER_IP'
 -netdev tap,id=n0,ifname=cvd-mtap-01,script=no,downscript=no,vnet_hdr=on -device virtio-net-pci,netdev=n0
 -netdev tap,id=n1,ifname=cvd-etap-01,script=no,downscript=no,vnet_hdr=on -device virtio-net-pci,netdev=n1"
    echo "qemu command in the container: $(tr -s '\n ' ' ' <<<"$qemu")"
    # the image has busybox only: the host's /usr, read-only, provides qemu and its libraries
    t0=$(ms_now)
    pm run -d --name cfe2e-vm1 "${LIMITS[@]}" --network $NET --cap-drop=ALL --user 1000:1000 \
        --security-opt no-new-privileges "${devs[@]}" -v /usr:/usr:ro -v "$RUN/guest:/guest:ro" $IMG \
        /bin/sh -c "echo \"VM-ID \$(id)\"; exec $(tr '\n' ' ' <<<"$qemu")" >/dev/null
    t_run=$(($(ms_now) - t0))
    cid=$(pm inspect -f '{{.Id}}' cfe2e-vm1)
    sandbox=$(pm inspect -f '{{.NetworkSettings.SandboxKey}}' cfe2e-vm1)
    qpid=$(pm inspect -f '{{.State.Pid}}' cfe2e-vm1)
    touch "$held"
    mount --bind "$sandbox" "$held"
    pod_ip=$(nsenter --net="$held" ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
    echo "container $cid, pod netns $sandbox, pod IP $pod_ip, pid $qpid"
    if [ "${CFE2E_SABOTAGE:-}" = nat ]; then # self-test of this script: the masquerade checks must FAIL
        echo "CFE2E_SABOTAGE=nat: deleting table ip cuttlefish_nat in the pod netns before the guest boots"
        nsenter --net="$held" nft delete table ip cuttlefish_nat
    fi
    sleep 0.5
    grep -E '^(Name|Uid|Gid|CapEff|CapBnd|NoNewPrivs):' /proc/$qpid/status 2>/dev/null | tr -s '\t' ' ' | sed 's/^/  qemu /'
    check "qemu runs as uid 1000 with CapEff 0, CapBnd 0, NoNewPrivs 1" bash -c "st=/proc/$qpid/status;
        grep -q '^Name:.qemu-system-x86' \$st && grep -Eq '^Uid:\s+1000\s+1000\s+1000\s+1000' \$st &&
        grep -Eq '^CapEff:\s+0+$' \$st && grep -Eq '^CapBnd:\s+0+$' \$st && grep -Eq '^NoNewPrivs:\s+1' \$st"
    check "qemu holds cvd-mtap-01 (the TAP has carrier)" wait_for 10 bash -c \
        "nsenter --net='$held' ip link show cvd-mtap-01 | grep -q LOWER_UP"
    local n=$((GUEST_TIMEOUT * 5))
    while ((n-- > 0)); do
        running=$(pm inspect -f '{{.State.Running}}' cfe2e-vm1) # before the logs: no line is missed
        pm logs cfe2e-vm1 >"$out" 2>&1 || true
        [ -z "$t_ping" ] && grep -q GUEST-FIRST-PING "$out" && t_ping=$(($(ms_now) - t0))
        grep -q GUEST-DONE "$out" && { t_done=$(($(ms_now) - t0)); break; }
        [ "$running" = true ] || break
        sleep 0.2
    done
    # the guest powers off, the container exits, conmon's exit command runs the chain DEL
    wait_for 30 plugin_log_has DEL "$cid" && t_del=$(($(ms_now) - t0))
    pm logs cfe2e-vm1 2>&1 | tr -d '\r' | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' | grep -v '^\s*$' >"$out"
    sed 's/^/  | /' "$out"
    check "plugin log: command=ADD for the VM container, outcome=ok" plugin_log_has ADD "$cid"
    check "guest: eth0 192.168.97.2/30, default via 192.168.97.1 (Cuttlefish's mobile interface)" \
        grep -q 'GUEST-NET-UP .*eth0 192.168.97.2/30 default via 192.168.97.1' "$out"
    check "guest: eth1 (on cvd-etap-01, a port of cvd-ebr) leased 192.168.98.x/24, router 192.168.98.1 and the DNS servers by DHCP from the agent" \
        grep -Eq 'GUEST-DHCP bound ip=192\.168\.98\.([2-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-4]) mask=255\.255\.255\.0 router=192\.168\.98\.1 dns=8\.8\.8\.8 8\.8\.4\.4 lease=3600' "$out"
    check "the agent counted the lease" bash -c "'$(cat "$RUN/agent-path")' status --socket '$AGENT_SOCK' | grep -Eq '\"leases_given\": [1-9]'"
    check "guest: ping to the peer $PEER_IP answered (3/3)" bash -c \
        "grep -q GUEST-FIRST-PING '$out' && grep -q 'GUEST-PING3 3 packets transmitted, 3 packets received' '$out'"
    check "guest: the peer's HTTP answer says it saw the pod IP $pod_ip" grep -q "GUEST-WGET PEER-SAW $pod_ip\$" "$out"
    echo "peer tcpdump (ICMP lines):"
    grep ICMP "$LOG/peer-tcpdump.log" | head -4 | sed 's/^/  /'
    check "peer tcpdump: ICMP echo requests from the pod IP $pod_ip" grep -q "IP $pod_ip > $PEER_IP: ICMP echo request" "$LOG/peer-tcpdump.log"
    check "peer never saw 192.168.97.x (tcpdump, CGI log): the masquerade" bash -c \
        "! grep -q '192\.168\.97\.' '$LOG/peer-tcpdump.log' '$LOG/peer-seen.log'"
    check "plugin log: command=DEL after the guest powered off, outcome=ok" plugin_log_has DEL "$cid"
    check_pod_netns_clean "$held"
    umount "$held"
    rm -f "$held"
    pm rm -f cfe2e-vm1 >/dev/null
    timing "podman run -d returned (netns + chain ADD + start)" "$t_run"
    [ -n "$t_ping" ] && timing "podman run -> guest's first answered ping ($ACCEL)" "$t_ping"
    [ -n "$t_done" ] && timing "podman run -> guest done ($ACCEL)" "$t_done"
    [ -n "$t_del" ] && timing "podman run -> DEL logged after poweroff" "$t_del"
    return 0
}

# ---------------------------------------------------------------------------------------------------
# cri: containerd's CRI plugin driven like a kubelet (hack/e2e/cri.py). Two CVD pods at once, both at
# instance 1 (cvd-mtap-01), each serving on port 6520 of its own pod IP.
CRI=$RUN/containerd-cri
CRI_SOCK=$CRI/containerd.sock
CRI_PAUSE=localhost/cfe2e-pause:latest
cri_start() {
    mkdir -p "$CRI/net.d"
    write_conflist "$CRI/net.d/10-$NET.conflist"
    write_containerd_config "$CRI" $CRI_PAUSE "$CNIBIN" "$CRI/net.d"
    ls /run/netns >"$RUN/netns-before-cri"
    nsenter --net=/run/netns/$NODE containerd --config "$CRI/config.toml" >"$LOG/containerd-cri.log" 2>&1 &
    save_pid containerd-cri $!
    local ctr=(ctr --address "$CRI_SOCK" --namespace k8s.io)
    wait_for 20 bash -c "nsenter --net=/run/netns/$NODE ${ctr[*]} version >/dev/null 2>&1"
    make_docker_archive "$RUN/rootfs.tar" "$RUN/cri-pause.tar" $CRI_PAUSE "" "$PAUSE_CMD"
    make_docker_archive "$RUN/rootfs.tar" "$RUN/cri-image.tar" $IMG ""
    in_node "${ctr[@]}" images import "$RUN/cri-pause.tar" >/dev/null
    in_node "${ctr[@]}" images import "$RUN/cri-image.tar" >/dev/null
}
cri() { PYTHONPATH="$RUN/cri-py" in_node python3 "$HERE/e2e/cri.py" "$1" "$CRI_SOCK" "${@:2}"; }
# after a step that stopped early: the sandboxes it started go as a kubelet would remove them, and
# a pod netns the CRI plugin made for this run and still keeps is removed with containerd
cri_cleanup() {
    [ -f "$PIDS/containerd-cri.pid" ] && [ -f "$RUN/cri-state.json" ] && cri down "$RUN/cri-state.json" >/dev/null 2>&1
    kill_saved containerd-cri
    local ns
    [ -f "$RUN/netns-before-cri" ] || return 0
    for ns in $(ls /run/netns | grep '^cni-' | grep -vxFf "$RUN/netns-before-cri"); do ip netns del "$ns"; done
    rm -f "$RUN/netns-before-cri"
}
# the kubelet's side of the device plugin: each pod's envs and devices, one JSON line a pod
device_plugin_allocate() { # VSOCK_CIDS_PER_POD...
    PATH=$(cargo_path) "$HERE/device-plugin/stubs.sh" "$RUN/dp-py"
    PYTHONPATH="$RUN/dp-py" /usr/bin/python3 "$HERE/device-plugin/kubelet_stand_in.py" allocate "$DEVICE_PLUGINS" "$@"
}
# cri pod 0: the CVD container probes what a CVD needs (uid 1000, no capability, our seccomp
# profile); a second container as uid 1001 must not attach to the TAPs
CRI_PROBE='echo "IN-ID $(id)"; grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status | tr -s "\t" " " | sed "s/^/IN-/"
    echo "IN-VSOCK-CID $VSOCK_CID"
    echo "IN-TAP-OWNER $(cat /sys/class/net/cvd-mtap-01/owner)"
    for t in cvd-mtap-01 cvd-wifiap-01 cvd-etap-01 cvd-wtap-01; do tunprobe attach $t; done
    seccomp-probe | grep -E "^PROBE (seccomp-mode|socket-vsock|socket-alg|add_key) "
    httpd -p 6520 -h /tmp && echo IN-READY; trap "exit 0" TERM; sleep 600 & wait'
CRI_OTHER_UID='tunprobe attach cvd-mtap-01; echo OTHER-DONE; trap "exit 0" TERM; sleep 600 & wait'
# cri pod 1: the CVD container runs the qemu guest on cvd-mtap-01 and cvd-etap-01 and, as
# Cuttlefish's fastboot proxy does, connects to the guest's link-local address over cvd-ebr
GUEST_ETH1_MAC=02:00:00:00:01:01 GUEST_ETH1_LL=fe80::ff:fe00:101
cri_vm_script() {
    cat <<EOF
echo "IN-ID \$(id)"; grep -E "^(CapEff|Seccomp):" /proc/self/status | tr -s "\t" " " | sed "s/^/IN-/"
echo "IN-VSOCK-CID \$VSOCK_CID"
echo "IN-TAP-OWNER \$(cat /sys/class/net/cvd-mtap-01/owner)"
seccomp-probe | grep -E "^PROBE socket-vsock "
httpd -p 6520 -h /tmp
/usr/bin/qemu-system-x86_64 -accel tcg -cpu max -machine q35 -m 256 -smp 1 -nodefaults -no-user-config \\
 -display none -serial stdio -no-reboot -kernel /guest/vmlinuz -initrd /guest/initramfs.cpio.gz \\
 -append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init cfe2e.peer=$PEER_IP cfe2e.fastboot=$GUEST_TIMEOUT" \\
 -netdev tap,id=n0,ifname=cvd-mtap-01,script=no,downscript=no,vnet_hdr=on -device virtio-net-pci,netdev=n0 \\
 -netdev tap,id=n1,ifname=cvd-etap-01,script=no,downscript=no,vnet_hdr=on -device virtio-net-pci,netdev=n1,mac=$GUEST_ETH1_MAC &
n=0
while [ \$n -lt $GUEST_TIMEOUT ]; do
    answer=\$(echo POD-HELLO | timeout 3 nc $GUEST_ETH1_LL%cvd-ebr 5554 2>/dev/null) && [ -n "\$answer" ] && break
    n=\$((n + 1)); sleep 1
done
echo "IN-FASTBOOT \$answer"
wait
echo VM-DONE; trap "exit 0" TERM; sleep 600 & wait
EOF
}
step_cri() {
    local spec=$RUN/cri-spec.json state=$RUN/cri-state.json n ip out sandbox profile=$REPO/install/seccomp/cuttlefish-cvd.json
    cri_stubs "$RUN/cri-py"
    cri_start
    device_plugin_allocate 1 1 >"$RUN/allocations.jsonl"
    sed 's/^/  allocated: /' "$RUN/allocations.jsonl"
    check "the device plugin gave the two pods different vsock CIDs" \
        test "$(sed -n 1p "$RUN/allocations.jsonl" | jq -r .envs.VSOCK_CID)" != "$(sed -n 2p "$RUN/allocations.jsonl" | jq -r .envs.VSOCK_CID)"
    jq -n --arg pause $CRI_PAUSE --arg image $IMG --arg work "$CRI" --arg probe "$CRI_PROBE" --arg other "$CRI_OTHER_UID" \
        --arg vm "$(cri_vm_script)" --arg profile "$profile" --arg guest "$RUN/guest" --slurpfile alloc "$RUN/allocations.jsonl" '
        def cvd($n; $script; $marker; $mounts): {name: "cvd", user: 1000, group: 1000, command: ["/bin/sh", "-c", $script],
            envs: $alloc[$n].envs, devices: $alloc[$n].devices, mounts: $mounts, seccomp: $profile, marker: $marker};
        {pause: $pause, image: $image, workdir: $work, timeout: 300,
         pods: [
           {name: "cvd-0", annotations: {"cuttlefish.dev/instances": "1", "cuttlefish.dev/tap-owner": "1000"},
            containers: [cvd(0; $probe; "IN-READY"; []),
                         {name: "uid-1001", user: 1001, group: 1001, command: ["/bin/sh", "-c", $other],
                          devices: $alloc[0].devices, seccomp: $profile, marker: "OTHER-DONE"}]},
           {name: "cvd-1", annotations: {"cuttlefish.dev/instances": "1", "cuttlefish.dev/tap-owner": "1000"},
            containers: [cvd(1; $vm; "VM-DONE"; [{host: "/usr", container: "/usr", readonly: true},
                                                 {host: $guest, container: "/guest", readonly: true}])]}]}' >"$spec"
    cri up "$spec" "$state"
    for n in 0 1; do
        out=$LOG/cri-inside-$n.txt
        jq -r ".pods[$n].containers[0].output" "$state" | tr -d '\r' >"$out"
        ip=$(jq -r ".pods[$n].ip" "$state")
        sed "s/^/  cvd-$n | /" "$out"
        check "cvd-$n: uid 1000, CapEff 0, our seccomp filter on" bash -c "grep -q '^IN-ID uid=1000' '$out' &&
            grep -q '^IN-CapEff: 0000000000000000' '$out' && grep -q '^IN-Seccomp: 2' '$out'"
        check "cvd-$n: VSOCK_CID from the device plugin" grep -qx "IN-VSOCK-CID $(sed -n "$((n + 1))p" "$RUN/allocations.jsonl" | jq -r .envs.VSOCK_CID)" "$out"
        check "cvd-$n: instance 1 (cvd-mtap-01), its TAPs owned by uid 1000 (sysfs, seen from the pod)" \
            grep -qx 'IN-TAP-OWNER 1000' "$out"
        check "cvd-$n: port 6520 answers at its pod IP $ip from the node" wait_for 5 bash -c \
            "nsenter --net=/run/netns/$NODE busybox wget -q -O /dev/null http://$ip:6520/ 2>&1 | grep -q 404"
    done
    out=$LOG/cri-inside-0.txt
    check "cvd-0: uid 1000 attaches to every TAP" bash -c "[ \$(grep -c '^TUNPROBE-ATTACH-OK cvd-' '$out') = 4 ]"
    check "cvd-0: socket(AF_VSOCK) succeeds under the profile; AF_ALG and add_key are refused" bash -c \
        "grep -qx 'PROBE socket-vsock ok' '$out' && grep -qx 'PROBE socket-alg EPERM' '$out' && grep -qx 'PROBE add_key EPERM' '$out'"
    jq -r '.pods[0].containers[1].output' "$state" >"$LOG/cri-uid-1001.txt"
    check "cvd-0: uid 1001 in the same pod is refused (EPERM)" \
        grep -q '^TUNPROBE-ATTACH-FAILED cvd-mtap-01: Operation not permitted' "$LOG/cri-uid-1001.txt"
    out=$LOG/cri-inside-1.txt
    ip=$(jq -r '.pods[1].ip' "$state")
    check "cvd-1: the container that runs the guest opens an AF_VSOCK socket" grep -qx 'PROBE socket-vsock ok' "$out"
    check "cvd-1: the guest leased its eth1 address by DHCP" grep -q '^GUEST-DHCP bound ip=192\.168\.98\.' "$out"
    check "cvd-1: the guest reached the peer, which saw the pod IP $ip" grep -q "GUEST-WGET PEER-SAW $ip\$" "$out"
    check "cvd-1: the peer never saw 192.168.97.x (masqueraded)" bash -c \
        "! grep -q '192\.168\.97\.' '$LOG/peer-tcpdump.log' '$LOG/peer-seen.log'"
    check "cvd-1: fastboot-style TCP from uid 1000 to [$GUEST_ETH1_LL%cvd-ebr]:5554" bash -c \
        "grep -qx 'IN-FASTBOOT GUEST-FASTBOOT-HELLO' '$out' && grep -q '^GUEST-FASTBOOT-CONNECTED POD-HELLO' '$out'"
    check "the two pods have different pod IPs" test "$(jq -r '.pods[0].ip' "$state")" != "$(jq -r '.pods[1].ip' "$state")"
    cri down "$state"
    for n in 0 1; do
        sandbox=$(jq -r ".pods[$n].sandbox" "$state")
        check "cvd-$n: plugin log has ADD and DEL for its sandbox, outcome=ok" bash -c "plugin_log_has() { grep -E \"command=\$1 .*container=\$2/eth0 .*outcome=ok\" '$PLUGIN_LOG' >/dev/null; };
            plugin_log_has ADD $sandbox && plugin_log_has DEL $sandbox"
    done
    check "RemovePodSandbox removed both pod netns" bash -c \
        "! ls /run/netns | grep '^cni-' | grep -qvxFf '$RUN/netns-before-cri'"
    rm -f "$state"
    cri_cleanup
}

# ---------------------------------------------------------------------------------------------------
run_step() { # NAME: runs step_NAME in a subshell with errexit; an unexpected error fails the step
    local name=$1 t0 rc
    STEP=$name
    printf '\n############ step %s\n' "$name"
    t0=$(ms_now)
    rm -f "$RUN/step-error"
    # in the background, so that a signal to this script is handled at once (wait returns)
    (
        set -eE
        trap - INT TERM HUP
        trap 'echo "line $LINENO: $BASH_COMMAND (rc $?)" >"$RUN/step-error"' ERR
        "step_$name"
    ) &
    STEP_PID=$!
    wait $STEP_PID
    rc=$?
    STEP_PID=
    STEP_MS+=("$name: $(($(ms_now) - t0)) ms (rc $rc)")
    if [ $rc -ne 0 ]; then
        fail "step $name stopped early: $(cat "$RUN/step-error" 2>/dev/null || echo "rc $rc")"
    fi
    return $rc
}

T_START=$(ms_now)
STEP_MS=()
STEP=cleanup-previous
cleanup >/dev/null 2>&1
umount_under_work
if findmnt -rn -o TARGET | grep -q "^$RUN/"; then echo "something is still mounted under $RUN: not removing it" >&2; exit 1; fi
rm -rf --one-file-system "$RUN"
mkdir -p "$RUN" "$LOG" "$PIDS"
: >"$RESULTS"
ROOT_BEFORE=$(root_ns_snapshot)

if run_step prepare; then
    for s in "${STEPS[@]}"; do
        declare -F "step_$s" >/dev/null || { STEP=$s; fail "unknown step"; continue; }
        run_step "$s"
    done
else
    for s in "${STEPS[@]}"; do STEP=$s; fail "not run: prepare failed"; done
fi

STEP=teardown
printf '\n############ teardown\n'
t0=$(ms_now)
cleanup
STEP_MS+=("teardown: $(($(ms_now) - t0)) ms")
check "no cfe2e-* netns left" bash -c "! ip netns list | grep -q '^cfe2e-'"
check "nothing left that we created outside $W (ledger empty)" test ! -s "$LEDGER"
check "the root network namespace is unchanged (links, addresses, routes, nft, forwarding)" \
    test "$ROOT_BEFORE" = "$(root_ns_snapshot)"
[ "$ROOT_BEFORE" = "$(root_ns_snapshot)" ] || diff <(echo "$ROOT_BEFORE") <(root_ns_snapshot) | head -20

printf '\n############ summary\n'
cat "$RUN/timings.txt" 2>/dev/null
printf 'step wall times:\n'
printf '  %s\n' "${STEP_MS[@]}"
printf 'total wall time: %s ms (load average %s, %s CPUs)\n' $(($(ms_now) - T_START)) "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
npass=$(grep -c '^PASS' "$RESULTS")
nfail=$(grep -c '^FAIL' "$RESULTS")
grep '^FAIL' "$RESULTS"
echo "RESULT: $npass passed, $nfail failed (logs: $LOG)"
[ "$nfail" -eq 0 ]
