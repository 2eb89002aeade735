#!/usr/bin/env bash
# Build the libFuzzer targets (fuzz/) with clang and run each one for a
# bounded time, the way CI does.
#
#   scripts/fuzz.sh [SECONDS]     each target for SECONDS (default 60;
#                                 0: until interrupted)
#
# Targets: url (the URL parser), reply (a fake server's replies to connect,
# acquire, inspect, extend, keepalive, adopt and release).  Each run starts
# from a temporary copy of its seed corpus (fuzz/corpus/<target>): nothing
# is written into the repository.  Inputs that crash, leak, hang or blow the
# memory limit are kept in build-fuzz/findings/<target>/; reproduce one with
#   build-fuzz/fuzz/redlock_fuzz_<target> build-fuzz/findings/<target>/<file>
#
# Prints, per target, the executions (libFuzzer's final stats) and its exit
# status; exits non-zero when any target found something.
#
# Environment: FUZZ_TARGETS (default "url reply"), JOBS (build parallelism),
# FUZZ_ARGS (more libFuzzer flags, e.g. "-jobs=4 -workers=4").
# Clang and its runtimes are installed first when missing (apt-get).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

seconds=${1:-60}
case "$seconds" in
-h | --help)
    sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
'' | *[!0-9]*)
    echo "fuzz.sh: SECONDS must be a number (got: $seconds)" >&2
    exit 64
    ;;
esac
targets=${FUZZ_TARGETS:-url reply}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

# shellcheck source=scripts/deps.sh
. "$root/scripts/deps.sh"
install_missing "${REDLOCK_PACKAGES[@]}" clang libclang-rt-dev

build="$root/build-fuzz"
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREDLOCK_BUILD_FUZZ=ON \
    -DREDLOCK_BUILD_TESTS=OFF -DREDLOCK_BUILD_EXAMPLES=OFF \
    -DREDLOCK_BUILD_TOOLS=OFF -DREDLOCK_BUILD_BENCH=OFF \
    -DREDLOCK_INSTALL=OFF -DREDLOCK_SANITIZE=
build_targets=()
for t in $targets; do
    build_targets+=(--target "redlock_fuzz_$t")
done
cmake --build "$build" --parallel "$jobs" "${build_targets[@]}"

# The clang 14 sanitizer runtimes can fail on kernels with
# vm.mmap_rnd_bits > 28: run without ASLR when allowed.
norandom=()
if setarch "$(uname -m)" -R true 2>/dev/null; then
    norandom=(setarch "$(uname -m)" -R)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/redlock-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

failed=0
summary=()
for t in $targets; do
    bin="$build/fuzz/redlock_fuzz_$t"
    corpus="$work/$t"
    findings="$build/findings/$t"
    mkdir -p "$corpus" "$findings"
    cp "$root/fuzz/corpus/$t/"* "$corpus/"
    dict=()
    if [ -f "$root/fuzz/$t.dict" ]; then
        dict=(-dict="$root/fuzz/$t.dict")
    fi
    log="$work/$t.log"
    # libFuzzer writes fuzz-N.log files into its working directory when
    # given -jobs: keep them in the build folder, never the repository.
    rundir="$build/logs/$t"
    rm -rf "$rundir"
    mkdir -p "$rundir"
    printf '\n==== fuzz %s: %ss, seeds fuzz/corpus/%s\n' "$t" "$seconds" "$t"
    rc=0
    # shellcheck disable=SC2086
    (cd "$rundir" && env ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
        UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
        "${norandom[@]}" "$bin" -max_total_time="$seconds" \
        -print_final_stats=1 -timeout=30 -rss_limit_mb=2048 \
        -artifact_prefix="$findings/" "${dict[@]}" ${FUZZ_ARGS:-} \
        "$corpus") >"$log" 2>&1 || rc=$?
    tail -n 40 "$log"
    for jl in "$rundir"/fuzz-*.log; do
        [ -e "$jl" ] || continue
        cat "$jl" >>"$log" # the jobs' own statistics, counted below
        printf '(job log %s)\n' "${jl#"$root"/}"
    done
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" |
        awk '{s += $2} END {print s + 0}')
    line=$(printf 'fuzz %-6s %10s executions in %ss, exit %d' \
        "$t" "$execs" "$seconds" "$rc")
    if [ "$rc" -ne 0 ]; then
        failed=1
        line="$line: FINDING (see above; inputs in build-fuzz/findings/$t/)"
    fi
    summary+=("$line")
done

printf '\n'
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
    echo "fuzz.sh: FAILED: a target found a crash, leak, hang or OOM" >&2
    exit 1
fi
echo "fuzz.sh: no findings"
