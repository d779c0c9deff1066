#!/usr/bin/env bash
# Benchmark: cuttlefish-cni against the same kernel work done other ways, in one run on one
# machine. Whole-process wall time; median (min-max) over RUNS runs; a fresh pod netns for every
# run, made outside the timed region; candidates interleaved run by run so machine noise hits
# them alike. Prints Markdown tables, ratios and the goals of issue 6, then the node agent's figures
# (hack/bench-agent.sh). Run as root:
#   sudo hack/bench.sh            RUNS=15 (default 11), SIZES="1 4 16", SCALE="1 10 50"
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
hack/install-deps.sh time # /usr/bin/time: the plugin's peak RSS
source hack/lib/cni.sh
source hack/lib/cuttlefish.sh
runs=${RUNS:-11} sizes=${SIZES:-1 4 16} scale=${SCALE:-1 10 50}
bin_dir=$(hack/build-release.sh)
plugin=$bin_dir/cuttlefish-cni
tag=cfb$$ group=$CUTTLEFISH_LINK_GROUP
cni_namespaces "$tag" # every namespace below is $tag-*, removed on exit
work=$CF_STATE

now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
declare -A samples

# --- the work, three ways --------------------------------------------------------------------
# ip -batch lines that build N instances (links in our link group, for the bulk delete).
ip_batch() {
  echo "link add cvd-ebr group $group type bridge forward_delay 0 stp_state 0"
  echo "link add cvd-wbr group $group type bridge forward_delay 0 stp_state 0"
  echo "link set cvd-ebr up"; echo "link set cvd-wbr up"
  for ((i = 1; i <= $1; i++)); do
    local n; n=$(printf %02d $i)
    for k in mtap wifiap etap wtap; do echo "tuntap add dev cvd-$k-$n mode tap vnet_hdr"; done
    echo "link set cvd-mtap-$n group $group up"; echo "link set cvd-wifiap-$n group $group up"
    echo "link set cvd-etap-$n master cvd-ebr group $group up"; echo "link set cvd-wtap-$n master cvd-wbr group $group up"
    echo "addr add $(cuttlefish_routed mtap $i)/30 brd + dev cvd-mtap-$n"; echo "addr add $(cuttlefish_routed wifiap $i)/30 brd + dev cvd-wifiap-$n"
  done
  for b in "${CUTTLEFISH_BRIDGES[@]}"; do echo "addr add ${b#*=} brd + dev ${b%%=*}"; done
}
nft_file() {
  echo "table ip cuttlefish_nat {"; echo " chain postrouting {"; echo "  type nat hook postrouting priority 100;"
  for s in $(cuttlefish_masquerade "$1"); do echo "  ip saddr $s masquerade"; done
  echo " }"; echo "}"
}
sysctls() { echo "echo $1 > /proc/sys/net/ipv4/ip_forward; echo $1 > /proc/sys/net/ipv6/conf/all/forwarding"; }

for n in $sizes; do
  ip_batch "$n" >"$work/add-$n.ip"
  nft_file "$n" >"$work/add-$n.nft"
  cuttlefish_links "$n" | tr ' ' '\n' | sed 's/^/link del /' >"$work/del-$n.ip"
  jq -n --argjson n "$n" '{cniVersion:"1.1.0", name:"bench", type:"cuttlefish-cni", select:"all",
    instances:$n, prevResult:{cniVersion:"1.1.0", interfaces:[], ips:[]}}' >"$work/conf-$n.json"
done

