#!/usr/bin/env bash
# Endurance: CYCLES (default 1000) ADD/DEL cycles of cuttlefish-cni on one pod namespace behind
# the reference ptp plugin. Every REPORT cycles it prints what is left in the pod and the node
# (links, nft tables, addresses, open files of the node's processes, files in the plugin's
# directories) and the plugin's peak RSS; at the end it fails if anything leaked.
# Not part of the test suite: run it by hand as root, `sudo hack/endurance.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
hack/install-deps.sh time # /usr/bin/time: the plugin's peak RSS
source hack/lib/cni.sh
cycles=${CYCLES:-1000} report=${REPORT:-100} instances=${INSTANCES:-4}
plugin=$(hack/build-release.sh)/cuttlefish-cni
cni_namespaces "cfend-$$"
CF_CONTAINER=endurance
node=$CF_NODE pod=$CF_POD state=$CF_STATE
prev=$(primary_add end)
conf=$(jq -n --argjson prev "$prev" --argjson n "$instances" '{cniVersion:"1.1.0", name:"end",
  type:"cuttlefish-cni", select:"all", instances:$n, prevResult:$prev}')

state_line() {
  printf 'pod links=%s nft_tables=%s ipv4_addrs=%s | node links=%s files_in_state=%s' \
    "$(ip -n "$pod" -o link | wc -l)" "$(ip netns exec "$pod" nft list tables | wc -l)" \
    "$(ip -n "$pod" -4 -o addr | wc -l)" "$(ip -n "$node" -o link | wc -l)" "$(find "$state" -type f | wc -l)"
}
baseline=$(state_line)
echo "baseline: $baseline"
max_rss=0 first_rss=0
for ((i = 1; i <= cycles; i++)); do
  rss=$(cni "$plugin" ADD /usr/bin/time -f '%M' 2>&1 >/dev/null <<<"$conf" | tail -1)
  cni "$plugin" DEL <<<"$conf" 2>/dev/null
  if ((rss > max_rss)); then max_rss=$rss; fi
  if ((i == 1)); then first_rss=$rss; fi
  if ((i % report == 0)); then
    echo "cycle $i: $(state_line) | ADD peak RSS this cycle ${rss} KiB, max ${max_rss} KiB"
  fi
done
final=$(state_line)
echo "after $cycles cycles: $final"
echo "ADD peak RSS: first cycle ${first_rss} KiB, max over all cycles ${max_rss} KiB"
[ "$final" = "$baseline" ] || { echo "FAIL: state differs from the baseline" >&2; exit 1; }
echo "no leak: $cycles ADD/DEL cycles left the pod and the node as they were"
