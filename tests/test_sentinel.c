/*
 * Sentinel URLs against real processes: a master, two replicas and three
 * redis-sentinel (tests/support/sentinel_group.h), one group per test.
 * srv[2] has replica-priority 0, so every failover promotes srv[1].
 * With $REDLOCK_TEST_TLS (ctest's test_sentinel_tls) the same cases run
 * with TLS-only servers and sentinels, on rediss+sentinel:// URLs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "redlock.h"
#include "redis_server.h"
#include "sentinel_group.h"

static atomic_int lost_calls;

static void on_lost(const redlock_lock *l, void *arg)
{
    (void)l;
    (void)arg;
    atomic_fetch_add(&lost_calls, 1);
}

static redlock_client *connect_n(const char *const *urls, size_t n,
                                 int min_replicas)
{
    redlock_options o;
    redlock_options_init(&o);
    o.connect_timeout_ms = 1000;
    o.io_timeout_ms = 1000;
    o.renew_floor_ms = 100;
    o.min_replicas = min_replicas;
    o.on_lost = on_lost;
    redlock_status st;
    redlock_client *c = redlock_connect(urls, n, &o, &st);
    if (!c)
        fprintf(stderr, "connect: %s: %s\n", redlock_strerror(st),
                redlock_last_error());
    atomic_store(&lost_calls, 0);
    return c;
}

static redlock_client *connect1(const rt_sentinel_group *g, int min_replicas)
{
    const char *urls[] = {g->url};
    return connect_n(urls, 1, min_replicas);
}

static int token_is(rt_server *s, const char *key, const char *token)
{
    char *v = rt_get(s, key);
    int yes = v && token && strcmp(v, token) == 0;
    free(v);
    return yes;
}

/* A failover while a kept-alive lock is held (replicated: min_replicas):
 * the renewals follow the master, the lock stays held, on_lost is not
 * called, and the key on the new master is renewed. */
static void test_failover_keepalive(void **state)
{
    (void)state;
    rt_sentinel_group g;
    assert_int_equal(rt_sentinel_group_start(&g, "mk"), 0);
    redlock_client *c = connect1(&g, 1);
    assert_non_null(c);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "job", 6000, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK);

    int m = rt_sentinel_failover(&g, 30000);
    assert_int_equal(m, 1);
    /* Renewals (every 2 s) on the new master. */
    rt_sleep_ms(5000);
    assert_true(redlock_held(l));
    assert_int_equal(atomic_load(&lost_calls), 0);
    assert_true(token_is(&g.srv[1], "job", redlock_token(l)));
    long long pttl = rt_pttl(&g.srv[1], "job");
    assert_true(pttl > 3000); /* renewed there: 6000 ms, minus < 2 s */
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    assert_null(rt_get(&g.srv[1], "job"));
    redlock_client_free(c);
    rt_sentinel_group_stop(&g);
}

/* The safety point.  The replica to be promoted is paused before the
 * acquire, and the master's stream to it is backed up (32 MiB ahead of
 * the lock's SET), so the lock key is still in the master's memory only
 * when the master is killed: the promoted replica never got it.  The
 * watchdog must report the lock lost (its renewal finds no key), never
 * write it again; another client can then take it. */
