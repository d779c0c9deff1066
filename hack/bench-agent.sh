#!/usr/bin/env bash
# Benchmark of the node agent (part of hack/bench.sh): Allocate latency of the device plugin, as a
# kubelet stand-in measures it over the plugin's Unix socket, and the agent's memory while it
# serves PODS pods with DHCP (two bridges each) and the device plugin at once. Run as root:
#   sudo hack/bench-agent.sh       PODS=50 (default), CALLS=2000 Allocate calls, ROUNDS=5 rounds
# of every pod's ADD then DEL: the agent's RSS after each round shows whether it grows.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
hack/install-deps.sh
pods=${PODS:-50} calls=${CALLS:-2000} rounds=${ROUNDS:-5}
bin_dir=$(hack/build-release.sh)
work=$(mktemp -d) tag=cfa$$
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for ns in $(ip netns list | awk -v t="$tag-" 'index($1, t) == 1 {print $1}'); do ip netns del "$ns"; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM HUP

hack/device-plugin/stubs.sh "$work/py"
mkdir -p "$work/dev/net" "$work/device-plugins"
mknod "$work/dev/vhost-vsock" c 10 241; mknod "$work/dev/kvm" c 10 232
mknod "$work/dev/net/tun" c 10 200; mknod "$work/dev/vhost-net" c 10 238
"$bin_dir/cuttlefish-cni-agent" --socket "$work/agent.sock" --state-dir "$work/state" \
  --device-plugin-dir "$work/device-plugins" --dev-root "$work/dev" --cid-range 10-17 \
  --metrics-address 127.0.0.1:0 2>"$work/agent.log" &
agent=$!
pids+=("$agent")
PYTHONPATH="$work/py" /usr/bin/python3 hack/device-plugin/kubelet_stand_in.py bench-kubelet \
  "$work/device-plugins" "$calls" >"$work/allocate.txt" &
pids+=($!)
for _ in $(seq 300); do grep -q Allocate "$work/allocate.txt" && break; sleep 0.1; done
grep -q Allocate "$work/allocate.txt" || { cat "$work/agent.log" >&2; echo "no Allocate figures" >&2; exit 1; }
kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$agent/status"; }
rss_registered=$(kib VmRSS)

conf=$(jq -n --arg sock "$work/agent.sock" '{cniVersion:"1.1.0", name:"bench", type:"cuttlefish-cni",
  select:"all", dhcp:true, agentSocket:$sock, prevResult:{cniVersion:"1.1.0", interfaces:[], ips:[]}}')
plugin() { # plugin COMMAND POD
  CNI_COMMAND=$1 CNI_CONTAINERID=$tag-$2 CNI_NETNS=/run/netns/$tag-$2 CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
    "$bin_dir/cuttlefish-cni" <<<"$conf" >/dev/null
}
all_pods() { # all_pods COMMAND: in parallel, as a node starting or stopping many pods
  local p jobs=()
  for ((p = 0; p < pods; p++)); do plugin "$1" "$p" & jobs+=($!); done
  for p in "${jobs[@]}"; do wait "$p" || { echo "a $1 failed" >&2; exit 1; }; done
}
for ((p = 0; p < pods; p++)); do ip netns add "$tag-$p"; done
wait_served() {
  for _ in $(seq 100); do
    [ "$("$bin_dir/cuttlefish-cni-agent" status --socket "$work/agent.sock" | jq .pods_served)" = "$1" ] && return
    sleep 0.1
  done
  echo "the agent does not serve $1 pods" >&2; exit 1
}
rss_after=()
for ((round = 1; round <= rounds; round++)); do
  all_pods ADD
  wait_served "$pods"
  ((round > 1)) || { rss_serving=$(kib VmRSS) threads=$(awk '$1 == "Threads:" {print $2}' "/proc/$agent/status"); }
  all_pods DEL
  wait_served 0
  rss_after+=("$(kib VmRSS)")
done

echo
echo "Node agent ($(nproc) CPUs, $(uname -r)), release build $(stat -c %s "$bin_dir/cuttlefish-cni-agent") bytes:"
echo
sed 's/^/- /' "$work/allocate.txt"
echo "- RSS with the device plugin registered (4 resources), no pod: $rss_registered KiB"
echo "- RSS serving $pods pods with DHCP ($((2 * pods)) bridges) and the device plugin: $rss_serving KiB ($threads threads)"
echo "- RSS after every pod's DEL, rounds 1 to $rounds: ${rss_after[*]} KiB"
