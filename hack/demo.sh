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
source hack/lib/cni.sh
# Every plugin runs inside the node namespace, so nothing lands in the root namespace.
cni_namespaces "cfdemo-$$"
CF_CONTAINER=demo-container CF_CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=cvd-0"
pod=$CF_POD
prev=$(primary_add demo)
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
primary_del demo
ip -n "$pod" -br link
ip netns exec "$pod" nft list ruleset
ip netns exec "$pod" sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding
