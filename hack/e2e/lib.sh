# hack/e2e/lib.sh: helpers for hack/e2e.sh (sourced, not run).
#
# Topology. Every address below lives only in namespaces this script creates; the root namespace
# gets no link, address, route or rule of ours.
#
#   cfe2e-up (peer)                   cfe2e-node ("the node")                  pod netns (made by the runtime)
#   eth0 10.251.0.1/24  <--veth-->    cfe2e-up0 10.251.0.2/24, ip_forward=1    eth0 10.251.1.x/24 (ptp + host-local)
#   route 10.251.1.0/24 via .0.2      runtimes run here; ptp's host    <-->    cvd-ebr, cvd-wbr, cvd-*-01 (cuttlefish-cni)
#   busybox httpd :80 (CGI whoami)    side veths land here                     nft ip cuttlefish_nat, ip_forward=1
#   tcpdump                           no default route: nothing leaves         guest 192.168.97.2/30 behind cvd-mtap-01
#
# Work area: $W (default /tmp/cfe2e). $W/cache survives runs (guest kernel, built helpers);
# $W/run is recreated by every run and holds state, logs and the results file.

W=${CFE2E_WORK:-/tmp/cfe2e}
CACHE=$W/cache
RUN=$W/run
LOG=$RUN/log
PIDS=$RUN/pids
RESULTS=$RUN/results.txt
LEDGER=$W/created.list # files, symlinks and directories we created outside $W (survives a crash)
NODE=cfe2e-node UP=cfe2e-up PROBE=cfe2e-probe
NET=cfe2e
POD_SUBNET=10.251.1.0/24 PEER_IP=10.251.0.1 NODE_UP_IP=10.251.0.2
GUEST_IP=192.168.97.2
PLUGIN_LOG=$LOG/cuttlefish-cni.log
AGENT_SOCK=$RUN/agent.sock # the DHCP node agent (cuttlefish-cni-agent), started by step_prepare
CNIBIN=$RUN/cni-bin
SYS_CONF=/etc/cni/net.d/00-cfe2e.conflist # ctr reads only /etc/cni/net.d (first file wins)
SYS_BIN=/opt/cni/bin                       # ctr reads only /opt/cni/bin
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# need_pkgs, root_ns_snapshot
source "$(dirname "${BASH_SOURCE[0]}")/../lib/host.sh"

ms_now() { date +%s%3N; }
say() { printf '\n=== [%s] %s\n' "${STEP:-setup}" "$*"; }
pass() { printf 'PASS: [%s] %s\n' "${STEP:-setup}" "$*" | tee -a "$RESULTS"; }
fail() { printf 'FAIL: [%s] %s\n' "${STEP:-setup}" "$*" | tee -a "$RESULTS"; }
# check DESCRIPTION CMD...: PASS when CMD succeeds, FAIL otherwise; never aborts the step.
check() {
    local desc=$1
    shift
    if "$@"; then pass "$desc"; else fail "$desc"; fi
}
timing() { printf 'TIMING: [%s] %s: %s ms\n' "${STEP:-setup}" "$1" "$2" | tee -a "$RUN/timings.txt"; }
in_node() { nsenter --net=/run/netns/$NODE "$@"; }

# --- cargo: found where rustup or the Debian image put it (PATH is reset above) -------------------
cargo_path() {
    local p=$PATH d
    for d in "${SUDO_USER:+$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo/bin}" /root/.cargo/bin /usr/local/cargo/bin; do
        [ -n "$d" ] && [ -d "$d" ] && p=$d:$p
    done
    echo "$p"
}
# cri_stubs OUT: Python stubs of the CRI v1 API (module v1_pb2) in OUT, generated with Debian's
# protoc from the api.proto that the k8s-cri crate ships (fetched once into $CACHE with cargo)
cri_stubs() {
    local out=$1 crate=k8s-cri version=0.11.0 proto=$CACHE/cri-proto/v1.proto tmp rc
    if [ ! -f "$proto" ]; then
        tmp=$(mktemp -d)
        mkdir -p "$tmp/src" "$(dirname "$proto")"
        : >"$tmp/src/lib.rs"
        printf '[package]\nname = "cri-proto"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = "=%s"\n' \
            $crate $version >"$tmp/Cargo.toml"
        PATH=$(cargo_path) cargo fetch --quiet --manifest-path "$tmp/Cargo.toml" &&
            tar -xzOf "$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/$crate-$version.crate | head -1)" \
                $crate-$version/proto/v1.proto >"$proto.new" && mv "$proto.new" "$proto"
        rc=$?
        rm -rf "$tmp"
        [ $rc -eq 0 ] || return 1
    fi
    mkdir -p "$out"
    protoc -I "$(dirname "$proto")" --python_out="$out" --grpc_python_out="$out" \
        --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin "$proto"
}

