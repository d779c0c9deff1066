# hack/lib/host.sh: what every script under hack/ may need of the machine it runs on (sourced, not
# run): Debian packages installed when missing, and a snapshot of the root network namespace.

# need_pkgs PKG...: installs the Debian packages that are missing, quietly; apt's output is
# shown (its last lines) only when the install fails. Needs root when something is missing.
need_pkgs() {
    local p missing=() log rc=0
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    echo "installing: ${missing[*]}" >&2
    log=$(mktemp)
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"; } >"$log" 2>&1 || rc=$?
    ((rc == 0)) || tail -20 "$log" >&2
    rm -f "$log"
    return $rc
}

# root_ns_snapshot: the root network namespace's links, addresses, routes, nft ruleset and
# forwarding sysctls, so a test can prove it never touched them. Read-only.
root_ns_snapshot() {
    ip -o link show | sed -E 's/ state [A-Z]+//; s/ qdisc [^ ]+//'
    ip -o addr show
    ip route show table all | sed 's/ linkdown//'
    nft list ruleset 2>/dev/null || true
    cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding
}