static void test_unreplicated_key_is_lost(void **state)
{
    (void)state;
    rt_sentinel_group g;
    assert_int_equal(rt_sentinel_group_start(&g, "mu"), 0);
    redlock_client *c = connect1(&g, 0);
    assert_non_null(c);

    assert_int_equal(rt_server_pause(&g.srv[1]), 0);
    size_t big = 32u << 20;
    char *junk = malloc(big);
    assert_non_null(junk);
    memset(junk, 'x', big);
    redisContext *ctx = rt_connect(&g.srv[0]); /* TCP, or unix in TLS mode */
    assert_true(ctx && !ctx->err);
    redisReply *r = redisCommand(ctx, "SET junk %b", junk, big);
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(ctx);
    free(junk);

    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "job", 8000, 0, &l), REDLOCK_OK);
    char token[256];
    snprintf(token, sizeof token, "%s", redlock_token(l));
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK);
    rt_server_kill(&g.srv[0]);
    assert_int_equal(rt_server_resume(&g.srv[1]), 0);

    assert_int_equal(rt_sentinel_wait_switch(&g, 0, 30000), 1);
    /* What the failover left: the promoted replica lacks our key. */
    rt_sleep_ms(500);
    long long until = rt_now_ms() + 10000;
    while (atomic_load(&lost_calls) == 0 && rt_now_ms() < until)
        rt_sleep_ms(50);
    assert_int_equal(atomic_load(&lost_calls), 1);
    assert_false(redlock_held(l));
    assert_false(token_is(&g.srv[1], "job", token));

    /* Another client takes it; ours is never written again. */
    redlock_client *c2 = connect1(&g, 0);
    assert_non_null(c2);
    redlock_lock *l2;
    assert_int_equal(redlock_acquire(c2, "job", 10000, 5000, &l2), REDLOCK_OK);
    for (int i = 0; i < 20; i++) {
        assert_true(token_is(&g.srv[1], "job", redlock_token(l2)));
        rt_sleep_ms(100);
    }
    assert_int_equal(redlock_release(l), REDLOCK_NOT_HELD);
    assert_true(token_is(&g.srv[1], "job", redlock_token(l2)));
    assert_int_equal(redlock_release(l2), REDLOCK_OK);
    redlock_client_free(c2);
    redlock_client_free(c);
    rt_sentinel_group_stop(&g);
}

/* g.url with "user:password@" put in after the scheme. */
static void url_as(const rt_sentinel_group *g, const char *userinfo, char *out,
                   size_t len)
{
    const char *rest = strstr(g->url, "://") + 3;
    snprintf(out, len, "%.*s%s@%s", (int)(rest - g->url), g->url, userinfo,
             rest);
}

/* The old master cut off from the sentinels (and its replicas) but not
 * from us, and the one sentinel we listen to stalled, not gone: no
 * message comes and no connection breaks.  The other two fail over to a
 * replica that never had our key, and another client takes the lock
 * there.  We must leave the old master by asking the sentinels (the
 * watcher's poll) and find the lock lost, not renew it there for ever
 * beside the new holder. */
