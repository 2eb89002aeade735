#!/usr/bin/env bash
# Check the Promela models with spin: the lock protocol (model/redlock.pml)
# and the single-node waiter queue (model/queue.pml).
#
#   scripts/model.sh           every configuration below
#   scripts/model.sh --quick   skip the large exhaustive N=3 run
#   scripts/model.sh --help    this text
#
# Runs (exhaustive search, -DCOLLAPSE; no bitstate):
#   new-n1           new design, N=1, A1+A2+WD+B             expect no error
#   new-n3           new design, N=3, A1+A2+WD (no B, 1 round) expect no error
#   old-reacquire    -DOLD_REACQUIRE, N=3 (BUG 1)             expect an error
#   old-ghost        -DOLD_GHOST, N=1, S1 only (BUG 2)        expect an error
#   old-release      -DOLD_RELEASE, N=1 (release with siblings) expect an error
#   brief-gate       -DBRIEF_GATE, N=1 (D2-D4 as first drafted) expect an error
#   no-renew-gate    -DPER_NODE_SKIP -DNO_RENEW_GATE, N=3      expect an error
#   queue-n1         queue.pml: the waiter queue as specified  expect no error
#   queue-recv-base  -DRECV_BASE: grant validity from receipt  expect an error
#   queue-no-token   -DNO_TOKEN_CHECK: release unchecked       expect an error
#   queue-last-push  -DLAST_PUSH_BASE: from the latest push    expect an error
#   queue-strict-b   -DSTRICT_B: bound B without the delay     expect an error
# Fails (exit 1) when a new-design or queue-n1 run finds an error or an
# old rule or mutant passes.  Needs spin and gcc (Debian: apt-get install
# spin gcc); installs nothing: exits 2 when one is missing.  pan files and
# trails go to $MODEL_OUT (default build/model/, git-ignored), with each
# counterexample replayed into <run>/trail.txt.  The two largest runs go in
# parallel (2 cores): new-n3 (about 3.5 GB of memory and 2.5 minutes) with
# the rest in full mode, queue-n1 (about 1.5 GB, 30 s) with the rest in
# --quick mode.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
quick=0
for arg in "$@"; do
    case "$arg" in
    --quick) quick=1 ;;
    -h | --help)
        # the comment block at the top of this file
        awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *)
        echo "model.sh: unknown argument: $arg (try --help)" >&2
        exit 64
        ;;
    esac
done

for tool in spin gcc; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "model.sh: $tool is missing; install it, e.g.: sudo apt-get install $tool" >&2
        exit 2
    fi
done

out=${MODEL_OUT:-$root/build/model}
mkdir -p "$out"
rm -f "$out"/*/result.txt

# run NAME EXPECT(ok|error) SPIN-FLAGS...   (the model: $RUN_PML, default
# redlock.pml; qrun runs queue.pml)
run() {
    local name=$1 expect=$2
    shift 2
    local pml=${RUN_PML:-redlock.pml}
    local d=$out/$name
    rm -rf "$d"
    mkdir -p "$d"
    cp "$root/model/$pml" "$d/$pml"
    (
        cd "$d"
        spin -a "$@" "$pml" >spin.log 2>&1
        gcc -O2 -DCOLLAPSE -DVECTORSZ=2048 -o pan pan.c >gcc.log 2>&1
        # -n: no unreached-code report; -m: depth; -w26: hash table
        # (no GNU time(1): a minbase system lacks it; pan reports memory)
        local t0 t1
        t0=$(date +%s.%N)
        ./pan -m1000000 -w26 -n >pan.out 2>&1 || true
        t1=$(date +%s.%N)
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f 0\n", b - a }' >time.txt
        if [ -f "$pml.trail" ]; then
            spin "$@" -t "$pml" 2>&1 |
                grep -v -E '^\s*[a-z_]+(\[[0-9]+\])?(\([0-9]+\))?(:[a-z_]+)? = |Never claim moves|proc |processes' \
                    >trail.txt || true
        fi
    )
    local errors states trans mem secs rss verdict
    errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$d/pan.out")
    states=$(awk '/states, stored/ {print $1}' "$d/pan.out")
    trans=$(awk '/transitions \(= stored/ {print $1}' "$d/pan.out")
    mem=$(awk '/total actual memory usage/ {print $1}' "$d/pan.out")
    read -r secs rss <"$d/time.txt" || true
    if [ -z "$errors" ]; then
        verdict="FAIL (pan did not finish; see $d/pan.out)"
    elif [ "$expect" = ok ] && [ "$errors" = 0 ]; then
        verdict="ok: no error"
    elif [ "$expect" = error ] && [ "$errors" != 0 ]; then
        verdict="ok: violation found (trail: $d/trail.txt)"
    elif [ "$expect" = ok ]; then
        verdict="FAIL: violation found (trail: $d/trail.txt)"
    else
        verdict="FAIL: the old rule (or mutant) passed: the model has no teeth here"
    fi
    printf '%-15s %-40s states %10s transitions %11s memory %8s MB time %7ss  %s\n' \
        "$name" "$*" "${states:-?}" "${trans:-?}" "${mem:-?}" "${secs:-?}" "$verdict" \
        >"$d/result.txt"
    case "$verdict" in ok:*) ;; *) return 1 ;; esac
}
qrun() { RUN_PML=queue.pml run "$@"; }

cd "$root"
echo "model.sh: spin $(spin -V | awk '{print $3}'), output in $out"
pids=()
names=()
if [ "$quick" -eq 0 ]; then
    run new-n3 ok -DNN=3 -DBATT=0 -DWDROUNDS=1 &
    pids+=($!)
    names+=(new-n3)
else
    qrun queue-n1 ok &
    pids+=($!)
    names+=(queue-n1)
fi
status=0
run new-n1 ok -DNN=1 || status=1
run old-reacquire error -DNN=3 -DOLD_REACQUIRE -DA2_AFTER_HOLD -DA2MODE=1 -DBATT=0 -DWDROUNDS=1 || status=1
run old-ghost error -DNN=1 -DOLD_GHOST -DONLY_S1 || status=1
run old-release error -DNN=1 -DOLD_RELEASE || status=1
run brief-gate error -DNN=1 -DBRIEF_GATE || status=1
run no-renew-gate error -DNN=3 -DPER_NODE_SKIP -DNO_RENEW_GATE -DBATT=0 -DWDROUNDS=2 || status=1
if [ "$quick" -eq 0 ]; then
    qrun queue-n1 ok || status=1
fi
qrun queue-recv-base error -DRECV_BASE -DONLY_S || status=1
qrun queue-no-token error -DNO_TOKEN_CHECK -DONLY_S || status=1
qrun queue-last-push error -DLAST_PUSH_BASE -DONLY_S || status=1
qrun queue-strict-b error -DSTRICT_B || status=1
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || status=1
done
for name in new-n1 new-n3 old-reacquire old-ghost old-release brief-gate no-renew-gate \
    queue-n1 queue-recv-base queue-no-token queue-last-push queue-strict-b; do
    [ -f "$out/$name/result.txt" ] && cat "$out/$name/result.txt"
done
# Keep only what is needed to read the results: the big pan binaries go.
rm -f "$out"/*/pan "$out"/*/pan.[bchmpt]
if [ "$status" -ne 0 ]; then
    echo "model.sh: FAILED" >&2
    exit 1
fi
echo "model.sh: all runs as expected"