# --- things outside $W: created only when absent, recorded, removed on exit ------------------
ledger_add() { echo "$1 $2" >>"$LEDGER"; } # KIND PATH
# ensure_dir DIR: mkdir -p, recording every directory level that did not exist before
ensure_dir() {
    local d=$1 missing=()
    while [ ! -d "$d" ]; do missing=("$d" "${missing[@]}"); d=$(dirname "$d"); done
    for d in "${missing[@]}"; do mkdir "$d" && ledger_add dir "$d"; done
}
# own_symlink TARGET LINK: create LINK -> TARGET unless LINK exists. Returns 0 when LINK now
# points to TARGET (made by us now or by an earlier run), 1 when something else is there.
own_symlink() {
    local target=$1 link=$2
    if [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ]; then return 0; fi
    if [ -e "$link" ] || [ -L "$link" ]; then return 1; fi
    ln -s "$target" "$link" && ledger_add link "$link"
}
# own_file SRC DST: copy SRC to DST, which must not exist (or be ours from this ledger)
own_file() {
    local src=$1 dst=$2
    if [ -e "$dst" ] && ! grep -qxF "file $dst" "$LEDGER" 2>/dev/null; then return 1; fi
    cp "$src" "$dst" && { grep -qxF "file $dst" "$LEDGER" 2>/dev/null || ledger_add file "$dst"; }
}
ledger_undo() {
    [ -f "$LEDGER" ] || return 0
    local kind path
    # files and links first, then directories deepest first
    while read -r kind path; do
        case $kind in
        link) [ -L "$path" ] && rm -f "$path" ;;
        file) [ -f "$path" ] && rm -f "$path" ;;
        esac
    done <"$LEDGER"
    grep '^dir ' "$LEDGER" | cut -d' ' -f2- | sort -r | while read -r path; do
        rmdir "$path" 2>/dev/null || echo "note: $path not removed (not empty: something else uses it now)"
    done
    rm -f "$LEDGER"
}

# --- processes we start: recorded by PID, killed by PID ----------------------------------------
save_pid() { echo "$2" >"$PIDS/$1.pid"; }
kill_saved() {
    local f=$PIDS/$1.pid pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    rm -f "$f"
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}
# kill, by PID, what still runs in a namespace of ours (only our runtimes run there)
kill_netns_pids() {
    local ns=$1 pid
    [ -e "/run/netns/$ns" ] || return 0
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    sleep 0.3
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
}
# unmount everything mounted below $W (held netns, runtime leftovers), deepest first
umount_under_work() {
    local m
    findmnt -rn -o TARGET 2>/dev/null | grep -E "^$W/" | awk '{print length, $0}' | sort -rn | cut -d' ' -f2- |
        while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}

# --- topology --------------------------------------------------------------------------------------
setup_topology() {
    ip netns add $NODE
    ip netns add $UP
    ip -n $NODE link set lo up
    ip -n $UP link set lo up
    # the veth is created inside cfe2e-node and its peer moved straight to cfe2e-up
    ip -n $NODE link add cfe2e-up0 type veth peer name eth0 netns $UP
    ip -n $NODE addr add $NODE_UP_IP/24 dev cfe2e-up0
    ip -n $NODE link set cfe2e-up0 up
    ip -n $UP addr add $PEER_IP/24 dev eth0
    ip -n $UP link set eth0 up
    ip -n $UP route add $POD_SUBNET via $NODE_UP_IP
    ip netns exec $NODE sysctl -qw net.ipv4.ip_forward=1
    # the peer: busybox httpd whose CGI answers with, and records, the client address it saw
    mkdir -p "$RUN/www/cgi-bin"
    cat >"$RUN/www/cgi-bin/whoami" <<EOF
#!/bin/sh
echo "\$REMOTE_ADDR" >>$LOG/peer-seen.log
printf 'Content-Type: text/plain\r\n\r\n'
echo "PEER-SAW \$REMOTE_ADDR"
EOF
    chmod 0755 "$RUN/www/cgi-bin/whoami"
    : >"$LOG/peer-seen.log"
    chmod 0666 "$LOG/peer-seen.log"
    nsenter --net=/run/netns/$UP busybox httpd -f -p $PEER_IP:80 -h "$RUN/www" >"$LOG/peer-httpd.log" 2>&1 &
    save_pid peer-httpd $!
    nsenter --net=/run/netns/$UP tcpdump -n -l -i eth0 'icmp or tcp port 80' >"$LOG/peer-tcpdump.log" 2>&1 &
    save_pid peer-tcpdump $!
    sleep 0.5
}
teardown_topology() {
    kill_saved peer-tcpdump
    kill_saved peer-httpd
    kill_netns_pids $UP
    kill_netns_pids $NODE
    local ns
    for ns in $UP $NODE $PROBE; do ip netns del $ns 2>/dev/null || true; done
}

