#!/usr/bin/env bash
# Demo: two copies of the cron-job example (examples/cron_job.c) start at the
# same moment against one throwaway redis-server; exactly one takes the lock
# and works, the other reports "busy" and exits 75.
#
#   scripts/demo.sh [SECONDS]     how long the winner works (default 2)
#
# Installs missing Debian packages first, builds the example in build/, runs
# redis-server on a free loopback port (never 6379) from a temporary
# directory, and always stops it again (by pid) on exit.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
seconds=${1:-2}

# ---- dependencies -----------------------------------------------------------------
# shellcheck source=scripts/deps.sh
. "$root/scripts/deps.sh"
install_missing "${REDLOCK_PACKAGES[@]}"

# ---- build the example --------------------------------------------------------------
if [ ! -f examples/CMakeLists.txt ] || [ ! -f examples/cron_job.c ]; then
    echo "demo.sh: examples/cron_job.c (target redlock_cron_job) does not exist yet" >&2
    exit 1
fi
cmake -S "$root" -B "$root/build" -DREDLOCK_BUILD_EXAMPLES=ON >/dev/null
if ! cmake --build "$root/build" --target redlock_cron_job --parallel "$(nproc 2>/dev/null || echo 2)"; then
    echo "demo.sh: could not build the example target redlock_cron_job" >&2
    exit 1
fi
bin=$(find "$root/build" -type f -name redlock_cron_job -perm -u+x | head -n 1)
if [ -z "$bin" ]; then
    echo "demo.sh: the example binary redlock_cron_job was not built" >&2
    exit 1
fi

# ---- a throwaway redis-server ------------------------------------------------------
tmp=$(mktemp -d /tmp/redlock-demo.XXXXXX)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port=""
for _ in $(seq 1 20); do
    candidate=$((20000 + RANDOM % 40000))
    if [ "$candidate" -eq 6379 ] || port_in_use "$candidate"; then
        continue
    fi
    rm -f "$tmp/redis.sock"
    redis-server --port "$candidate" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$tmp" --unixsocket "$tmp/redis.sock" --unixsocketperm 700 \
        --daemonize no --logfile "$tmp/log" >/dev/null 2>&1 &
    server_pid=$!
    # Ready once its unix socket exists (made after the TCP port is bound)
    # and it answers PING; gone early means the port was taken: try another.
    for _ in $(seq 1 250); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            break
        fi
        if [ -S "$tmp/redis.sock" ] &&
            [ "$(redis-cli -p "$candidate" ping 2>/dev/null)" = PONG ]; then
            port=$candidate
            break
        fi
        sleep 0.02
    done
    if [ -n "$port" ]; then
        break
    fi
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
done
if [ -z "$port" ]; then
    echo "demo.sh: could not start redis-server" >&2
    tail -n 20 "$tmp/log" >&2 2>/dev/null || true
    exit 1
fi
url="redis://127.0.0.1:$port"
echo "demo.sh: redis-server pid $server_pid on $url"

# ---- two cron jobs at once ------------------------------------------------------------
echo "demo.sh: starting two copies of $(basename "$bin") $url $seconds"
"$bin" "$url" "$seconds" >"$tmp/a.out" 2>&1 &
pid_a=$!
"$bin" "$url" "$seconds" >"$tmp/b.out" 2>&1 &
pid_b=$!
rc_a=0
wait "$pid_a" || rc_a=$?
rc_b=0
wait "$pid_b" || rc_b=$?

for job in a b; do
    rc_var=rc_$job
    echo "---- job $job (exit ${!rc_var})"
    sed 's/^/    /' "$tmp/$job.out"
done

keys=$(redis-cli -p "$port" dbsize 2>/dev/null || echo "?")
echo "---- keys left in Redis: $keys"

if { [ "$rc_a" -eq 0 ] && [ "$rc_b" -eq 75 ]; } || { [ "$rc_a" -eq 75 ] && [ "$rc_b" -eq 0 ]; }; then
    if [ "$keys" != 0 ]; then
        echo "demo.sh: FAIL: the winner did not release its lock ($keys keys left)" >&2
        exit 1
    fi
    echo "demo.sh: OK: one job ran, the other found the lock busy (exit 75)"
else
    echo "demo.sh: FAIL: expected one job to exit 0 and the other 75, got $rc_a and $rc_b" >&2
    exit 1
fi
