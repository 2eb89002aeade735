#!/usr/bin/env bash
# Build libredlock and run its tests, the way CI does (.ci/run).
#
#   scripts/test.sh                 every stage below, in order (~25 min on
#                                   2 cores; CI runs this)
#   scripts/test.sh --quick         the default stage only (~2 min)
#   scripts/test.sh STAGE...        those stages, e.g. `scripts/test.sh asan tsan`
#   scripts/test.sh --list          the stages, one per line
#
# Stages (build directories at the repo root) and what each is for:
#   default  build/          shared, RelWithDebInfo: every test (~2 min);
#                            run it after any change
#   asan     build-asan/     gcc -fsanitize=address,undefined, every test
#                            (~2 min): memory errors, leaks, undefined behaviour
#   tsan     build-tsan/     clang -fsanitize=thread, every test (~2 min): races
#   static   build-static/   BUILD_SHARED_LIBS=OFF: packaging and symbols tests
#   release  build-release/  Release with -DREDLOCK_WERROR=ON, gcc and clang
#            build-release-clang/  (warnings are errors; unit tests)
#   model    scripts/model.sh: the protocol's Promela models (model/) checked
#            with spin, and their old rules shown to fail (~5 min)
#   torture  scripts/torture.sh on build-asan/ (faults for about 3 min, the
#            last 40 s on a Redis Cluster);
#            needs the asan stage's build
#   valgrind scripts/valgrind.sh: every test under memcheck (~3 min)
#   fuzz     scripts/fuzz.sh: each libFuzzer target for $FUZZ_SECONDS (60)
# (Under sanitizers the symbols and consumers tests are not registered.)
#
# Missing Debian packages are installed first (apt-get; sudo when not root):
# the library's, then clang for tsan, release and fuzz, spin for model,
# valgrind for valgrind.  Stops at the first failure.  Environment: JOBS
# (build parallelism, default: number of CPUs), CTEST_JOBS (default 2).
set -euo pipefail
set -o errtrace

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

all_stages=(default asan tsan static release model torture valgrind fuzz)
stages=()
for arg in "$@"; do
    case "$arg" in
    --quick) stages+=(default) ;;
    --list)
        printf '%s\n' "${all_stages[@]}"
        exit 0
        ;;
    -h | --help)
        sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    -*)
        echo "test.sh: unknown option: $arg (try --help)" >&2
        exit 64
        ;;
    *)
        case " ${all_stages[*]} " in
        *" $arg "*) stages+=("$arg") ;;
        *)
            echo "test.sh: unknown stage: $arg (stages: ${all_stages[*]})" >&2
            exit 64
            ;;
        esac
        ;;
    esac
done
[ "${#stages[@]}" -gt 0 ] || stages=("${all_stages[@]}")
want() { case " ${stages[*]} " in *" $1 "*) return 0 ;; esac; return 1; }

jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
ctest_jobs=${CTEST_JOBS:-2}

# ---- dependencies -----------------------------------------------------------------
# shellcheck source=scripts/deps.sh
. "$root/scripts/deps.sh"
packages=("${REDLOCK_PACKAGES[@]}")
if want tsan || want release; then
    packages+=(clang libclang-rt-dev)
fi
if want model; then
    packages+=(spin)
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

if want default; then
    stage_env=(env)
    stage_wrap=()
    run_stage default build "" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_SHARED_LIBS=ON -DREDLOCK_SANITIZE=
fi
if want asan; then
    stage_env=(env ASAN_OPTIONS=detect_leaks=1
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
    stage_wrap=("${norandom[@]}")
    run_stage asan build-asan "" \
        -DCMAKE_BUILD_TYPE=Debug -DBUILD_SHARED_LIBS=ON \
        -DCMAKE_C_COMPILER=gcc -DREDLOCK_SANITIZE=address,undefined
fi
if want tsan; then
    stage_env=(env TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1)
    stage_wrap=("${norandom[@]}")
    run_stage tsan build-tsan "" \
        -DCMAKE_BUILD_TYPE=Debug -DBUILD_SHARED_LIBS=ON \
        -DCMAKE_C_COMPILER=clang -DREDLOCK_SANITIZE=thread
fi
if want static; then
    stage_env=(env)
    stage_wrap=()
    run_stage static build-static "-L packaging|symbols" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_SHARED_LIBS=OFF -DREDLOCK_SANITIZE=
fi
if want release; then
    # Every target (tests, torture, bench, tools) with warnings as errors,
    # optimised (gcc's -O2 finds maybe-uninitialized paths that -O0 does
    # not), with both compilers; the quick unit tests run.
    stage_env=(env)
    stage_wrap=()
    run_stage release build-release "-L unit" \
        -DCMAKE_BUILD_TYPE=Release -DREDLOCK_WERROR=ON \
        -DCMAKE_C_COMPILER=gcc -DREDLOCK_SANITIZE=
    run_script release-clang bash -c "cmake -S '$root' -B '$root/build-release-clang' \
        -DCMAKE_BUILD_TYPE=Release -DREDLOCK_WERROR=ON -DCMAKE_C_COMPILER=clang \
        -DREDLOCK_SANITIZE= >/dev/null && cmake --build '$root/build-release-clang' \
        --parallel '$jobs'"
fi
# The lock protocol's models, exhaustively checked (and their old rules
# shown to break them).
if want model; then
    run_script model bash "$root/scripts/model.sh"
fi
# P processes x T threads against killed, stalled, paused and flushed
# nodes, on the ASan build.
if want torture; then
    [ -d "$root/build-asan" ] || {
        echo "test.sh: the torture stage needs build-asan/ (run the asan stage first)" >&2
        exit 1
    }
    run_script torture env TORTURE_BUILD_DIR="$root/build-asan" \
        bash "$root/scripts/torture.sh"
fi
# Every unit and integration test under valgrind memcheck.
if want valgrind; then
    run_script valgrind bash "$root/scripts/valgrind.sh"
fi
# Each libFuzzer target for FUZZ_SECONDS (60).
if want fuzz; then
    run_script fuzz bash "$root/scripts/fuzz.sh" "${FUZZ_SECONDS:-60}"
fi

trap - ERR
printf '\n'
for line in "${summary[@]}"; do
    printf '%s\n' "$line"
done
printf 'test.sh: all %d stage(s) passed\n' "${#summary[@]}"
