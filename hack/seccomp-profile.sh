#!/usr/bin/env bash
# Regenerates install/seccomp/cuttlefish-cvd.json, the CVD pod's Localhost seccomp profile:
# containerd's current RuntimeDefault plus socket(AF_VSOCK). README "Seccomp profile" explains it.
#
#   hack/seccomp-profile.sh                    write the profile from the committed capture
#   hack/seccomp-profile.sh --check            exit 1 when the committed profile is not what its inputs give
#   hack/seccomp-profile.sh --runtime-default OUT
#                                              the derived current RuntimeDefault alone (no AF_VSOCK)
#   sudo hack/seccomp-profile.sh --capture OUT capture the installed containerd's RuntimeDefault, as
#                                              containerd writes it into a task bundle (every
#                                              capability dropped, as a Pod Security restricted pod)
#   hack/seccomp-profile.sh --compare-source seccomp_default.go
#                                              build containerd's DefaultProfile from that source file
#                                              (Debian's go, offline) and compare it with the derived
#                                              RuntimeDefault; exit 1 and show the difference if any
#
# INPUT=FILE replaces the committed capture (hack/seccomp/containerd-1.6.20-runtime-default.json).
# Debian 12 packages it installs when missing: jq; with --capture also containerd, runc,
# busybox-static, libcap2-bin, gcc, libc6-dev; with --compare-source golang-go and
# golang-github-containerd-containerd-dev (the runtime-spec and x/sys sources it builds against).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
INPUT=${INPUT:-$HERE/seccomp/containerd-1.6.20-runtime-default.json}
PROFILE=$REPO/install/seccomp/cuttlefish-cvd.json
JQ_PROGRAM=$HERE/seccomp/cuttlefish-cvd.jq

need() { # PACKAGE...: apt-get install what is missing
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    echo "installing: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
derive() { # VSOCK(true|false) -> stdout
    jq --argjson vsock "$1" -f "$JQ_PROGRAM" "$INPUT"
}

# one sorted list of the unconditional allows and a sorted set of the other rules: two profiles
# with the same normal form install the same filter
normal_form() {
    jq -S '{defaultAction, defaultErrnoRet, architectures,
        allow: ([.syscalls[] | select(.action == "SCMP_ACT_ALLOW" and ((.args // []) | length) == 0) | .names[]] | unique),
        other: ([.syscalls[] | select((.action == "SCMP_ACT_ALLOW" and ((.args // []) | length) == 0) | not)
                 | {names: (.names | sort), action, errnoRet,
                    args: ((.args // []) | map({index, value, valueTwo: (.valueTwo // 0), op}))}] | sort)}' "$1"
}

compare_source() { # seccomp_default.go of a containerd checkout
    local src=$1 w
    need jq golang-go golang-github-containerd-containerd-dev
    w=$(mktemp -d)
    trap 'rm -rf "$w"' RETURN
    mkdir -p "$w/src/cfsec/seccomp" "$w/src/cfsec/dump"
    # containerd 2.x moved kernelversion to pkg/; Debian's runtime-spec predates loong64
    sed -e 's#"github.com/containerd/containerd/v2/pkg/kernelversion"#"github.com/containerd/containerd/contrib/seccomp/kernelversion"#' \
        -e '/case "loong64":/,+1d' "$src" >"$w/src/cfsec/seccomp/seccomp_default.go"
    cat >"$w/src/cfsec/dump/main.go" <<'EOF'
package main

import (
	"encoding/json"
	"os"

	"cfsec/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultProfile for a process without capabilities (a pod that drops ALL)
func main() {
	s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}}
	if err := json.NewEncoder(os.Stdout).Encode(seccomp.DefaultProfile(s)); err != nil {
		panic(err)
	}
}
EOF
    (cd "$w/src/cfsec/dump" && GO111MODULE=off GOPATH="$w:/usr/share/gocode" GOCACHE="$w/cache" GOFLAGS= \
        CGO_ENABLED=0 go run .) >"$w/source.json"
    derive false >"$w/derived.json"
    if diff -u <(normal_form "$w/source.json") <(normal_form "$w/derived.json") \
        --label "DefaultProfile of $src" --label "derived RuntimeDefault (from $INPUT)"; then
        echo "the derived RuntimeDefault installs the same filter as $src (amd64, no capabilities, kernel $(uname -r))"
    else
        echo "they differ: update hack/seccomp/cuttlefish-cvd.jq (README, \"Seccomp profile\")" >&2
        return 1
    fi
}

capture() { # OUT
    local out=$1 probe
    [ "$(id -u)" = 0 ] || { echo "--capture needs root (it runs containerd)" >&2; exit 1; }
    source "$HERE/seccomp/lib.sh"
    mkdir -p "$RUN" "$LOG" "$PIDS" "$CACHE"
    need containerd runc jq busybox-static libcap2-bin gcc libc6-dev
    trap cfsec_cleanup EXIT
    cfsec_cleanup >/dev/null 2>&1
    set -e
    probe=$CACHE/seccomp-probe
    gcc -O2 -Wall -static -o "$probe" "$HERE/seccomp/probe.c"
    start_containerd
    import_images "$probe"
    capture_runtime_default "$out"
    echo "captured the RuntimeDefault of $(containerd --version | cut -d' ' -f3-) ($(uname -m), kernel $(uname -r)) to $out" >&2
}

case ${1:-} in
"")
    need jq
    derive true >"$PROFILE"
    echo "wrote $PROFILE from $INPUT"
    ;;
--check)
    need jq
    if diff -u "$PROFILE" <(derive true) --label "$PROFILE (committed)" --label "from $INPUT"; then
        echo "$PROFILE is what $INPUT and $JQ_PROGRAM give"
    else
        echo "$PROFILE is stale: run hack/seccomp-profile.sh" >&2
        exit 1
    fi
    ;;
--runtime-default) need jq && derive false >"$2" ;;
--capture) capture "$2" ;;
--compare-source) compare_source "$2" ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 64
    ;;
esac
