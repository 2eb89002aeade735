#!/usr/bin/env bash
# Build the torture test (tests/torture) and run it, the way CI does.
#
#   scripts/torture.sh                     85 s, random seed (printed)
#   TORTURE_SECONDS=600 scripts/torture.sh the 10-minute run
#   scripts/torture.sh --duration 600      the same
#   scripts/torture.sh --seed 42 --scenario 1node-aof,5node-mem
#   scripts/torture.sh --scenario 3node-minority --workloads herd \
#       --faults minority-stall            one workload, one fault kind
#   scripts/torture.sh --scenario 1node-queue --duration 30 --waiters 32
#                                          the waiter queue alone
#   scripts/torture.sh --scenario cluster --duration 120
#                                          the Redis Cluster alone
#   scripts/torture.sh --scenario cluster --faults slot-migrate,slot-migrate-back
#                                          migrations only
#
# Every argument goes to redlock_torture (see --help there: --seed,
# --duration, --processes, --threads, --keys, --nodes, --scenario, --log,
# --probes yes|no|only: the deterministic probes run first by default;
# --workloads, --faults, --psubscribe, --herd, --cli, --waiters,
# --cluster-duration).
# Defaults: 85 s (TORTURE_SECONDS) shared by seven scenarios: one node and
# five, each with AOF appendfsync always and without persistence; three
# nodes with one at a time down, stalled (SIGSTOP) or slowed by a delay
# proxy while many wait and 1 500 locks are kept alive; a master with a
# replica and min_replicas 1 under SCRIPT FLUSH (these six get about 60 s);
# and the waiter queue (1node-queue, about 25 s): 24 waiter processes on
# one node, killed (SIGKILL, and replaced) or stopped mid-wait while the
# node is stalled shorter and longer than the I/O timeout, restarted, and
# its clients' connections killed (CLIENT KILL TYPE normal and pubsub),
# with a PSUBSCRIBE * listener for the second half.  Then the Redis Cluster
# (cluster, 40 s of its own, TORTURE_CLUSTER_SECONDS): three masters with a
# replica each, the workers on one redis+cluster:// URL, while the keys'
# slots are migrated in steps (ASK, then MOVED) and back, masters fail
# over (CLUSTER FAILOVER, and FORCE after cutting the replica's link) or
# are killed and come back as replicas; a migration must never cost a
# lock, a manual failover never a key, a kill or a forced failover only a
# reported loss (tests/torture/check.c, "The cluster").  Workloads besides the
# plain one: same-token re-acquires and adopts, private keys tried right
# after their release (under PSUBSCRIBE * listeners), the herd of
# kept-alive locks, `redlock run` (the CLI, built with it) killed with
# SIGKILL, and the queue's waiters.  4 processes x 4 threads, 3 keys.  At
# the end: sections, faults by kind, overlaps, reported and unreported
# overlaps.
#
# Built in build-torture/ (Debug) with ASan + UBSan, so that the fault
# paths are also checked for memory errors and leaks (in every forked
# worker process too).  Environment: TORTURE_SECONDS (85);
# TORTURE_CLUSTER_SECONDS (the cluster's time, 40 by default; also when it
# runs alone, where --duration would set it otherwise); TORTURE_SANITIZE ("address,undefined"
# by default, in build-torture/; "" for a plain build in
# build-torture-plain/; "thread" for TSan with clang in
# build-torture-thread/); TORTURE_BUILD_DIR (a build directory already
# configured, e.g. build-asan after test.sh: only the torture target is
# built there, with its sanitizers); JOBS; TORTURE_LIVENESS=strict also
# fails the run on the liveness checks, which are otherwise reported as
# LIVENESS lines: the minority scenario's (an IO or a lost kept-alive lock
# while a quorum was healthy) and the queue's (a key left set with no live
# holder longer than its owner's ttl + 250 ms, e.g. a killed waiter's; a
# key left free for 5 s while others waited).  Safety (every overlap
# reported; none at all, and fences rising, where the nodes persist)
# always fails.
# Missing Debian packages are installed first (scripts/deps.sh).
# Exit status: redlock_torture's (0 pass, 1 a violation, 2 setup failed).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

case "${1:-}" in
-h | --help)
    sed -n '2,/^set -/{/^#/p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac

# shellcheck source=scripts/deps.sh
. "$root/scripts/deps.sh"
sanitize=${TORTURE_SANITIZE-address,undefined}
packages=("${REDLOCK_PACKAGES[@]}")
cc=gcc
if [ "$sanitize" = thread ]; then
    packages+=(clang libclang-rt-dev)
    cc=clang
fi
install_missing "${packages[@]}"

jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
if [ -n "${TORTURE_BUILD_DIR:-}" ]; then
    # A build directory configured already (e.g. test.sh's build-asan):
    # only the torture target is built there.
    dir=$(cd "$TORTURE_BUILD_DIR" && pwd)
    sanitize=$(sed -n 's/^REDLOCK_SANITIZE:[A-Z]*=//p' "$dir/CMakeCache.txt")
else
    case "$sanitize" in
    address,undefined) dir="$root/build-torture" ;;
    "") dir="$root/build-torture-plain" ;;
    *) dir="$root/build-torture-${sanitize//,/-}" ;;
    esac
    cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DBUILD_SHARED_LIBS=ON \
        -DCMAKE_C_COMPILER="$cc" -DREDLOCK_SANITIZE="$sanitize" \
        -DREDLOCK_TORTURE=ON >/dev/null
fi
cmake --build "$dir" --parallel "$jobs" --target redlock_torture

# The clang 14 / gcc 12 sanitizer runtimes can fail on kernels with
# vm.mmap_rnd_bits > 28: run without ASLR when possible (as test.sh does).
wrap=()
if [ -n "$sanitize" ] && setarch "$(uname -m)" -R true 2>/dev/null; then
    wrap=(setarch "$(uname -m)" -R)
fi

cd "$dir"
cluster=()
if [ -n "${TORTURE_CLUSTER_SECONDS:-}" ]; then
    cluster=(--cluster-duration "$TORTURE_CLUSTER_SECONDS")
fi
env ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}" \
    "${wrap[@]}" "$dir/tests/redlock_torture" --duration "${TORTURE_SECONDS:-85}" \
    "${cluster[@]}" "$@"
