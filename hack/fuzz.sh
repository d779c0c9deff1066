#!/usr/bin/env bash
# Fuzzes config and argument parsing for a bounded time (FUZZ_SECONDS, default 300) with
# cargo-fuzz (libFuzzer), and prints how many executions ran. Not part of CI's default path.
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP lets the stable toolchain provide them.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
seconds=${FUZZ_SECONDS:-300}
corpus=fuzz/corpus/config
mkdir -p "$corpus"
# Seed with the repository's own configurations.
for f in conf/*.conflist; do jq -c '.plugins[-1] + {cniVersion: .cniVersion, name: .name}' "$f" >"$corpus/seed-$(basename "$f")"; done
log=$(mktemp)
if ! RUSTC_BOOTSTRAP=1 cargo fuzz run config "$corpus" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    grep -v '^#' "$log" | tail -60 >&2
    echo "fuzz.sh: the fuzzer failed (a crash is saved under fuzz/artifacts/config/); full log: $log" >&2
    exit 1
fi
grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$log"