# B: the kernel floor: one `ip -batch`, one `nft -f` (sysctls written by the same shell).
floor_add() { ip -n "$1" -batch "$work/add-$2.ip" && ip netns exec "$1" sh -c "$(sysctls 1); exec nft -f $work/add-$2.nft"; }
floor_del_seq() { ip -n "$1" -batch "$work/del-$2.ip" && ip netns exec "$1" sh -c "$(sysctls 0); exec nft delete table ip cuttlefish_nat"; }
floor_del_grp() { ip -n "$1" link del group "$group" && ip netns exec "$1" sh -c "$(sysctls 0); exec nft delete table ip cuttlefish_nat"; }
# A: what users run today: one process per step, as cuttlefish-host-resources does.
shell_add() {
  local ns=$1 i
  ip -n "$ns" link add cvd-ebr type bridge forward_delay 0 stp_state 0; ip -n "$ns" link set cvd-ebr up
  ip -n "$ns" link add cvd-wbr type bridge forward_delay 0 stp_state 0; ip -n "$ns" link set cvd-wbr up
  for ((i = 1; i <= $2; i++)); do
    local n; n=$(printf %02d $i)
    for k in mtap wifiap etap wtap; do ip -n "$ns" tuntap add dev cvd-$k-$n mode tap vnet_hdr; ip -n "$ns" link set cvd-$k-$n up; done
    ip -n "$ns" link set cvd-etap-$n master cvd-ebr; ip -n "$ns" link set cvd-wtap-$n master cvd-wbr
    ip -n "$ns" addr add "$(cuttlefish_routed mtap $i)/30" brd + dev cvd-mtap-$n
    ip -n "$ns" addr add "$(cuttlefish_routed wifiap $i)/30" brd + dev cvd-wifiap-$n
  done
  for b in "${CUTTLEFISH_BRIDGES[@]}"; do ip -n "$ns" addr add "${b#*=}" brd + dev "${b%%=*}"; done
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  ip netns exec "$ns" nft add table ip cuttlefish_nat
  ip netns exec "$ns" nft add chain ip cuttlefish_nat postrouting '{ type nat hook postrouting priority 100 ; }'
  for s in $(cuttlefish_masquerade "$2"); do ip netns exec "$ns" nft add rule ip cuttlefish_nat postrouting ip saddr "$s" masquerade; done
}
shell_del() {
  local ns=$1 l
  for l in $(cuttlefish_links "$2"); do ip -n "$ns" link del "$l"; done
  ip netns exec "$ns" nft delete table ip cuttlefish_nat
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
}
ours() { # ours COMMAND NS N: the plugin run where this script runs, as a runtime on the node would
  CF_NODE= CF_POD=$2 CF_CONTAINER=bench cni "$plugin" "$1" <"$work/conf-$3.json" >/dev/null 2>&1
}
ours_add() { ours ADD "$1" "$2"; }
ours_del() { ours DEL "$1" "$2"; }
# The reference bridge + host-local plugins, one interface (run in the node namespace, where the
# bridge plugin puts its bridge).
ref_conf='{"cniVersion":"1.0.0","name":"bench","type":"bridge","bridge":"cfb0","isGateway":true,
  "ipam":{"type":"host-local","subnet":"10.201.0.0/16","dataDir":"'$work'/ipam"}}'
ref() { # ref COMMAND NS
  CF_POD=$2 CF_CONTAINER=$2 cni /usr/lib/cni/bridge "$1" <<<"$ref_conf" >/dev/null
}
ref_add() { ref ADD "$1"; }
ref_del() { ref DEL "$1"; }

# time_pair KEY ADD_FN DEL_FN N: one run in a fresh netns; records KEY-add and KEY-del.
seq_id=0
time_pair() {
  local key=$1 ns=$tag-p$((seq_id++)) t0 t1 t2
  ip netns add "$ns"
  t0=$(now_us); "$2" "$ns" "$4"; t1=$(now_us); "$3" "$ns" "$4"; t2=$(now_us)
  ip netns del "$ns"
  samples[$key-add]+=" $((t1 - t0))"; samples[$key-del]+=" $((t2 - t1))"
}

# time_scale KEY ADD_FN DEL_FN PODS: PODS fresh namespaces set up at once, then torn down at once.
time_scale() {
  local key=$1 pods=$4 t0 t1 t2 p
  for ((p = 0; p < pods; p++)); do ip netns add "$tag-s$p"; done
  t0=$(now_us)
  for ((p = 0; p < pods; p++)); do "$2" "$tag-s$p" 1 & done; wait
  t1=$(now_us)
  for ((p = 0; p < pods; p++)); do "$3" "$tag-s$p" 1 & done; wait
  t2=$(now_us)
  for ((p = 0; p < pods; p++)); do ip netns del "$tag-s$p"; done
  samples[$key-add]+=" $((t1 - t0))"; samples[$key-del]+=" $((t2 - t1))"
}

echo "running $runs interleaved runs of every candidate (sizes: $sizes; scale: $scale pods)..." >&2
for ((r = 0; r < runs; r++)); do
  for n in $sizes; do
    time_pair "ours-$n" ours_add ours_del "$n"
    time_pair "floor-$n" floor_add floor_del_seq "$n"
    time_pair "floorgrp-$n" floor_add floor_del_grp "$n"
    time_pair "shell-$n" shell_add shell_del "$n"
  done
  time_pair ref ref_add ref_del 1
