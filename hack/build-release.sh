#!/usr/bin/env bash
# Builds the release binaries fully static (glibc static-pie): a node needs nothing but a kernel.
# The explicit --target keeps RUSTFLAGS away from proc-macros, which must stay dynamic.
# Prints the directory holding the binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
triple=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release --locked --target "$triple" "$@" >&2
echo "${CARGO_TARGET_DIR:-$PWD/target}/$triple/release"
