#!/usr/bin/env bash
# Build redlock-bench (when needed) and run the full benchmark, pinned and
# split, with its own redis-server(s) on loopback:
#
#   bench/run.sh                   every scenario, table on stdout
#   bench/run.sh --json > r.json   one JSON object instead
#   bench/run.sh --scenario 3      any redlock-bench option (--help lists them)
#   bench/run.sh --scenario waiters --placement pinned
#                                  the waiter-scaling scenario alone (8, 64,
#                                  256 waiter processes and the pollers, 10 s
#                                  a run: about 2 minutes), then its markdown
#                                  table; --waiter-duration 1 for a quick look
#   bench/run.sh --scenario tls --placement pinned
#                                  TLS (scenario 7, not part of "all"): pairs/s
#                                  over TLS, plaintext and raw hiredis against
#                                  one redis-server with both ports, rotating
#                                  rounds; then new clients (full handshake)
#                                  and reconnects after CLIENT KILL (resumed),
#                                  TLS against plaintext.  Ratios: the TLS row
#                                  against the plaintext rows of the same run
#   bench/run.sh --scenario cluster --placement pinned
#                                  Redis Cluster (scenario 8, not part of
#                                  "all"): six redis-servers (3 masters, 3
#                                  replicas, made a cluster by redis-cli);
#                                  pairs/s on a redis+cluster:// URL against a
#                                  redis:// URL and raw hiredis to the key's
#                                  master, rotating rounds; then 200 slots
#                                  migrated under the client: the first pair
#                                  after each move (pays the MOVED) against
#                                  the pairs after it, and the client's map
#                                  reads (CLUSTER SLOTS, INFO commandstats).
#                                  About 30 s; --migrations N to change
#
# Placement (on a 2-CPU machine, where the client and redis-server run
# changes results threefold):
#   pinned  the benchmark and every redis-server on one CPU, the same as
#           `taskset -c 0` for everything (compare ratios here);
#   split   the redis-servers on CPU 0, the benchmark on CPU 1.
# The program pins itself and the servers it starts (sched_setaffinity),
# and the waiter processes of scenario 6 inherit its CPU; with one CPU only
# pinned runs.  A --placement given here wins.  The load average is printed
# with the results: other work on the machine skews them.
#
# Environment: BUILD_DIR (default build-bench/ at the repository root),
# BUILD_TYPE (default RelWithDebInfo), JOBS (default: number of CPUs),
# REDLOCK_BENCH_REDIS_SERVER (the redis-server binary), REDLOCK_BENCH_CERTS
# (scenario tls's certificates; default: made in $BUILD_DIR/certs by
# tests/support/make_certs.sh).
# Missing Debian packages are installed first, as scripts/test.sh does.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

# shellcheck source=scripts/deps.sh
. "$root/scripts/deps.sh"
install_missing "${REDLOCK_PACKAGES[@]}"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
        -DREDLOCK_SANITIZE= -DREDLOCK_BUILD_BENCH=ON -DREDLOCK_BUILD_TESTS=OFF \
        -DREDLOCK_BUILD_EXAMPLES=OFF -DREDLOCK_BUILD_TOOLS=OFF &&
       cmake --build "$build" --target redlock-bench --parallel "$jobs"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "run.sh: the build failed" >&2
    exit 1
fi

if [ -z "${REDLOCK_BENCH_CERTS:-}" ]; then
    sh "$root/tests/support/make_certs.sh" "$build/certs"
    export REDLOCK_BENCH_CERTS="$build/certs"
fi

placement=both
if [ "$(nproc 2>/dev/null || echo 1)" -lt 2 ]; then
    placement=pinned
fi
if read -r load1 _ </proc/loadavg 2>/dev/null &&
   awk -v l="$load1" 'BEGIN { exit !(l > 1) }'; then
    echo "run.sh: load average $load1 (above 1): other work on the machine will skew" \
         "the figures" >&2
fi
label=()
if commit=$(git -C "$root" describe --always --dirty 2>/dev/null); then
    label=(--label "commit $commit")
fi
"$build/bench/redlock-bench" --placement "$placement" "${label[@]}" "$@"
