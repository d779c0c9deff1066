# hack/lib/cni.sh: a node and a pod namespace, the reference ptp plugin as the pod's primary, and
# CNI invocations for the pod, shared by demo.sh, endurance.sh, bench.sh and bench-agent.sh
# (sourced, not run). Needs root.
#
# cni_namespaces PREFIX makes PREFIX-node and PREFIX-pod and a state directory, and sets a trap
# that, on exit or signal, removes every namespace whose name starts with "PREFIX-" and the state
# directory: a script names every namespace it makes PREFIX-something, with PREFIX unique to it
# (its PID in it), and nothing else is touched.

CF_PREFIX= CF_NODE= CF_POD= CF_STATE=
CF_CONTAINER=cuttlefish # CNI_CONTAINERID of cni()
CF_CNI_ARGS=            # CNI_ARGS of cni()

cni_namespaces() { # cni_namespaces PREFIX
    CF_PREFIX=$1 CF_NODE=$1-node CF_POD=$1-pod
    CF_STATE=$(mktemp -d)
    trap cni_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP
    ip netns add "$CF_NODE"
    ip netns add "$CF_POD"
}
cni_cleanup() {
    local ns
    for ns in $(ip netns list | awk -v p="$CF_PREFIX-" 'index($1, p) == 1 {print $1}'); do ip netns del "$ns"; done
    rm -rf "$CF_STATE"
}

# cni BINARY COMMAND [WRAPPER...]: runs BINARY (its config on stdin) for interface eth0 of the pod
# namespace $CF_POD, inside the node namespace $CF_NODE (or where the caller is, when CF_NODE is
# empty), under WRAPPER if given. CF_POD, CF_NODE, CF_CONTAINER and CF_CNI_ARGS may be set for
# one call: `CF_POD=other cni ...`.
cni() {
    local in_node=()
    [ -z "$CF_NODE" ] || in_node=(ip netns exec "$CF_NODE")
    CNI_COMMAND=$2 CNI_CONTAINERID=$CF_CONTAINER CNI_NETNS=/run/netns/$CF_POD CNI_IFNAME=eth0 \
        CNI_PATH=/usr/lib/cni CNI_ARGS=$CF_CNI_ARGS "${in_node[@]}" "${@:3}" "$1"
}

# ptp_conf NAME: the pod's primary, the reference ptp plugin with host-local IPAM (10.200.1.0/24,
# a default route, its leases in $CF_STATE/ipam), as network NAME
ptp_conf() {
    jq -n --arg name "$1" --arg dir "$CF_STATE/ipam" '{cniVersion:"1.0.0", name:$name, type:"ptp",
      ipam:{type:"host-local", subnet:"10.200.1.0/24", dataDir:$dir, routes:[{dst:"0.0.0.0/0"}]}}'
}
primary_add() { ptp_conf "$1" | cni /usr/lib/cni/ptp ADD; } # primary_add NAME: prints ptp's result
primary_del() { ptp_conf "$1" | cni /usr/lib/cni/ptp DEL; } # primary_del NAME
