#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine. Installs what the tests need (as root),
# runs the Rust and Python suites, and ends with one "N passed, M failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package; the storage tests start these for real (tgtd, loop-mounted
# XFS/btrfs, libiscsi's initiator tools, sshd on loopback).
need_apt=()
for pair in python3:python3 tgtd:tgt tgtadm:tgt iscsi-inq:libiscsi-bin iscsi-readcapacity16:libiscsi-bin \
            mkfs.xfs:xfsprogs xfs_io:xfsprogs mkfs.btrfs:btrfs-progs sshd:openssh-server ssh:openssh-client \
            ssh-keygen:openssh-client filefrag:e2fsprogs losetup:mount; do
    cmd=${pair%%:*} pkg=${pair#*:}
    PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null || need_apt+=("$pkg")
done
mapfile -t need_apt < <(printf '%s\n' "${need_apt[@]}" | sort -u | grep -v '^$' || true)
if ((${#need_apt[@]})); then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
    else
        echo "missing: ${need_apt[*]} (run as root to install them)" >&2
        exit 1
    fi
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

echo "== Rust workspace tests"
cargo test --workspace --all-targets --locked --no-fail-fast 2>&1 | tee -a "$log" || status=1

echo "== Python package tests (OSCPlugin, OSCPluginUtils, runner)"
(cd python/spindle-osc && python3 -m unittest discover -s tests 2>&1) | tee -a "$log" || status=1

# awk alone: a grep that matches nothing would end the script under pipefail.
rust_passed=$(awk '/^test result:/ {s += $4} END {print s + 0}' "$log")
rust_failed=$(awk '/^test result:/ {s += $6} END {print s + 0}' "$log")
py_ran=$(awk '/^Ran [0-9]+ tests?/ {s += $2} END {print s + 0}' "$log")
py_failed=$(awk '/^FAILED \(/ {while (match($0, /(failures|errors)=[0-9]+/)) {split(substr($0, RSTART, RLENGTH), kv, "="); s += kv[2]; $0 = substr($0, RSTART + RLENGTH)}} END {print s + 0}' "$log")
echo
echo "tests: $((rust_passed + py_ran - py_failed)) passed, $((rust_failed + py_failed)) failed"
exit $status