static void test_stale_master_is_left(void **state)
{
    (void)state;
    rt_sentinel_group g;
    assert_int_equal(rt_sentinel_group_start(&g, "ms"), 0);
    /* The lock clients' own ACL user, on every server: the one promoted
     * must know it too. */
    for (int i = 0; i < 3; i++)
        assert_true(rt_cmd_ok(&g.srv[i],
                              "ACL SETUSER locker on >lpw ~* &* +@all"));
    char url[700];
    url_as(&g, "locker:lpw", url, sizeof url);
    /* The sentinels' own login: their default user (nopass: any password
     * is accepted), not the master's locker. */
    strcat(url, "?sentinel_user=default&sentinel_password=any");
    const char *urls[] = {url};
    redlock_client *a = connect_n(urls, 1, 0);
    assert_non_null(a);
    rt_sleep_ms(500); /* its watcher subscribes to the URL's first sentinel */
    assert_int_equal(kill(g.sen[0].pid, SIGSTOP), 0);

    /* Cut: the sentinels and the replicas log in as the default user. */
    assert_true(rt_cmd_ok(&g.srv[0], "ACL SETUSER default off"));
    snprintf(g.srv[0].user, sizeof g.srv[0].user, "locker");
    snprintf(g.srv[0].password, sizeof g.srv[0].password, "lpw");
    const char *kinds[] = {"normal", "pubsub", "replica"};
    for (int i = 0; i < 3; i++) {
        redisReply *r = rt_cmd(&g.srv[0], "CLIENT KILL TYPE %s", kinds[i]);
        if (r)
            freeReplyObject(r);
    }

    redlock_lock *l;
    assert_int_equal(redlock_acquire(a, "kx", 3000, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK); /* every 1 s */
    rt_sleep_ms(200);
    char *copy = rt_get(&g.srv[1], "kx");
    assert_null(copy); /* never replicated */

    /* The two sentinels left fail over to srv[1] by themselves. */
    long long until = rt_now_ms() + 40000;
    while (rt_now_ms() < until && (rt_sentinel_master_port(&g, 1) != g.srv[1].port ||
                                rt_sentinel_master_port(&g, 2) != g.srv[1].port))
        rt_sleep_ms(100);
    assert_int_equal(rt_sentinel_master_port(&g, 1), g.srv[1].port);
    long long switched = rt_now_ms();

    /* Within a poll, a renewal and a margin, A is on srv[1] and has
     * found its key missing there. */
    while (redlock_held(l) && rt_now_ms() < switched + 8000)
        rt_sleep_ms(50);
    assert_false(redlock_held(l));
    assert_true(atomic_load(&lost_calls) >= 1);

    redlock_client *c = connect_n(urls, 1, 0);
    assert_non_null(c);
    redlock_lock *l2;
    assert_int_equal(redlock_acquire(c, "kx", 10000, 0, &l2), REDLOCK_OK);
    assert_true(token_is(&g.srv[1], "kx", redlock_token(l2)));
    assert_int_equal(redlock_release(l2), REDLOCK_OK);
    assert_int_equal(redlock_release(l), REDLOCK_NOT_HELD);
    redlock_client_free(c);
    redlock_client_free(a);
    kill(g.sen[0].pid, SIGCONT);
    rt_sentinel_group_stop(&g);
}

/* Sentinels that refuse us: a password they want and we lack is
 * REDLOCK_AUTH (no wait cures it), not REDLOCK_IO; over TLS, a sentinel
 * certificate we cannot verify is REDLOCK_TLS. */
static void test_sentinel_refusals(void **state)
{
    (void)state;
    rt_sentinel_group g;
    assert_int_equal(rt_sentinel_group_start(&g, "mr"), 0);
    redlock_options o;
    redlock_options_init(&o);
    o.connect_timeout_ms = 1000;
    o.io_timeout_ms = 1000;
    redlock_status st;
    const char *urls[] = {g.url};
    if (g.tls) {
        char ca[300];
        snprintf(ca, sizeof ca, "%s/other-ca.crt", g.certdir);
        o.tls_cacert = ca;
        assert_null(redlock_connect(urls, 1, &o, &st));
        assert_int_equal(st, REDLOCK_TLS);
        assert_non_null(strstr(redlock_last_error(), "unknown CA"));
        o.tls_cacert = NULL;
    } else {
        printf("[ NOTE     ] plaintext mode: the TLS refusal is checked by "
               "test_sentinel_tls\n");
    }
    /* Last, as the harness talks to the sentinels without a password. */
    for (int i = 0; i < RT_SENTINELS; i++) {
        redisReply *r = rt_sentinel_cmd(&g, i, "ACL SETUSER default on >spw");
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STATUS);
        freeReplyObject(r);
    }
    assert_null(redlock_connect(urls, 1, &o, &st));
    assert_int_equal(st, REDLOCK_AUTH);
    assert_non_null(strstr(redlock_last_error(), "NOAUTH"));
    char url[700];
    snprintf(url, sizeof url, "%s?sentinel_password=spw", g.url);
    urls[0] = url;
    redlock_client *c = redlock_connect(urls, 1, &o, &st);
    assert_non_null(c);
    redlock_client_free(c);
    rt_sentinel_group_stop(&g);
}

/* The master is killed (SIGKILL) while another holds the lock: a wait
 * rides out the failover and takes the lock on the new master.  Then the
 * errors: a master name nobody knows, and all sentinels down. */
static void test_killed_master_and_errors(void **state)
{
    (void)state;
    rt_sentinel_group g;
    assert_int_equal(rt_sentinel_group_start(&g, "mkill"), 0);

    char bad[600];
    snprintf(bad, sizeof bad, "%.*s/nosuch", (int)(strrchr(g.url, '/') - g.url),
             g.url);
    const char *bad_urls[] = {bad};
    redlock_status st;
    assert_null(redlock_connect(bad_urls, 1, NULL, &st));
    assert_int_equal(st, REDLOCK_INVALID);
    assert_non_null(strstr(redlock_last_error(),
                           "no sentinel knows a master named \"nosuch\""));

    redlock_client *holder = connect1(&g, 1);
    redlock_client *c = connect1(&g, 0);
    assert_non_null(holder);
    assert_non_null(c);
    redlock_lock *h, *l;
    assert_int_equal(redlock_acquire(holder, "job", 2000, 0, &h), REDLOCK_OK);
    redlock_detach(h); /* held until its ttl ends, on the replicas too */
    rt_server_kill(&g.srv[0]);
    long long t0 = rt_now_ms();
    assert_int_equal(redlock_acquire(c, "job", 5000, 30000, &l), REDLOCK_OK);
    assert_true(rt_now_ms() - t0 < 31000);
    assert_int_equal(rt_sentinel_wait_switch(&g, 0, 5000), 1);
    assert_true(token_is(&g.srv[1], "job", redlock_token(l)));
    assert_int_equal(redlock_release(l), REDLOCK_OK);

    /* Everything down: a try fails with REDLOCK_IO within its bound. */
    rt_sentinel_kill(&g, -1);
    rt_server_kill(&g.srv[1]);
    t0 = rt_now_ms();
    st = redlock_acquire(c, "job", 5000, 0, &l);
    assert_int_equal(st, REDLOCK_IO);
    assert_true(rt_now_ms() - t0 < 1000 + 1000 + 1000);

    redlock_client_free(holder);
    redlock_client_free(c);
    rt_sentinel_group_stop(&g);
}

/* No sentinel listening at all: REDLOCK_IO, naming each one. */
static void test_no_sentinel_answers(void **state)
{
    (void)state;
    char url[200];
    int p1 = rt_free_port(), p2 = rt_free_port();
    snprintf(url, sizeof url, "%s://127.0.0.1:%d,127.0.0.1:%d/m",
             rt_sentinel_scheme(), p1, p2);
    const char *urls[] = {url};
    redlock_options o;
    redlock_options_init(&o);
    o.connect_timeout_ms = 500;
    o.io_timeout_ms = 500;
    redlock_status st;
    long long t0 = rt_now_ms();
    assert_null(redlock_connect(urls, 1, &o, &st));
    assert_true(rt_now_ms() - t0 < 500 + 500 + 1000);
    assert_int_equal(st, REDLOCK_IO);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", p2);
    assert_non_null(strstr(redlock_last_error(), "no sentinel answered"));
    assert_non_null(strstr(redlock_last_error(), want));
}

/* One live sentinel of three is no majority: it may be one cut off from
 * the rest, naming an old master that still takes writes (a second
 * holder there).  REDLOCK_IO, saying how many answered. */
static void test_minority_of_sentinels(void **state)
{
    (void)state;
    rt_sentinel_group g;
    assert_int_equal(rt_sentinel_group_start(&g, "mm"), 0);
    char url[300];
    int port = g.tls ? g.sen[0].tls_port : g.sen[0].port;
    snprintf(url, sizeof url, "%s://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/mm",
             rt_sentinel_scheme(), port, rt_free_port(), rt_free_port());
    const char *urls[] = {url};
    redlock_options o;
    redlock_options_init(&o);
    o.connect_timeout_ms = 500;
    o.io_timeout_ms = 500;
    redlock_status st;
    assert_null(redlock_connect(urls, 1, &o, &st));
    assert_int_equal(st, REDLOCK_IO);
    assert_non_null(strstr(redlock_last_error(), "only 1 of 3 sentinels"));
    /* Two of three are a majority. */
    snprintf(url, sizeof url, "%s://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/mm",
             rt_sentinel_scheme(), port,
             g.tls ? g.sen[1].tls_port : g.sen[1].port, rt_free_port());
    redlock_client *c = redlock_connect(urls, 1, &o, &st);
    assert_non_null(c);
    redlock_client_free(c);
    rt_sentinel_group_stop(&g);
}

/* A Sentinel group as one node of a 3-node Redlock quorum, and
 * +switch-master: after a failover, the very next acquire lands on the
 * new master, though the old one still accepts writes (it is demoted
 * only later) and the client had a pooled connection to it. */
static void test_quorum_and_switch_message(void **state)
{
    (void)state;
    rt_sentinel_group g;
    rt_server a, b;
    assert_int_equal(rt_sentinel_group_start(&g, "mq"), 0);
    assert_int_equal(rt_server_start(&a, NULL), 0);
    assert_int_equal(rt_server_start(&b, NULL), 0);
    const char *urls[] = {g.url, a.url, b.url};
    redlock_client *c = connect_n(urls, 3, 0);
    assert_non_null(c);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "k1", 5000, 0, &l), REDLOCK_OK);
    assert_true(token_is(&g.srv[0], "k1", redlock_token(l)));
    assert_int_equal(redlock_release(l), REDLOCK_OK);

    assert_int_equal(rt_sentinel_failover(&g, 30000), 1);
    rt_sleep_ms(1000); /* the message's way to the client's thread */
    assert_int_equal(redlock_acquire(c, "k2", 5000, 0, &l), REDLOCK_OK);
    assert_true(token_is(&g.srv[1], "k2", redlock_token(l)));
    assert_false(token_is(&g.srv[0], "k2", redlock_token(l)));
    assert_true(token_is(&a, "k2", redlock_token(l)));
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    redlock_client_free(c);
    rt_server_stop(&a);
    rt_server_stop(&b);
    rt_sentinel_group_stop(&g);
}

struct waiter {
    redlock_client *c;
    redlock_status st;
    long long done_ms;
    redlock_lock *l;
};

static void *wait_for_lock(void *arg)
{
    struct waiter *w = arg;
    w->st = redlock_acquire(w->c, "q", 10000, 20000, &w->l);
    w->done_ms = rt_now_ms();
    return NULL;
}

/* A waiter queued before a failover gets the lock soon after the holder
 * releases it on the new master, well before the holder's ttl (20 s) or
 * the old master's demotion (about 10 s after a forced failover). */
static void test_waiter_follows_failover(void **state)
{
    (void)state;
    rt_sentinel_group g;
    assert_int_equal(rt_sentinel_group_start(&g, "mw"), 0);
    redlock_client *holder = connect1(&g, 0);
    assert_non_null(holder);
    redlock_lock *h;
    assert_int_equal(redlock_acquire(holder, "q", 20000, 0, &h), REDLOCK_OK);
    struct waiter w = {connect1(&g, 0), REDLOCK_INVALID, 0, NULL};
    assert_non_null(w.c);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_for_lock, &w), 0);
    rt_sleep_ms(500); /* queued, and listening */
    redisReply *r = rt_cmd(&g.srv[0], "WAIT 2 2000");
    assert_true(r && r->type == REDIS_REPLY_INTEGER && r->integer == 2);
    freeReplyObject(r);

    assert_int_equal(rt_sentinel_failover(&g, 30000), 1);
    rt_sleep_ms(1000);
    long long released = rt_now_ms();
    assert_int_equal(redlock_release(h), REDLOCK_OK);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(w.st, REDLOCK_OK);
    assert_true(w.done_ms - released < 4000);
    assert_true(token_is(&g.srv[1], "q", redlock_token(w.l)));
    assert_int_equal(redlock_release(w.l), REDLOCK_OK);
    redlock_client_free(w.c);
    redlock_client_free(holder);
    rt_sentinel_group_stop(&g);
}

/* Subscribers to the library's grant channels ("redlock:grant:<client
 * id>", see src/queue.c) on s: shard channels (Redis 7) or plain ones. */
static long long grant_subscriptions(rt_server *s)
{
    long long n = 0;
    const char *cmds[] = {"PUBSUB SHARDCHANNELS redlock:grant:*",
                          "PUBSUB CHANNELS redlock:grant:*"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        redisReply *r = rt_cmd(s, cmds[i]);
        if (r && r->type == REDIS_REPLY_ARRAY)
            n += (long long)r->elements;
        if (r)
            freeReplyObject(r);
    }
    return n;
}

static long long llen(rt_server *s, const char *key)
{
    redisReply *r = rt_cmd(s, "LLEN %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return n;
}

static void *wait_for_k(void *arg)
{
    struct waiter *w = arg;
    w->st = redlock_acquire(w->c, "K", 10000, 15000, &w->l);
    w->done_ms = rt_now_ms();
    return NULL;
}

/* A queued waiter's grant follows the master.  B waits for K (queued, its
 * grant channel subscribed on the old master), a failover moves the
 * master, A releases K on the new master: the release itself must hand K
 * to B (K holds B's token the moment the release returns), which needs
 * B's subscription on the new master.  The old master keeps its
 * subscribers after a forced failover until the sentinels demote it (at
 * least 8 s later, killing its pubsub clients), so only a client that
 * moves them itself gets the grant in time.  One that does not still gets
 * K soon, but by its own next check of the queue (about a second), after
 * the grant reached nobody and the release deleted K: hence the check of
 * K right after the release, not only of B's delay. */
static void test_waiter_moves_with_master(void **state)
{
    (void)state;
    rt_sentinel_group g;
    assert_int_equal(rt_sentinel_group_start(&g, "mwm"), 0);
    redlock_client *a = connect1(&g, 0);
    assert_non_null(a);
    redlock_lock *h;
    assert_int_equal(redlock_acquire(a, "K", 6000, 0, &h), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(h), REDLOCK_OK);
    char atok[256];
    snprintf(atok, sizeof atok, "%s", redlock_token(h));

    struct waiter w = {connect1(&g, 0), REDLOCK_INVALID, 0, NULL};
    assert_non_null(w.c);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_for_k, &w), 0);
    /* Queued: a first wait pushes its entry only once its grant channel
     * is subscribed, so this also says B listens on the old master. */
    long long until = rt_now_ms() + 10000;
    while (llen(&g.srv[0], "K:redlock:q") != 1 && rt_now_ms() < until)
        rt_sleep_ms(20);
    assert_int_equal(llen(&g.srv[0], "K:redlock:q"), 1);
    assert_true(grant_subscriptions(&g.srv[0]) >= 1);
    redisReply *r = rt_cmd(&g.srv[0], "WAIT 2 2000");
    assert_true(r && r->type == REDIS_REPLY_INTEGER && r->integer == 2);
    freeReplyObject(r);

    assert_int_equal(rt_sentinel_failover(&g, 30000), 1);
    /* The key and B's place in the queue made it to the new master. */
    assert_true(token_is(&g.srv[1], "K", atok));
    assert_int_equal(llen(&g.srv[1], "K:redlock:q"), 1);
    /* Before the release, waited for rather than assumed: A follows (a
     * renewal, every 2 s, lands on the new master, so its release goes
     * there too and not to the old master, still writable), and B's
     * subscription moves once its client learns of the switch.  Bounded
     * at 6 s: the sentinels demote the old master (and kill its pubsub
     * clients, which moves any subscription) no sooner than 8 s after the
     * switch, and a client that waits for that must fail below. */
    long long p0 = rt_pttl(&g.srv[1], "K");
    int renewed = 0;
    long long subs = 0;
    until = rt_now_ms() + 6000;
    while (!(renewed && subs > 0) && rt_now_ms() < until) {
        rt_sleep_ms(50);
        renewed = renewed || rt_pttl(&g.srv[1], "K") > p0;
        subs = grant_subscriptions(&g.srv[1]);
    }
    if (!renewed && rt_slow()) {
        /* Valgrind: the watcher's TLS handshakes with the sentinels can
         * outlast the connect timeout, and the client learns of the switch
         * too late for what this test is about (the grant), which needs
         * it before the old master is demoted.  Told, cleaned up, skipped
         * (test_failover_keepalive covers following the switch). */
        fprintf(stderr, "waiter_moves_with_master: A still renews on the "
                        "old master 6 s after the switch (a slow run): "
                        "skipped\n");
        redlock_release(h);
        pthread_join(t, NULL);
        redlock_release(w.l);
        redlock_client_free(w.c);
        redlock_client_free(a);
        rt_sentinel_group_stop(&g);
        skip();
    }
    assert_true(renewed);
    if (subs < 1)
        fprintf(stderr, "waiter_moves_with_master: no grant subscription on "
                        "the new master 6 s after the switch\n");

    long long released = rt_now_ms();
    assert_int_equal(redlock_release(h), REDLOCK_OK);
    char *after = rt_get(&g.srv[1], "K"); /* what the release left */
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(w.st, REDLOCK_OK);
    fprintf(stderr, "waiter_moves_with_master: B got K %lld ms after the "
                    "release; right after it K was %s\n",
            w.done_ms - released, after ? after : "(none)");
    /* Not at its wait deadline (15 s from its start) nor when the old
     * master would let its subscribers go: within ~3 s of the release. */
    assert_true(w.done_ms - released < 3000);
    assert_true(token_is(&g.srv[1], "K", redlock_token(w.l)));
    /* Handed over by the release itself: the grant reached B. */
    assert_non_null(after);
    assert_string_equal(after, redlock_token(w.l));
    free(after);
    assert_int_equal(redlock_release(w.l), REDLOCK_OK);
    redlock_client_free(w.c);
    redlock_client_free(a);
    rt_sentinel_group_stop(&g);
}

/* The master is turned into a replica behind the sentinels' back (they
 * still name it for a while): a pooled connection's write gets READONLY,
 * which for a Sentinel node is REDLOCK_IO (a failover, ridden out by a
 * wait) rather than REDLOCK_SERVER; a new connection's ROLE shows the
 * replica, and connecting fails rather than reading from it. */
static void test_replica_named(void **state)
{
    (void)state;
    rt_sentinel_group g;
    assert_int_equal(rt_sentinel_group_start(&g, "mrole"), 0);
    redlock_client *c = connect1(&g, 0);
    assert_non_null(c);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "k", 5000, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_release(l), REDLOCK_OK);

    assert_true(rt_cmd_ok(&g.srv[1], "REPLICAOF NO ONE"));
    assert_true(rt_cmd_ok(&g.srv[0], "REPLICAOF 127.0.0.1 %d", g.srv[1].port));
    assert_int_equal(rt_sentinel_master_port(&g, 0), g.srv[0].port);
    assert_int_equal(redlock_acquire(c, "k", 5000, 0, &l), REDLOCK_IO);
    assert_non_null(strstr(redlock_last_error(), "READONLY"));

    const char *urls[] = {g.url};
    redlock_status st;
    assert_null(redlock_connect(urls, 1, NULL, &st));
    assert_int_equal(st, REDLOCK_IO);
    assert_non_null(strstr(redlock_last_error(), "is a replica now"));
    redlock_client_free(c);
    rt_sentinel_group_stop(&g);
}

/* `redlock run` with a Sentinel URL through a failover: the job runs to
 * its end with the lock kept, and redlock exits with the job's status. */
static void test_cli_run_through_failover(void **state)
{
    (void)state;
    rt_sentinel_group g;
    assert_int_equal(rt_sentinel_group_start(&g, "mcli"), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
        }
        execl(REDLOCK_CLI_PATH, "redlock", "-u", g.url, "run", "-t", "6s",
              "job", "--", "sh", "-c", "sleep 6; exit 7", (char *)NULL);
        _exit(127);
    }
    long long until = rt_now_ms() + 5000;
    char *tok;
    while (!(tok = rt_get(&g.srv[0], "job")) && rt_now_ms() < until)
        rt_sleep_ms(20);
    assert_non_null(tok);
    assert_int_equal(rt_sentinel_failover(&g, 30000), 1);
    rt_sleep_ms(1500);
    assert_true(token_is(&g.srv[1], "job", tok));
    free(tok);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 7);
    assert_null(rt_get(&g.srv[1], "job"));
    rt_sentinel_group_stop(&g);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *filter = getenv("REDLOCK_SENTINEL_FILTER");
    if (filter)
        cmocka_set_test_filter(filter);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_sentinel_answers),
        cmocka_unit_test(test_minority_of_sentinels),
        cmocka_unit_test(test_failover_keepalive),
        cmocka_unit_test(test_unreplicated_key_is_lost),
        cmocka_unit_test(test_killed_master_and_errors),
        cmocka_unit_test(test_quorum_and_switch_message),
        cmocka_unit_test(test_waiter_follows_failover),
        cmocka_unit_test(test_waiter_moves_with_master),
        cmocka_unit_test(test_replica_named),
        cmocka_unit_test(test_cli_run_through_failover),
        cmocka_unit_test(test_stale_master_is_left),
        cmocka_unit_test(test_sentinel_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
