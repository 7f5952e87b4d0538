#!/usr/bin/env bash
# The README's first command: build spindle and start `spindle serve` with its embedded default
# (a local Linux array in the data directory, exported over iSCSI by tgt). Run as root on
# Debian 12; extra arguments go to `spindle serve` (see `spindle serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
    echo "cargo is needed to build spindle (https://rustup.rs)" >&2
    exit 1
fi
# spindle and the array-side program spindle-array, side by side in target/release.
cargo build --release --locked -q -p spindle-cli -p spindle-plugin-linux --bins
exec ./target/release/spindle serve "$@"
