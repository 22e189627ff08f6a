#!/usr/bin/env bash
# Time-boxed fuzzing of the memcache parsers: ./run.sh SECONDS (default 60), split over targets.
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-memcache-fuzz}"
targets=(parse_request parse_response)
per_target=$(( seconds / ${#targets[@]} ))
(( per_target > 0 )) || per_target=1
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    echo "== fuzzing $target for ${per_target}s"
    cargo +nightly fuzz run "$target" "corpus/$target" seeds/"$target" -- \
        -max_total_time="$per_target" -max_len=4096 -dict=memcache.dict
done