# --- CNI: plugin dir and conflist ----------------------------------------------------------------
setup_cni_bin() { # $1 = the cuttlefish-cni binary
    mkdir -p "$CNIBIN"
    local f
    for f in /usr/lib/cni/*; do ln -sfn "$f" "$CNIBIN/$(basename "$f")"; done
    install -m 0755 "$1" "$CNIBIN/cuttlefish-cni"
}
# write_conflist OUT: [ptp + host-local] -> cuttlefish-cni, select all, DHCP from our agent, a log file
write_conflist() {
    cat >"$1" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$NET",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$POD_SUBNET" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$RUN/ipam"
      }
    },
    {
      "type": "cuttlefish-cni",
      "capabilities": { "io.kubernetes.cri.pod-annotations": true },
      "select": "all",
      "instances": 1,
      "dhcp": true,
      "agentSocket": "$AGENT_SOCK",
      "logFile": "$PLUGIN_LOG"
    }
  ]
}
EOF
    jq -e . "$1" >/dev/null
}

# --- devices: our own 0666 nodes (the host's are 0600 and are never changed) ---------------------
make_tun_node() {
    mkdir -p "$RUN/dev"
    mknod -m 0666 "$RUN/dev/tun" c "$(stat -c %Hr /dev/net/tun)" "$(stat -c %Lr /dev/net/tun)"
}
# make_dev_root DIR: the device nodes the agent's device plugin hands out (its --dev-root)
DEVICE_PLUGINS=$RUN/device-plugins # the kubelet stand-in's device-plugins directory
make_dev_root() {
    mkdir -p "$1/net" "$DEVICE_PLUGINS"
    mknod -m 0666 "$1/net/tun" c 10 200
    mknod -m 0666 "$1/kvm" c 10 232
    mknod -m 0666 "$1/vhost-net" c 10 238
    mknod -m 0666 "$1/vhost-vsock" c 10 241
}

# --- containerd, started by hand -------------------------------------------------------------
# write_containerd_config DIR PAUSE_IMAGE CNI_BIN CNI_CONF_DIR: DIR/config.toml for Debian's
# containerd 1.6 with its CRI plugin, everything (runc's state included) under DIR, the socket at
# DIR/containerd.sock
write_containerd_config() {
    local dir=$1 pause=$2 cni_bin=$3 cni_conf=$4
    mkdir -p "$dir"
    cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause"
  # root here lacks CAP_SYS_RESOURCE: the pause container's oom_score_adj -998 would be refused
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$dir/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$cni_bin"
    conf_dir = "$cni_conf"
    max_conf_num = 1
EOF
}
# every capability of this kernel, one `--cap-drop NAME` pair per line (ctr 1.6 has no --cap-drop ALL)
all_caps_dropped() {
    local c
    for c in $(capsh --decode=0x$(printf '%x' $(((1 << ($(cat /proc/sys/kernel/cap_last_cap) + 1)) - 1))) | cut -d= -f2 | tr ',' ' '); do
        printf -- '--cap-drop\n%s\n' "${c^^}"
    done
}
PAUSE_CMD='["/bin/sleep","2147483647"]' # a CRI sandbox's container must live as long as the pod

# --- images: busybox-static rootfs with tunprobe, seccomp-probe and the inside script --------------------------
# /usr stays an empty directory: the guest step bind-mounts the host's /usr (read-only) there to
# provide qemu, and lib, lib64 point into it.
make_rootfs_tar() { # OUT
    local r=$RUN/rootfs a
    rm -rf "$r"
    mkdir -p "$r"/{bin,etc,dev,proc,sys,tmp,run,var,usr,guest}
    chmod 1777 "$r/tmp"
    cp /bin/busybox "$r/bin/busybox"
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"; done
    cp "$CACHE/tunprobe" "$r/bin/tunprobe"
    cp "$CACHE/seccomp-probe" "$r/bin/seccomp-probe"
    install -m 0755 "$HERE/e2e/inside.sh" "$r/bin/cfe2e-inside"
    ln -s usr/lib "$r/lib"
    ln -s usr/lib64 "$r/lib64"
    printf 'root:x:0:0:root:/root:/bin/sh\ncvd:x:1000:1000:cvd:/tmp:/bin/sh\n' >"$r/etc/passwd"
    printf 'root:x:0:\ncvd:x:1000:\n' >"$r/etc/group"
    tar --numeric-owner --owner=0 --group=0 -C "$r" -cf "$1" .
}
# make_docker_archive LAYER.tar OUT.tar REF USER [CMD_JSON]: a one-layer docker-archive for
# `ctr images import` (CMD_JSON defaults to ["/bin/sh"])
make_docker_archive() {
    local layer=$1 out=$2 ref=$3 user=$4 cmd=${5:-'["/bin/sh"]'} d=$RUN/docker-archive lsha csha
    rm -rf "$d"
    mkdir -p "$d"
    lsha=$(sha256sum "$layer" | cut -d' ' -f1)
    mkdir -p "$d/$lsha"
    cp "$layer" "$d/$lsha/layer.tar"
    jq -cn --arg diff "sha256:$lsha" --arg user "$user" --argjson cmd "$cmd" '{architecture:"amd64", os:"linux",
        config:{Env:["PATH=/bin"], Cmd:$cmd, User:$user},
        rootfs:{type:"layers", diff_ids:[$diff]}, history:[{created_by:"cuttlefish-cni e2e"}]}' >"$d/config.json"
    csha=$(sha256sum "$d/config.json" | cut -d' ' -f1)
    mv "$d/config.json" "$d/$csha.json"
    jq -cn --arg c "$csha.json" --arg l "$lsha/layer.tar" --arg r "$ref" \
        '[{Config:$c, RepoTags:[$r], Layers:[$l]}]' >"$d/manifest.json"
    tar --numeric-owner --owner=0 --group=0 -C "$d" -cf "$out" .
}

# --- guest: Debian's kernel (apt-get download, unpacked, not installed) + busybox initramfs -------
build_guest() {
    local kd=$CACHE/kernel pkg ver m f ir=$RUN/initramfs
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    [ -n "$pkg" ] || { echo "cannot resolve linux-image-amd64"; return 1; }
    ver=${pkg#linux-image-}
    if [ ! -f "$kd/x/boot/vmlinuz-$ver" ]; then
        say "apt-get download $pkg (unpacked with dpkg-deb -x, not installed)"
        rm -rf "$kd"
        mkdir -p "$kd"
        (cd "$kd" && apt-get -o APT::Sandbox::User=root download "$pkg" >/dev/null && dpkg-deb -x "$pkg"_*.deb x)
    fi
    echo "guest kernel: $pkg"
    rm -rf "$ir"
    mkdir -p "$ir"/{bin,proc,sys,dev,tmp,lib/modules}
    cp /bin/busybox "$ir/bin/busybox"
    for m in $(/bin/busybox --list); do [ "$m" = busybox ] || ln -sf busybox "$ir/bin/$m"; done
    : >"$ir/lib/modules/order"
    # virtio-net and its dependencies, in load order (modules in Debian's kernel)
    for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net; do
        f=$(find "$kd/x/lib/modules/$ver/kernel" -name "$m.ko*" | head -1)
        [ -n "$f" ] || { echo "module $m not in $pkg"; return 1; }
        case $f in
        *.xz) xz -dc "$f" >"$ir/lib/modules/$m.ko" ;;
        *.zst) zstd -qdc "$f" >"$ir/lib/modules/$m.ko" ;;
        *) cp "$f" "$ir/lib/modules/$m.ko" ;;
        esac
        echo "$m" >>"$ir/lib/modules/order"
    done
    install -m 0755 "$HERE/e2e/guest-init.sh" "$ir/init"
    install -m 0755 "$HERE/e2e/guest-dhcp-hook.sh" "$ir/bin/dhcp-hook"
    mkdir -p "$RUN/guest"
    (cd "$ir" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$RUN/guest/initramfs.cpio.gz")
    cp "$kd/x/boot/vmlinuz-$ver" "$RUN/guest/vmlinuz"
}

# --- evidence about a pod netns, seen from the host --------------------------------------------
# our objects in NETNS_PATH: "link NAME" lines for cvd-* links, "nft" when the table exists
cuttlefish_objects() {
    nsenter --net="$1" ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^cvd-' | sed 's/^/link /'
    nsenter --net="$1" nft list table ip cuttlefish_nat >/dev/null 2>&1 && echo nft
    return 0
}
# plugin_log_has COMMAND CONTAINER_ID: the plugin logged COMMAND for CONTAINER_ID/eth0 with outcome=ok
plugin_log_has() {
    grep -E "command=$1 .*container=$2/eth0 .*outcome=ok" "$PLUGIN_LOG" >/dev/null 2>&1
}
