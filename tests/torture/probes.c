/*
 * Probes: short, deterministic fault sequences that check one invariant
 * each, run before the random scenarios.  Each reproduces a way the
 * random runs can (rarely) break a lock, so that it fails every time
 * rather than once in many seeds.  Each says which promise of the API it
 * checks (no other holder while validity > 0; a kept-alive lock on a
 * healthy node is kept).
 *
 * They run in the driver process before any child is forked, and free
 * every client (and so every library thread) before returning.
 */
#include "torture.h"

#include "redis_server.h"
#include "redlock.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static redlock_client *connect_one(FILE *out, rt_server *s)
{
    redlock_options o;
    redlock_options_init(&o);
    o.connect_timeout_ms = 200;
    o.io_timeout_ms = 200;
    o.retry_delay_ms = 20;
    redlock_status st;
    redlock_client *c = redlock_connect((const char *const[]){s->url}, 1, &o,
                                        &st);
    if (!c)
        fprintf(out, "    connect: %s: %s\n", redlock_strerror(st),
                redlock_last_error());
    return c;
}

/*
 * extend-shorter-reply-lost: A holds k with a 5 s ttl and extends it to
 * 300 ms while the node is stopped (SIGSTOP): the request waits in the
 * node's socket, A's call times out (IO: "the lock may still be held until
 * its validity ends"), and A keeps its 5 s validity.  The node resumes and
 * applies the PEXPIRE 300.  300 ms later B acquires k while A is still
 * promised seconds.  The library should assume that a request it could not
 * confirm may have been applied: after a failed extend, validity cannot
 * exceed what the new ttl would give.
 * Returns 1 when the invariant broke, 0 when it held, -1 when the probe
 * could not run (or the node did not apply the stale request: nothing
 * shown either way).
 */
static int probe_extend_shorter(FILE *out)
{
    rt_server s;
    if (rt_server_start(&s, NULL) != 0)
        return -1;
    int rc = -1;
    redlock_client *a = connect_one(out, &s), *b = connect_one(out, &s);
    redlock_lock *la = NULL, *lb = NULL;
    if (!a || !b)
        goto done;
    redlock_status st = redlock_acquire(a, "probe:k", 5000, 0, &la);
    if (st != REDLOCK_OK) {
        fprintf(out, "    A acquire: %s\n", redlock_strerror(st));
        goto done;
    }
    rt_server_pause(&s);
    st = redlock_extend(la, 300);
    int64_t v_after = redlock_validity_ms(la);
    rt_server_resume(&s);
    fprintf(out, "    A: acquire ttl 5000, extend(300) on a stopped node: %s;"
                 " validity after it %" PRId64 " ms\n",
            redlock_strerror(st), v_after);
    sleep_ms(50);
    long long pttl = rt_pttl(&s, "probe:k");
    fprintf(out, "    the node resumed: PTTL of the key %lld ms\n", pttl);
    if (st == REDLOCK_OK || pttl < 0 || pttl > 1000) {
        fprintf(out, "    inconclusive: the extend was not applied late\n");
        goto done;
    }
    st = redlock_acquire(b, "probe:k", 5000, 2000, &lb);
    int64_t va = redlock_validity_ms(la);
    int held = redlock_held(la);
    fprintf(out, "    B: acquire (wait 2 s): %s; A at that moment: held %d, "
                 "validity %" PRId64 " ms\n",
            redlock_strerror(st), held, va);
    rc = st == REDLOCK_OK && held && va > 0;
done:
    if (lb)
        redlock_release(lb);
    if (la)
        redlock_release(la);
    redlock_client_free(a);
    redlock_client_free(b);
    rt_server_stop(&s);
    return rc;
}

/*
 * keepalive-late: A takes k with a 600 ms ttl, works 450 ms, then hands it
 * to the watchdog (validity ~140 ms left) and the node stays healthy.  The
 * watchdog must renew before the key expires: "never less often than every
 * ttl/2, so that a healthy connection can never let a kept-alive lock
 * expire".  The first renewal is due one interval (ttl/3 = 200 ms) after
 * redlock_keepalive(), not after the acquire, so it comes after the key is
 * gone, finds no key, and the lock is lost with nothing wrong anywhere.
 * Returns 1 when the lock was lost, 0 when it was kept, -1 when the probe
 * could not run.
 */
static int probe_keepalive_late(FILE *out)
{
    rt_server s;
    if (rt_server_start(&s, NULL) != 0)
        return -1;
    int rc = -1;
    redlock_options o;
    redlock_options_init(&o);
    o.renew_floor_ms = 0;
    redlock_status st;
    redlock_client *a = redlock_connect((const char *const[]){s.url}, 1, &o,
                                        &st);
    redlock_lock *l = NULL;
    if (!a || redlock_acquire(a, "probe:k", 600, 0, &l) != REDLOCK_OK)
        goto done;
    sleep_ms(450);
    int64_t v = redlock_validity_ms(l);
    st = redlock_keepalive(l);
    fprintf(out, "    acquire ttl 600 ms, 450 ms later (validity %" PRId64
                 " ms) keepalive: %s\n",
            v, redlock_strerror(st));
    if (st != REDLOCK_OK || v <= 0)
        goto done;
    rc = 0;
    for (int i = 1; i <= 10 && rc == 0; i++) {
        sleep_ms(100);
        if (!redlock_held(l)) {
            fprintf(out, "    +%d ms: lost (key PTTL %lld) on a healthy "
                         "node\n",
                    i * 100, rt_pttl(&s, "probe:k"));
            rc = 1;
        }
    }
    if (rc == 0)
        fprintf(out, "    held for 1 s after keepalive\n");
done:
    if (l)
        redlock_release(l);
    redlock_client_free(a);
    rt_server_stop(&s);
    return rc;
}

typedef struct probe {
    const char *name;
    int (*run)(FILE *out);
    const char *broken; /* what a failure means */
} probe;

static const probe probes[] = {
    {"extend-shorter-reply-lost", probe_extend_shorter,
     "another holder acquired while the library still gave validity"},
    {"keepalive-late", probe_keepalive_late,
     "a kept-alive lock expired on a healthy node"},
};

int t_probes(FILE *out)
{
    int failed = 0;
    fprintf(out, "\n==== probes: deterministic fault sequences\n");
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        fprintf(out, "  probe %s\n", probes[i].name);
        fflush(out);
        int r = probes[i].run(out);
        fprintf(out, "  probe %s: %s%s\n", probes[i].name,
                r > 0    ? "FAIL: "
                : r == 0 ? "PASS"
                         : "skipped (could not run)",
                r > 0 ? probes[i].broken : "");
        failed += r > 0;
    }
    return failed;
}
