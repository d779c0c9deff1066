# hack/lib/cuttlefish.sh: the Cuttlefish layout that scripts under hack/ build by hand (sourced,
# not run). Copies of the plugin's constants and formulas (src/mark.rs, src/plan.rs):
# tests/hack_constants.rs fails when they differ.

CUTTLEFISH_LINK_GROUP=52992 # src/mark.rs LINK_GROUP: every link the plugin creates carries it
CUTTLEFISH_BRIDGES=(cvd-ebr=192.168.98.1/24 cvd-wbr=192.168.96.1/24) # src/plan.rs bridges()

cuttlefish_links() { # cuttlefish_links N: the bridges, then per instance mtap wifiap etap wtap
    local i
    echo "${CUTTLEFISH_BRIDGES[@]%%=*}"
    for ((i = 1; i <= $1; i++)); do printf 'cvd-mtap-%02d cvd-wifiap-%02d cvd-etap-%02d cvd-wtap-%02d\n' $i $i $i $i; done
}
# cuttlefish_routed KIND I: the host address of instance I's routed /30 (KIND mtap or wifiap):
# .(4M-3), in the first band for instances 1-64, in the second with M = I-64 for 65-128
cuttlefish_routed() {
    local lo hi m=$2
    if [ "$1" = mtap ]; then lo=97 hi=93; else lo=94 hi=95; fi
    local band=$lo
    if ((m > 64)); then band=$hi m=$((m - 64)); fi
    echo "192.168.$band.$((4 * m - 3))"
}
# cuttlefish_masquerade N: every masqueraded subnet, in the plugin's order
cuttlefish_masquerade() {
    local i k a b
    for ((i = 1; i <= $1; i++)); do
        for k in mtap wifiap; do a=$(cuttlefish_routed $k "$i"); echo "${a%.*}.$((${a##*.} - 1))/30"; done
    done
    for b in "${CUTTLEFISH_BRIDGES[@]}"; do a=${b#*=}; echo "${a%.*}.0/24"; done
}
