#!/usr/bin/env bash
# Run the unit and integration tests under valgrind memcheck, the way CI
# does: zero memory errors and zero definite/indirect leaks, in every test
# process (and in the processes a test forks without exec).
#
#   scripts/valgrind.sh                 every unit and integration test
#   scripts/valgrind.sh test_lock ...   just these
#
# A plain Debug build (no sanitizers) in build-valgrind/, then each test
# binary runs alone under
#   valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
#            --errors-for-leak-kinds=definite,indirect --track-fds=no
#            --suppressions=tests/valgrind.supp
# with its output and valgrind's in build-valgrind/valgrind/<test>.log.
# Processes a test forks are checked too; programs it execs (redis-server,
# the redlock tool) are not.  The TLS variants (<test>_tls) run <test> with
# the environment ctest gives them (REDLOCK_TEST_TLS, SSL_CERT_FILE); the
# certificates are made first (tests/support/make_certs.sh), as the ctest
# fixture tls_certs does.
#
# Verdict per test: MEMORY (valgrind found something: fails the run),
# FAILED (the test's own checks failed: fails the run, unless the test is
# listed in TIMING_ONLY below), ok.  Valgrind makes code 20-50x slower;
# the tests in TIMING_ONLY have bounds ("within X ms") that it breaks, so
# their own failures are reported but do not fail the run; their memory
# errors still do.
#
# Environment: JOBS (build parallelism), VALGRIND_TIMEOUT (seconds per
# test, default 900).  Missing Debian packages (valgrind included) are
# installed first (scripts/deps.sh).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

case "${1:-}" in
-h | --help)
    sed -n '2,/^set -/{/^#/p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac

# Tests whose own assertions fail under valgrind for timing reasons only
# (their memory checks still count).  Each with why:
TIMING_ONLY=(
    # "returns within one timeout" and "released before the teardown's
    # deadline" with 10 000 locks: valgrind's slowness breaks both.
    test_bounds
    # Three nodes' TLS handshakes at once within its 300 ms connect
    # timeout: valgrind's slow crypto misses it (on_all_nodes).
    test_redlock_tls
)

# shellcheck source=scripts/deps.sh
. "$root/scripts/deps.sh"
install_missing "${REDLOCK_PACKAGES[@]}" valgrind

jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
dir="$root/build-valgrind"
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DBUILD_SHARED_LIBS=ON \
    -DREDLOCK_SANITIZE= >/dev/null
cmake --build "$dir" --parallel "$jobs"

if [ "$#" -gt 0 ]; then
    tests=("$@")
else
    # Every unit and integration test ctest knows, by name (= binary).
    mapfile -t tests < <(cd "$dir" && ctest -N -L '^(unit|integration)$' |
        sed -n 's/^ *Test *#[0-9]*: *//p')
fi
[ "${#tests[@]}" -gt 0 ] || {
    echo "valgrind.sh: no tests found" >&2
    exit 1
}

logs="$dir/valgrind"
rm -rf "$logs"
mkdir -p "$logs"
supp=()
if [ -f "$root/tests/valgrind.supp" ]; then
    supp=(--suppressions="$root/tests/valgrind.supp")
fi

# Programs the tests exec (redis-server, the redlock tool under test_cli)
# are not traced: valgrind's reports on the tool's stderr would fail
# test_cli's checks of that stderr (the tool runs under ASan in test.sh).
# Tests not run under valgrind at all, each with why (their memory is
# still checked by the asan stage):
NOT_UNDER_VALGRIND=(
    # Locks of a 1.5 s ttl renewed every 500 ms through slot migrations,
    # failovers and a stopped master, on six servers: valgrind's slowness
    # loses them, and a failed check leaks past its frees.
    test_cluster
    test_cluster_tls
)

is_skipped() {
    local t
    for t in "${NOT_UNDER_VALGRIND[@]}"; do
        [ "$t" = "$1" ] && return 0
    done
    return 1
}

is_timing_only() {
    local t
    for t in "${TIMING_ONLY[@]}"; do
        [ "$t" = "$1" ] && return 0
    done
    return 1
}

certs="$dir/tests/certs"
sh "$root/tests/support/make_certs.sh" "$certs" >/dev/null

results=()
failed=0
for t in "${tests[@]}"; do
    if is_skipped "$t"; then
        results+=("$(printf '%-16s skipped (NOT_UNDER_VALGRIND)' "$t")")
        continue
    fi
    bin="$dir/tests/$t"
    # REDLOCK_TEST_SLOW: tests widen margins for their own CPU time
    # (rt_slack_ms).
    vars=(REDLOCK_TEST_CERTS="$certs" REDLOCK_TEST_SLOW=valgrind)
    [ "$t" = tls_certs ] && continue # made above
    # <test>_tls is a variant, unless a program has that name (test_tls).
    if [ ! -x "$bin" ] && [ "${t%_tls}" != "$t" ]; then
        bin="$dir/tests/${t%_tls}"
        vars+=(REDLOCK_TEST_TLS="$certs" SSL_CERT_FILE="$certs/ca.crt")
    fi
    if [ ! -x "$bin" ]; then
        echo "valgrind.sh: no test binary $bin" >&2
        failed=1
        results+=("$(printf '%-16s MISSING' "$t")")
        continue
    fi
    printf '\n==== %s under valgrind\n' "$t"
    start=$(date +%s)
    rc=0
    # Valgrind reports on stderr (a --log-file descriptor would be
    # inherited by the programs the tests exec, which test_cli counts),
    # here kept in $logs/<test>.log together with the test's output.
    (cd "$dir/tests" && env "${vars[@]}" \
        timeout --kill-after=10 "${VALGRIND_TIMEOUT:-900}" valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect --track-fds=no \
        --show-leak-kinds=definite,indirect --num-callers=30 \
        "${supp[@]}" "$bin") >"$logs/$t.log" 2>&1 || rc=$?
    took=$(($(date +%s) - start))
    # Any process of the test with an error (leaks of the kinds above
    # count as errors) is a memory finding, whatever the exit status.
    if grep -qE '^==[0-9]+== ERROR SUMMARY: [1-9]' "$logs/$t.log" ||
        [ "$rc" -eq 99 ]; then
        verdict=MEMORY
        failed=1
        cat "$logs/$t.log"
        # A failed cmocka check longjmps past its test's frees: say so,
        # since the log above is long and CI shows only part of it.
        if grep -qE '^\[  (FAILED|ERROR) ' "$logs/$t.log"; then
            verdict="MEMORY after a failed check:"
            verdict+=" $(grep -E '^\[  (FAILED|ERROR) |^\[   LINE   \]' \
                "$logs/$t.log" | head -n 4 | tr -s ' ' | tr '\n' ' ')"
        fi
    elif [ "$rc" -ne 0 ]; then
        grep -vE '^\[ +(RUN|OK) +\]' "$logs/$t.log" | tail -n 60
        if is_timing_only "$t"; then
            verdict="failed (exit $rc), timing only: ignored"
        else
            verdict="FAILED (exit $rc)"
            failed=1
        fi
    else
        verdict=ok
    fi
    results+=("$(printf '%-16s %4ds  %s' "$t" "$took" "$verdict")")
    echo "${results[-1]}"
done

printf '\n'
printf '%s\n' "${results[@]}"
if [ "$failed" -ne 0 ]; then
    echo "valgrind.sh: FAILED (logs in $logs)"
    exit 1
fi
echo "valgrind.sh: no memory error, no leak, in ${#tests[@]} test(s)"
