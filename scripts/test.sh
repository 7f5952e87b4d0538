#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine, as root or not.
# Installs what the tests need, then runs the Rust and Python suites.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
if ((${#need_apt[@]})); then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
    else
        echo "missing: ${need_apt[*]} (run as root to install them)" >&2
        exit 1
    fi
fi

echo "== Rust workspace tests"
cargo test --workspace --all-targets --locked 2>&1

echo "== Python package tests (OSCPlugin, OSCPluginUtils, runner)"
(cd python/spindle-osc && python3 -m unittest discover -s tests 2>&1)
