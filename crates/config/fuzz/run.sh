#!/usr/bin/env bash
# Time-boxed fuzzing of the configuration reader: ./run.sh SECONDS (default 60).
# Needs a nightly toolchain and cargo-fuzz; installs cargo-fuzz if it is missing.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-config-fuzz}"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz missing: installing" >&2
    cargo install cargo-fuzz || { echo "cannot install cargo-fuzz; not fuzzing" >&2; exit 2; }
fi
mkdir -p corpus/parse
cargo +nightly fuzz run parse corpus/parse seeds/parse -- \
    -max_total_time="$seconds" -max_len=2048 -dict=config.dict