done
scale_runs=${SCALE_RUNS:-3}
for ((r = 0; r < scale_runs; r++)); do
  for p in $scale; do
    time_scale "ours-x$p" ours_add ours_del "$p"
    time_scale "floor-x$p" floor_add floor_del_grp "$p"
  done
done

stats() { # stats KEY -> "median min max" in ms
  tr ' ' '\n' <<<"${samples[$1]}" | grep . | sort -n | awk '{v[NR]=$1} END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.2f %.2f %.2f", m / 1000, v[1] / 1000, v[NR] / 1000 }'
}
median() { stats "$1" | cut -d' ' -f1; }
cell() { local s; s=$(stats "$1"); read -r m lo hi <<<"$s"; printf '%s (%s–%s)' "$m" "$lo" "$hi"; }
ratio() { awk -v a="$(median "$1")" -v b="$(median "$2")" 'BEGIN { printf "%.2f", a / b }'; }

rss=$(CF_NODE= CF_CONTAINER=rss cni "$plugin" ADD /usr/bin/time -f %M <"$work/conf-16.json" 2>&1 >/dev/null | tail -1)
CF_NODE= CF_CONTAINER=rss cni "$plugin" DEL <"$work/conf-16.json" >/dev/null 2>&1
size=$(stat -c %s "$plugin")

echo
echo "Machine: $(nproc) CPUs, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $runs runs per candidate; ms, median (min–max)."
echo
echo "| N | cuttlefish-cni ADD | floor ADD (ip -batch + nft -f) | shell ADD | cuttlefish-cni DEL | floor DEL, links one by one | floor DEL, link group | shell DEL |"
echo "|---:|---|---|---|---|---|---|---|"
for n in $sizes; do
  echo "| $n | $(cell ours-$n-add) | $(cell floor-$n-add) | $(cell shell-$n-add) | $(cell ours-$n-del) | $(cell floor-$n-del) | $(cell floorgrp-$n-del) | $(cell shell-$n-del) |"
done
echo
echo "Reference bridge + host-local, one interface: ADD $(cell ref-add), DEL $(cell ref-del)."
echo
echo "| pods at once | cuttlefish-cni setup | floor setup | cuttlefish-cni teardown | floor teardown (link group) |"
echo "|---:|---|---|---|---|"
for p in $scale; do
  echo "| $p | $(cell ours-x$p-add) | $(cell floor-x$p-add) | $(cell ours-x$p-del) | $(cell floor-x$p-del) |"
done
echo
echo "Release binary: $size bytes (static, stripped). Peak RSS of ADD with 16 instances: $rss KiB."
echo
verdict() { awk -v r="$1" -v g="$2" 'BEGIN { print (r <= g) ? "met" : "NOT met" }'; }
first=${sizes%% *} last=${sizes##* } biggest=${scale##* }
echo "| goal | ratio | verdict |"
echo "|---|---:|---|"
for n in $first $last; do
  r=$(ratio ours-$n-add floor-$n-add); echo "| ADD N=$n ≤ 0.9 × floor | $r | $(verdict "$r" 0.9) |"
done
for n in $sizes; do
  r=$(ratio ours-$n-del floorgrp-$n-del); echo "| DEL N=$n ≤ 1.0 × bulk floor | $r | $(verdict "$r" 1.0) |"
done
r=$(ratio ours-$last-del ours-$first-del); echo "| DEL N=$last ≤ 1.2 × DEL N=$first | $r | $(verdict "$r" 1.2) |"
r=$(ratio ours-x$biggest-add floor-x$biggest-add); echo "| $biggest pods setup ≤ 1.0 × floor | $r | $(verdict "$r" 1.0) |"
r=$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1e6 }'); echo "| binary < 5 MB | $r MB | $(verdict "$r" 4.999) |"
r=$(awk -v k="$rss" 'BEGIN { printf "%.2f", k / 1024 }'); echo "| peak RSS < 10 MB | $r MiB | $(verdict "$r" 9.999) |"
echo
echo "Other ratios: shell ADD / cuttlefish-cni ADD: $(for n in $sizes; do printf 'N=%s %s×  ' "$n" "$(ratio shell-$n-add ours-$n-add)"; done)"
echo "reference bridge ADD / cuttlefish-cni ADD N=1: $(ratio ref-add ours-$first-add)×"
echo
echo "The node agent (hack/bench-agent.sh):"
hack/bench-agent.sh
