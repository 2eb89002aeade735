#!/usr/bin/env bash
# Build libredlock and run its tests, the way CI does (.ci/run).
#
#   scripts/test.sh           all stages below
#   scripts/test.sh --quick   the first stage only
#
# Stages, each configured and built in its own directory at the repo root:
#   default  build/         shared library, RelWithDebInfo, every test
#   asan     build-asan/    gcc, -fsanitize=address,undefined, every test
#   tsan     build-tsan/    clang, -fsanitize=thread, every test
#   static   build-static/  BUILD_SHARED_LIBS=OFF, the packaging and symbols tests
#   model    scripts/model.sh: the protocol's Promela model (model/) checked
#            with spin, and its old rules shown to fail
#   torture  scripts/torture.sh on build-asan/ (60 s of faults)
#   valgrind scripts/valgrind.sh: every test under memcheck
#   fuzz     scripts/fuzz.sh: each libFuzzer target for $FUZZ_SECONDS (60)
# (Under sanitizers the symbols and consumers tests are not registered.)
#
# Missing Debian packages are installed first (apt-get; sudo when not root).
# Stops at the first failure.  Environment: JOBS (build parallelism,
# default: number of CPUs), CTEST_JOBS (default 2).
set -euo pipefail
set -o errtrace

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

quick=0
for arg in "$@"; do
    case "$arg" in
    --quick) quick=1 ;;
    -h | --help)
        sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "test.sh: unknown argument: $arg (try --help)" >&2
        exit 64
        ;;
    esac
done

jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
ctest_jobs=${CTEST_JOBS:-2}

# ---- dependencies -----------------------------------------------------------------
# shellcheck source=scripts/deps.sh
. "$root/scripts/deps.sh"
packages=("${REDLOCK_PACKAGES[@]}")
if [ "$quick" -eq 0 ]; then
    packages+=(clang libclang-rt-dev) # ThreadSanitizer stage
    packages+=(spin)                  # model stage
fi
install_missing "${packages[@]}"

# ---- stages -------------------------------------------------------------------------
summary=()
stage=""
stage_start=0

on_error() {
    local rc=$?
    trap - ERR
    printf '\n' >&2
    for line in "${summary[@]}"; do
        printf '%s\n' "$line" >&2
    done
    printf 'test.sh: FAILED stage %s (exit %d) after %ds\n' \
        "${stage:-setup}" "$rc" "$(($(date +%s) - stage_start))" >&2
    exit "$rc"
}
trap on_error ERR

# Disable ASLR for sanitizer runs when possible: the clang 14 / gcc 12
# sanitizer runtimes can fail on kernels with vm.mmap_rnd_bits > 28.
norandom=()
if setarch "$(uname -m)" -R true 2>/dev/null; then
    norandom=(setarch "$(uname -m)" -R)
fi

# run_stage NAME DIR "CTEST ARGS" CMAKE ARGS...
run_stage() {
    local name=$1 dir=$2 ctest_args=$3
    shift 3
    stage=$name
    stage_start=$(date +%s)
    printf '\n==== stage %s: %s\n' "$name" "$dir"
    cmake -S "$root" -B "$root/$dir" "$@"
    cmake --build "$root/$dir" --parallel "$jobs"
    local log="$root/$dir/test-summary.txt"
    # shellcheck disable=SC2086
    (trap - ERR; cd "$root/$dir" && "${stage_env[@]}" "${stage_wrap[@]}" \
        ctest --output-on-failure -j"$ctest_jobs" $ctest_args) | tee "$log"
    local result
    result=$(grep -aE 'tests passed' "$log" | tail -n 1 || true)
    summary+=("$(printf 'stage %-8s OK  %4ds  %s' "$name" "$(($(date +%s) - stage_start))" "${result:-no tests}")")
    printf '%s\n' "${summary[-1]}"
}

stage_env=(env)
stage_wrap=()
run_stage default build "" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_SHARED_LIBS=ON -DREDLOCK_SANITIZE=

if [ "$quick" -eq 0 ]; then
    stage_env=(env ASAN_OPTIONS=detect_leaks=1
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
    stage_wrap=("${norandom[@]}")
    run_stage asan build-asan "" \
        -DCMAKE_BUILD_TYPE=Debug -DBUILD_SHARED_LIBS=ON \
        -DCMAKE_C_COMPILER=gcc -DREDLOCK_SANITIZE=address,undefined

    stage_env=(env TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1)
    stage_wrap=("${norandom[@]}")
    run_stage tsan build-tsan "" \
        -DCMAKE_BUILD_TYPE=Debug -DBUILD_SHARED_LIBS=ON \
        -DCMAKE_C_COMPILER=clang -DREDLOCK_SANITIZE=thread

    stage_env=(env)
    stage_wrap=()
    run_stage static build-static "-L packaging|symbols" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_SHARED_LIBS=OFF -DREDLOCK_SANITIZE=

    # Stages that are scripts of their own (each runnable alone; see them).
    run_script() {
        local name=$1
        shift
        stage=$name
        stage_start=$(date +%s)
        printf '\n==== stage %s: %s\n' "$name" "$*"
        "$@"
        summary+=("$(printf 'stage %-8s OK  %4ds' "$name" "$(($(date +%s) - stage_start))")")
        printf '%s\n' "${summary[-1]}"
    }
    # The lock protocol's model, exhaustively checked (and its old rules
    # shown to break it).
    run_script model bash "$root/scripts/model.sh"
    # P processes x T threads against killed, stalled, paused and flushed
    # nodes for 60 s, on the ASan build above.
    run_script torture env TORTURE_BUILD_DIR="$root/build-asan" \
        bash "$root/scripts/torture.sh"
    # Every unit and integration test under valgrind memcheck.
    run_script valgrind bash "$root/scripts/valgrind.sh"
    # Each libFuzzer target for FUZZ_SECONDS (60).
    run_script fuzz bash "$root/scripts/fuzz.sh" "${FUZZ_SECONDS:-60}"
fi

trap - ERR
printf '\n'
for line in "${summary[@]}"; do
    printf '%s\n' "$line"
done
printf 'test.sh: all %d stage(s) passed\n' "${#summary[@]}"
