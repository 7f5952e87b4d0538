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
# The array program's host state (registrations, served files) of anything the tests run
# without a state home of their own: exported as a safety net, so that nothing reaches the
# host's /var/lib/spindle-array, and checked below to stay empty, since plain `cargo test`
# has no such net.
net_home=$(mktemp -d)
trap 'rm -f "$log"; rm -rf "$net_home"' EXIT
status=0

# What the host's array program keeps (root's state home); the tests must add nothing to it:
# a stale registration there refuses the real array's requests.
host_home=/var/lib/spindle-array
host_files() { find "$host_home" -type f 2>/dev/null | sort || true; }
host_before=$(host_files)

echo "== Rust workspace tests"
SPINDLE_ARRAY_STATE_HOME=$net_home cargo test --workspace --all-targets --locked --no-fail-fast 2>&1 | tee -a "$log" || status=1

# comm -13: lines only in the second list, the files the run added.
host_added=$(comm -13 <(printf '%s\n' "$host_before") <(host_files) | grep -v '^$' || true)
if [ -n "$host_added" ]; then
    echo "FAILED: the tests wrote into the host's array state $host_home (a test ran spindle-array without a private SPINDLE_ARRAY_STATE_HOME, or the array program on this host served meanwhile):" >&2
    sed 's/^/  /' <<<"$host_added" >&2
    echo "test result: FAILED. 0 passed; 1 failed; (host state check)" | tee -a "$log"
    status=1
fi
net_files=$(find "$net_home" -type f | sort)
if [ -n "$net_files" ]; then
    echo "FAILED: tests left array state in the inherited SPINDLE_ARRAY_STATE_HOME; under plain cargo test it would have gone to $host_home (give them a private one, see plugins/linux/tests/common):" >&2
    sed 's/^/  /' <<<"$net_files" >&2
    echo "test result: FAILED. 0 passed; 1 failed; (host state check)" | tee -a "$log"
    status=1
fi

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
