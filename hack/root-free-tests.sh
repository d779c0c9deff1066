#!/usr/bin/env bash
# Every test that needs no root, run as uid 65534 (nobody: no groups, no capabilities), to prove
# that a plain `cargo test` passes for a user without privileges. It runs the test executables of
# `cargo test --features netns-tests` (every test target but `netns`, the namespace tests, which
# need root), so it compiles nothing after that command ran. The feature adds only the fault
# injector to the plugin, and no test. Run as root: `sudo hack/root-free-tests.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "hack/root-free-tests.sh switches to uid 65534: run it as root" >&2; exit 1; }
source hack/lib/host.sh
need_pkgs jq util-linux

mapfile -t executables < <(cargo test --quiet --features netns-tests --no-run --message-format=json |
    jq -r 'select(.reason == "compiler-artifact" and .profile.test and .target.name != "netns") | .executable')
((${#executables[@]})) || { echo "FAIL: cargo listed no test executable" >&2; exit 1; }

home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
chown 65534:65534 "$home"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$home" TMPDIR="$home" USER=nobody "$@"; }
readable() { as_nobody test -r Cargo.toml -a -x "${executables[0]}"; }

# A checkout under a directory uid 65534 cannot enter (CI clones as root, maybe under /root, mode
# 700): in a mount namespace of our own, a tmpfs over the first such directory holds only the
# path down to the checkout, bound back in place. The tests find their files by absolute path.
expose_checkout() {
    local dir=$PWD blocked="" stash
    while [ "$dir" != / ]; do
        dir=$(dirname "$dir")
        as_nobody test -x "$dir" || blocked=$dir
    done
    [ -n "$blocked" ] || return 0
    stash=$(mktemp -d)
    mount --bind "$PWD" "$stash"
    mount -t tmpfs -o mode=755 cuttlefish-root-free "$blocked"
    mkdir -p "$PWD"
    mount --bind "$stash" "$PWD"
    umount "$stash"
    rmdir "$stash"
    cd "$PWD"
}

if ! readable; then
    if [ -z "${ROOT_FREE_TESTS_UNSHARED:-}" ]; then
        rm -rf "$home"
        exec unshare --mount --propagation private env ROOT_FREE_TESTS_UNSHARED=1 "$0" "$@"
    fi
    expose_checkout
    readable || { echo "FAIL: uid 65534 cannot read $PWD" >&2; exit 1; }
fi

passed=0
for exe in "${executables[@]}"; do
    out=$(as_nobody "$exe" --quiet 2>&1) || { echo "$out" >&2; echo "FAIL: $exe as uid 65534" >&2; exit 1; }
    summary=$(grep '^test result: ' <<<"$out")
    echo "${exe##*/}: $summary" >&2
    passed=$((passed + $(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+')))
done
echo "$passed passed as uid 65534, 0 failed"
