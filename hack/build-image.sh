#!/usr/bin/env bash
# Builds the installer image (install/Containerfile: FROM scratch plus the static binaries)
# with podman, offline, and checks that the installer runs inside it.
#   IMAGE    image name (default cuttlefish-cni-installer:latest)
#   BIN_DIR  directory holding the static binaries (default: build them with hack/build-release.sh)
# Prints the image name.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${IMAGE:-cuttlefish-cni-installer:latest}
bin_dir=${BIN_DIR:-$(hack/build-release.sh)}

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
for binary in cuttlefish-cni cuttlefish-cni-install cuttlefish-cni-agent; do
    if [ ! -x "$bin_dir/$binary" ]; then
        echo "build-image: $bin_dir/$binary is missing; run hack/build-release.sh" >&2
        exit 1
    fi
    cp "$bin_dir/$binary" "$context/"
done

podman build --quiet --pull=never --network=none -f install/Containerfile -t "$image" "$context" >&2
# A scratch image has no loader or libc: a binary that is not static fails right here. The low
# rlimits: podman otherwise raises nofile and nproc, which sandboxed build machines refuse.
if ! podman run --rm --network=none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
    "$image" /cuttlefish-cni-install --help >"$context/help"; then
    echo "build-image: /cuttlefish-cni-install --help failed inside $image" >&2
    exit 1
fi
grep -q '^Usage: cuttlefish-cni-install' "$context/help"
echo "build-image: $image runs /cuttlefish-cni-install --help" >&2
echo "$image"
