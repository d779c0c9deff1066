#!/usr/bin/env bash
# The demo: builds the plugin, then in namespaces of its own runs the chain a cluster would run
# (reference `ptp` as primary, then cuttlefish-cni), shows what ADD built, runs DEL and shows the
# pod is back as it was. Run as root on Debian 12: `sudo hack/demo.sh`. INSTANCES=N for more.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "hack/demo.sh needs root (it creates network namespaces)" >&2; exit 1; }
hack/install-deps.sh
plugin=$(hack/build-release.sh)/cuttlefish-cni
instances=${INSTANCES:-1}
node=cfdemo-node-$$ pod=cfdemo-pod-$$ state=$(mktemp -d)
cleanup() { ip netns del "$pod" 2>/dev/null || true; ip netns del "$node" 2>/dev/null || true; rm -rf "$state"; }
trap cleanup EXIT INT TERM HUP
ip netns add "$node"; ip netns add "$pod"

# Every plugin runs inside "$node", so nothing lands in the root namespace.
cni() { # cni BINARY COMMAND  (config on stdin)
  ip netns exec "$node" env CNI_COMMAND="$2" CNI_CONTAINERID=demo-container CNI_NETNS="/run/netns/$pod" \
    CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=cvd-0" "$1"
}
ptp_conf=$(jq -n --arg dir "$state" '{cniVersion:"1.0.0", name:"demo", type:"ptp",
  ipam:{type:"host-local", subnet:"10.200.1.0/24", dataDir:$dir, routes:[{dst:"0.0.0.0/0"}]}}')
prev=$(cni /usr/lib/cni/ptp ADD <<<"$ptp_conf")
conf=$(jq -n --argjson prev "$prev" --argjson n "$instances" '{cniVersion:"1.0.0", name:"demo",
  type:"cuttlefish-cni", instances:$n, runtimeConfig:{"io.kubernetes.cri.pod-annotations":
  {"cuttlefish.dev/instances": ($n|tostring)}}, prevResult:$prev}')

echo "### ADD: cuttlefish-cni result (prevResult from ptp, our interfaces appended)"
result=$(cni "$plugin" ADD <<<"$conf")
jq -c '.interfaces[]' <<<"$result"
jq -c '{cniVersion, ips, routes}' <<<"$result"
echo "### links in the pod"
ip -n "$pod" -br link
echo "### TAP details"
ip -n "$pod" -d link show cvd-mtap-01 | sed -n '1,3p'
echo "### addresses in the pod"
ip -n "$pod" -4 -br addr
echo "### nftables in the pod"
ip netns exec "$pod" nft list ruleset
echo "### forwarding in the pod"
ip netns exec "$pod" sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding
echo "### CHECK"
cni "$plugin" CHECK <<<"$conf" && echo "CHECK ok"
echo "### DEL, then what is left in the pod"
cni "$plugin" DEL <<<"$conf"
cni /usr/lib/cni/ptp DEL <<<"$ptp_conf"
ip -n "$pod" -br link
ip netns exec "$pod" nft list ruleset
ip netns exec "$pod" sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding
