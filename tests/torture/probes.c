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

#include "proxy.h"
#include "redis_server.h"
#include "redlock.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* Wait (10 s at most) until the master sees its replica online. */
static int replica_online(rt_server *m)
{
    for (int i = 0; i < 200; i++) {
        redisReply *r = rt_cmd(m, "INFO replication");
        int ok = r && r->type == REDIS_REPLY_STRING &&
                 strstr(r->str, "state=online");
        if (r)
            freeReplyObject(r);
        if (ok)
            return 0;
        sleep_ms(50);
    }
    return -1;
}

/*
 * noscript-min-replicas: a master with one replica, a client with
 * fencing (the acquire is a script) and min_replicas 1.  A first lock is
 * taken and released while the replica runs (this connection's writes are
 * acknowledged, by the replica's once-a-second REPLCONF ACK); then the replica is stopped and the scripts flushed.  The
 * next acquire's EVALSHA gets NOSCRIPT; a WAIT pipelined behind it counts
 * the replica's acknowledgement of the earlier writes, and the script's
 * EVAL retry has no WAIT of its own: no replica can have the new key, yet
 * the acquire must not say OK.
 * Returns 1 when it said OK, 0 when it did not, -1 when it could not run.
 */
static int probe_noscript_replicas(FILE *out)
{
    rt_server m, r;
    static const char *const margs[] = {"--repl-diskless-sync-delay", "0",
                                        NULL};
    if (rt_server_start(&m, margs) != 0)
        return -1;
    char port[16];
    snprintf(port, sizeof port, "%d", m.port);
    const char *const rargs[] = {"--replicaof", "127.0.0.1", port, NULL};
    if (rt_server_start(&r, rargs) != 0) {
        rt_server_stop(&m);
        return -1;
    }
    int rc = -1;
    redlock_client *c = NULL;
    redlock_lock *l = NULL;
    if (replica_online(&m) != 0) {
        fprintf(out, "    the replica did not come online\n");
        goto done;
    }
    redlock_options o;
    redlock_options_init(&o);
    o.io_timeout_ms = 400;
    o.fencing = 1;
    o.min_replicas = 1;
    redlock_status st;
    c = redlock_connect((const char *const[]){m.url}, 1, &o, &st);
    if (!c)
        goto done;
    st = redlock_acquire(c, "probe:a", 5000, 0, &l);
    if (st != REDLOCK_OK) {
        fprintf(out, "    first acquire (replica running): %s: %s\n",
                redlock_strerror(st), redlock_last_error());
        goto done;
    }
    redlock_release(l);
    l = NULL;
    sleep_ms(1200); /* the replica acknowledges once a second */
    rt_server_pause(&r);
    sleep_ms(20);
    int flushed = rt_cmd_ok(&m, "SCRIPT FLUSH");
    st = redlock_acquire(c, "probe:b", 5000, 0, &l);
    fprintf(out, "    replica stopped, SCRIPT FLUSH %s; fenced acquire "
                 "(min_replicas 1): %s%s%s\n",
            flushed ? "done" : "FAILED", redlock_strerror(st),
            st == REDLOCK_OK ? "" : ": ", st == REDLOCK_OK ? "" :
            redlock_last_error());
    rt_server_resume(&r);
    rc = st == REDLOCK_OK;
done:
    if (l)
        redlock_release(l);
    redlock_client_free(c);
    rt_server_stop(&r);
    rt_server_stop(&m);
    return rc;
}

/*
 * same-token-minority: 3 nodes, one down.  A holds k with token T; B (a
 * handle of the same client) re-acquires k with T.  Whatever B gets, A's
 * lock must stay: a refused re-acquire must not clean up (delete) the
 * token's key on the nodes that answered.  Then C, another token, tries k.
 * Returns 1 when C got it while A was still promised validity (or B was
 * refused as BUSY while A held it), 0 otherwise, -1 when it could not run.
 */
static int probe_same_token(FILE *out)
{
    rt_server s[3];
    int started = 0;
    for (; started < 3; started++)
        if (rt_server_start(&s[started], NULL) != 0)
            break;
    int rc = -1;
    redlock_client *c = NULL;
    redlock_lock *la = NULL, *lb = NULL, *lc = NULL;
    if (started < 3)
        goto done;
    const char *urls[3] = {s[0].url, s[1].url, s[2].url};
    redlock_options o;
    redlock_options_init(&o);
    o.connect_timeout_ms = 200;
    o.io_timeout_ms = 200;
    o.node_timeout_ms = 100;
    redlock_status st;
    c = redlock_connect(urls, 3, &o, &st);
    if (!c)
        goto done;
    rt_server_kill(&s[2]);
    st = redlock_acquire_as(c, "probe:k", "token-T", 5000, 0, &la);
    if (st != REDLOCK_OK) {
        fprintf(out, "    A: %s: %s\n", redlock_strerror(st),
                redlock_last_error());
        goto done;
    }
    redlock_status sb = redlock_acquire_as(c, "probe:k", "token-T", 5000, 0,
                                           &lb);
    fprintf(out, "    node 2 down; A holds probe:k as token-T; B "
                 "acquire_as(token-T): %s%s%s\n",
            redlock_strerror(sb), sb == REDLOCK_OK ? "" : ": ",
            sb == REDLOCK_OK ? "" : redlock_last_error());
    st = redlock_acquire(c, "probe:k", 5000, 0, &lc);
    int64_t va = redlock_validity_ms(la);
    fprintf(out, "    C (a new token): %s; A: held %d, validity %" PRId64
                 " ms\n",
            redlock_strerror(st), redlock_held(la), va);
    rc = (st == REDLOCK_OK && redlock_held(la) && va > 0) ||
         sb == REDLOCK_BUSY;
done:
    if (lc)
        redlock_release(lc);
    if (lb)
        redlock_release(lb);
    if (la)
        redlock_release(la);
    redlock_client_free(c);
    for (int i = 0; i < started; i++)
        rt_server_stop(&s[i]);
    return rc;
}

/*
 * ghost-delete-late: one node behind the delay proxy.  A holds k with
 * token T; every connection is delayed 400 ms while A releases, so the
 * release times out (IO) and its delete is owed as a ghost.  The next call
 * (an inspect) carries the ghost on a connection the proxy delays 350 ms:
 * it times out too (200 ms), and its delete is still on the way.  Then T
 * re-takes k (acquire_as, waiting) on a healthy connection, and the late
 * delete lands.  The new handle must not be left believing it holds a key
 * that is gone.  The delay stays within what the protocol assumes of the
 * network: a request given up on is applied within one more node timeout
 * or never (README, "What a lock guarantees"); a network that holds a
 * request back longer can make a late delete hit a re-take of its token.
 * Returns 1 when another token took k while the new handle was still
 * promised validity, 0 otherwise, -1 when it could not run.
 */
static int probe_ghost_late(FILE *out)
{
    rt_server s;
    if (rt_server_start(&s, NULL) != 0)
        return -1;
    int rc = -1;
    t_proxy *px = t_proxy_start(s.port);
    redlock_client *c = NULL, *d = NULL;
    redlock_lock *la = NULL, *lb = NULL, *lc = NULL;
    if (!px)
        goto done;
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", t_proxy_port(px));
    redlock_options o;
    redlock_options_init(&o);
    o.connect_timeout_ms = 200;
    o.io_timeout_ms = 200;
    redlock_status st;
    c = redlock_connect((const char *const[]){url}, 1, &o, &st);
    d = connect_one(out, &s);
    if (!c || !d)
        goto done;
    if (redlock_acquire_as(c, "probe:k", "token-T", 3000, 0, &la) !=
        REDLOCK_OK)
        goto done;
    t_proxy_delay_all(px, 400, 250);
    st = redlock_release(la);
    la = NULL;
    fprintf(out, "    release through a 400 ms delay: %s\n",
            redlock_strerror(st));
    sleep_ms(300); /* the release itself has landed by now */
    t_proxy_delay_next(px, 350, 1000);
    char buf[64];
    st = redlock_inspect(c, "probe:k", buf, sizeof buf, NULL);
    fprintf(out, "    inspect on a connection delayed 350 ms: %s\n",
            redlock_strerror(st));
    st = redlock_acquire_as(c, "probe:k", "token-T", 3000, 2000, &lb);
    fprintf(out, "    token-T re-takes probe:k: %s\n", redlock_strerror(st));
    if (st != REDLOCK_OK)
        goto done;
    sleep_ms(1000); /* the delayed connection's bytes have landed */
    st = redlock_acquire(d, "probe:k", 3000, 0, &lc);
    int64_t vb = redlock_validity_ms(lb);
    fprintf(out, "    another token: %s (key PTTL %lld); token-T's handle: "
                 "held %d, validity %" PRId64 " ms\n",
            redlock_strerror(st), rt_pttl(&s, "probe:k"), redlock_held(lb),
            vb);
    rc = st == REDLOCK_OK && redlock_held(lb) && vb > 0;
done:
    if (lc)
        redlock_release(lc);
    if (lb)
        redlock_release(lb);
    if (la)
        redlock_release(la);
    redlock_client_free(c);
    redlock_client_free(d);
    t_proxy_stop(px);
    rt_server_stop(&s);
    return rc;
}

/* A waiter process: waits up to 10 s for key, and is killed meanwhile. */
static pid_t spawn_waiter(rt_server *s, const char *key)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    redlock_options o;
    redlock_options_init(&o);
    o.connect_timeout_ms = 200;
    o.io_timeout_ms = 200;
    redlock_status st;
    redlock_client *c = redlock_connect((const char *const[]){s->url}, 1, &o,
                                        &st);
    redlock_lock *l = NULL;
    if (c)
        redlock_acquire(c, key, 3000, 10000, &l);
    _exit(0); /* (not reached: killed while it waits) */
}

/* One round: A holds key, a waiter process queues and is killed with
 * SIGKILL, A releases, and a new client tries at once.  The try's status,
 * or -1 when the round could not run; what the key holds is shown. */
static int dead_waiter_round(FILE *out, rt_server *s, const char *key,
                             int psub)
{
    int rc = -1;
    redlock_client *a = connect_one(out, s), *c = connect_one(out, s);
    redisContext *ps = NULL;
    redlock_lock *la = NULL, *lc = NULL;
    pid_t w = -1;
    if (!a || !c || redlock_acquire(a, key, 5000, 0, &la) != REDLOCK_OK)
        goto done;
    if ((w = spawn_waiter(s, key)) < 0)
        goto done;
    sleep_ms(500); /* it connects, finds the key held, queues */
    if (psub) {
        /* A monitor of everything, as redis-cli's PSUBSCRIBE '*' or a
         * keyspace-event consumer: it receives every message. */
        struct timeval tv = {1, 0};
        ps = redisConnectWithTimeout("127.0.0.1", s->port, tv);
        redisReply *r = ps && !ps->err ? redisCommand(ps, "PSUBSCRIBE *")
                                       : NULL;
        int ok = r && r->type == REDIS_REPLY_ARRAY;
        if (r)
            freeReplyObject(r);
        if (!ok)
            goto done;
    }
    kill(w, SIGKILL);
    waitpid(w, NULL, 0);
    w = -1;
    sleep_ms(100); /* its kernel closed its connections; the node saw it */
    redlock_status rel = redlock_release(la);
    la = NULL;
    redlock_status st = redlock_acquire(c, key, 5000, 0, &lc);
    char *v = rt_get(s, key);
    long long pttl = rt_pttl(s, key);
    fprintf(out, "    %s: A held %s, a waiter process queued and was killed "
                 "(SIGKILL), A released (%s); a try at once: %s; the key "
                 "then holds %s (pttl %lld ms)\n",
            psub ? "with a PSUBSCRIBE * client" : "alone", key,
            redlock_strerror(rel), redlock_strerror(st),
            v ? v : "nothing", pttl);
    free(v);
    rc = (int)st;
done:
    if (w > 0) {
        kill(w, SIGKILL);
        waitpid(w, NULL, 0);
    }
    if (ps)
        redisFree(ps);
    if (lc)
        redlock_release(lc);
    if (la)
        redlock_release(la);
    redlock_client_free(a);
    redlock_client_free(c);
    return rc;
}

/*
 * dead-waiter-psubscribe: with one node a release hands the lock to the
 * first queued waiter still listening, and "a waiter killed while it waits
 * is skipped" (redlock.h): its kernel closed its subscription, so the
 * grant reaches nobody.  But a client doing PSUBSCRIBE * (a monitor, a
 * keyspace-event consumer) receives every message: if the release judges
 * "still listening" by PUBLISH's count, the dead waiter is granted the
 * lock, which then sits unused for that waiter's whole ttl.  Alone first
 * (the control), then with such a client connected.  A liveness matter:
 * 1 when only the second try found the key busy, 0 when both took it, -1
 * when the probe could not run or the control failed too.
 */
static int probe_dead_waiter_psub(FILE *out)
{
    rt_server s;
    if (rt_server_start(&s, NULL) != 0)
        return -1;
    int alone = dead_waiter_round(out, &s, "probe:q1", 0);
    int with = alone == REDLOCK_OK ? dead_waiter_round(out, &s, "probe:q2", 1)
                                   : -1;
    rt_server_stop(&s);
    if (alone != REDLOCK_OK || with < 0)
        return -1;
    return with != REDLOCK_OK;
}

typedef struct probe {
    const char *name;
    int (*run)(FILE *out);
    const char *broken; /* what a failure means */
    int liveness;       /* a failure fails the run only with
                           TORTURE_LIVENESS=strict */
} probe;

static const probe probes[] = {
    {"extend-shorter-reply-lost", probe_extend_shorter,
     "another holder acquired while the library still gave validity", 0},
    {"keepalive-late", probe_keepalive_late,
     "a kept-alive lock expired on a healthy node", 0},
    {"same-token-minority", probe_same_token,
     "a re-acquire by the holder's token was refused, or deleted its lock", 0},
    {"ghost-delete-late", probe_ghost_late,
     "a late token-checked delete removed the lock the token took again", 0},
    {"noscript-min-replicas", probe_noscript_replicas,
     "an acquire said OK that no replica can have acknowledged", 0},
    {"dead-waiter-psubscribe", probe_dead_waiter_psub,
     "a waiter killed while it waited was granted the lock (it then sits "
     "unused for that waiter's ttl) because a PSUBSCRIBE * client also "
     "received the grant",
     1},
};

int t_probes(FILE *out)
{
    int failed = 0;
    const char *lv = getenv("TORTURE_LIVENESS");
    int strict = lv && strcmp(lv, "strict") == 0;
    fprintf(out, "\n==== probes: deterministic fault sequences\n");
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        fprintf(out, "  probe %s\n", probes[i].name);
        fflush(out);
        int r = probes[i].run(out);
        int fatal = r > 0 && (!probes[i].liveness || strict);
        fprintf(out, "  probe %s: %s%s\n", probes[i].name,
                fatal    ? "FAIL: "
                : r > 0  ? "LIVENESS: "
                : r == 0 ? "PASS"
                         : "skipped (could not run)",
                r > 0 ? probes[i].broken : "");
        failed += fatal;
    }
    return failed;
}
