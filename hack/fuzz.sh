#!/usr/bin/env bash
# Fuzzes with cargo-fuzz (libFuzzer), each target for a bounded time (FUZZ_SECONDS, default 300),
# and prints how many executions ran. Not part of CI's default path. Targets (default: all):
#   config  config and CNI_ARGS parsing
#   dhcp    the node agent's DHCP server: its answer to sequences of guest datagrams
#   hack/fuzz.sh [TARGET...]
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP lets the stable toolchain provide them.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
seconds=${FUZZ_SECONDS:-300}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config dhcp)

seed_config() { # the repository's own configurations
  for f in conf/*.conflist; do jq -c '.plugins[-1] + {cniVersion: .cniVersion, name: .name}' "$f" >"$1/seed-$(basename "$f")"; done
}

seed_dhcp() { # records "advance kind len_hi len_lo body" (see fuzz/fuzz_targets/dhcp.rs)
  # Built messages: DISCOVER, REQUEST .2 from the gateway's offer, renew, RELEASE; INFORM.
  printf '\0\1\0\14\0\1\0\0\0\0\0\0\0\0\0\0' >"$1/seed-discover"
  printf '\0\1\0\14\0\1\0\0\0\0\0\0\1\0\0\0\0\1\0\14\2\1\7\2\0\0\0\0\2\0\0\0\1\1\0\14\2\1\10\0\2\0\0\0\3\0\0\0\0\1\0\14\6\1\10\0\2\0\0\0\4\0\0\0' >"$1/seed-lease"
  printf '\0\1\0\14\7\3\10\0\5\0\0\0\5\0\0\0' >"$1/seed-inform"
  # A raw DISCOVER: the fixed header, the magic cookie, option 53 and END.
  { printf '\0\0\0\364\1\1\6\0\0\0\0\1'; head -c 20 /dev/zero; printf '\2\0\0\0\0\1'; head -c 202 /dev/zero
    printf '\143\202\123\143\65\1\1\377'; } >"$1/seed-raw-discover"
}

for target in "${targets[@]}"; do
  corpus=fuzz/corpus/$target
  mkdir -p "$corpus"
  "seed_$target" "$corpus"
  log=$(mktemp)
  if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$corpus" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    grep -v '^#' "$log" | tail -60 >&2
    echo "fuzz.sh: the fuzzer failed on $target (a crash is saved under fuzz/artifacts/$target/); full log: $log" >&2
    exit 1
  fi
  echo "$target: $(grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$log" | tr '\n' ' ')"
done
