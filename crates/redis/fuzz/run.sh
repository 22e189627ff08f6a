#!/usr/bin/env bash
# Time-boxed fuzzing of the redis parsers: ./run.sh SECONDS (default 60), split over targets.
# Needs a nightly toolchain and cargo-fuzz; installs cargo-fuzz if it is missing.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-redis-fuzz}"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz missing: installing" >&2
    cargo install cargo-fuzz || { echo "cannot install cargo-fuzz; not fuzzing" >&2; exit 2; }
fi
targets=(parse_request parse_response)
per_target=$(( seconds / ${#targets[@]} ))
(( per_target > 0 )) || per_target=1
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    echo "== fuzzing $target for ${per_target}s"
    cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$per_target" -max_len=4096 -dict=redis.dict
done
