#!/usr/bin/env bash
# The whole test suite: lints, unit tests, the network-namespace integration tests, the root-free
# tests again as uid 65534, the static-binary check, the Kubernetes manifests, and the end-to-end
# runs with podman, containerd and a qemu guest. Run as root on Debian 12: `sudo hack/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "hack/test.sh needs root (it creates network namespaces)" >&2; exit 1; }
hack/install-deps.sh

root_before=$(hack/root-ns-snapshot.sh)

echo "== format and lints" >&2
cargo fmt --check
cargo clippy --quiet --all-targets --features netns-tests -- -D warnings
# The fuzz target (run by hack/fuzz.sh, not here) must keep compiling against the library.
cargo check --quiet --manifest-path fuzz/Cargo.toml

echo "== unit and integration tests" >&2
test_log=$(mktemp)
trap 'rm -f "$test_log"' EXIT
cargo test --features netns-tests 2>&1 | tee "$test_log"
passed=$(grep -oE '^test result: .* ([0-9]+) passed' "$test_log" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')

echo "== the tests that need no root pass as uid 65534 (what plain cargo test runs)" >&2
hack/root-free-tests.sh

echo "== the release binary needs no shared library" >&2
bin=$(hack/build-release.sh)/cuttlefish-cni
ldd_out=$(ldd "$bin" 2>&1 || true)
echo "ldd $bin: $ldd_out" >&2
grep -Eq "statically linked|not a dynamic executable" <<<"$ldd_out" || { echo "FAIL: $bin is dynamically linked" >&2; exit 1; }

echo "== the device plugin against a kubelet stand-in" >&2
dp_log=$(mktemp)
trap 'rm -f "$test_log" "$dp_log"' EXIT
CUTTLEFISH_CNI_AGENT=$(dirname "$bin")/cuttlefish-cni-agent bash hack/device-plugin-test.sh 2>&1 | tee "$dp_log"
dp_passed=$(sed -n 's/^\([0-9]*\) passed, 0 failed$/\1/p' "$dp_log")
passed=$((passed + dp_passed))

echo "== install/ manifests render and validate" >&2
bash install/validate.sh

echo "== end to end: podman, containerd, containerd's CRI with the device plugin, a qemu guest" >&2
e2e_log=$(mktemp)
trap 'rm -f "$test_log" "$dp_log" "$e2e_log"' EXIT
CUTTLEFISH_CNI_BIN=$bin bash hack/e2e.sh 2>&1 | tee "$e2e_log"
e2e_passed=$(sed -n 's/^RESULT: \([0-9]*\) passed.*/\1/p' "$e2e_log")
passed=$((passed + e2e_passed))

echo "== the CVD seccomp profile under containerd" >&2
seccomp_log=$(mktemp)
trap 'rm -f "$test_log" "$dp_log" "$e2e_log" "$seccomp_log"' EXIT
bash hack/seccomp-test.sh 2>&1 | tee "$seccomp_log"
seccomp_passed=$(sed -n 's/^RESULT: \([0-9]*\) passed.*/\1/p' "$seccomp_log")
passed=$((passed + seccomp_passed))

echo "== the root network namespace is unchanged" >&2
root_after=$(hack/root-ns-snapshot.sh)
if [ "$root_before" != "$root_after" ]; then
  diff <(echo "$root_before") <(echo "$root_after") >&2 || true
  echo "FAIL: the test suite changed the root network namespace" >&2
  exit 1
fi
echo "all checks passed" >&2
echo "$passed passed, 0 failed"
