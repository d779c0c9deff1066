#!/usr/bin/env bash
# Builds the plugin of the previous release from git history and prints the binary's path. The
# upgrade tests (tests/netns/upgrade.rs) build pods with it, then check and remove them with the
# current plugin. The build lives in target/previous-release/<commit>/, apart from target/debug
# (the same package built there would replace the current binary), and is reused when present.
# PREVIOUS_RELEASE names another commit.
set -euo pipefail
cd "$(dirname "$0")/.."
commit=$(git rev-parse --verify --quiet "${PREVIOUS_RELEASE:-259a41443e6c6a45955468c404f9ca4dadae076c}^{commit}") || {
  echo "previous-release.sh: commit ${PREVIOUS_RELEASE:-259a414} is not in this clone's history (a shallow clone?)" >&2
  exit 1
}
work=$PWD/target/previous-release/$commit
if [ ! -f "$work/src/Cargo.toml" ]; then
  rm -rf "$work/src.partial"
  mkdir -p "$work/src.partial"
  git archive "$commit" | tar -x -C "$work/src.partial"
  mv "$work/src.partial" "$work/src"
fi
# The test harness's environment must not redirect this build.
env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET -u RUSTFLAGS \
  "${CARGO:-cargo}" build --quiet --locked --manifest-path "$work/src/Cargo.toml" \
  --target-dir "$work/target" --bin cuttlefish-cni >&2
echo "$work/target/debug/cuttlefish-cni"
