/*
 * Regression tests for the holes an independent review found (issue 9):
 * each test names the item it covers and failed on the code before its fix.
 * Real redis-server processes; a delay proxy where one connection must be
 * slower than another; the fake server only for -LOADING, which no real
 * Redis says on demand.
 */
#include "internal.h"

#include "delay_proxy.h"
#include "fake_server.h"
#include "redis_server.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms) { usleep((useconds_t)ms * 1000); }

static redlock_client *connect_n(const char *const *urls, size_t n,
                                 const redlock_options *o)
{
    redlock_status st;
    redlock_client *c = redlock_connect(urls, n, o, &st);
    if (!c)
        fail_msg("connect: %s", redlock_last_error());
    return c;
}

/* Three nodes, the third one down (nothing listens on its port). */
typedef struct trio {
    rt_server a, b;
    char down[64];
    const char *urls[3];
} trio;

static void trio_start(trio *t)
{
    memset(t, 0, sizeof *t);
    assert_int_equal(rt_server_start(&t->a, NULL), 0);
    assert_int_equal(rt_server_start(&t->b, NULL), 0);
    snprintf(t->down, sizeof t->down, "redis://127.0.0.1:%d", rt_free_port());
    t->urls[0] = t->a.url;
    t->urls[1] = t->b.url;
    t->urls[2] = t->down;
}

static void trio_stop(trio *t)
{
    rt_server_stop(&t->a);
    rt_server_stop(&t->b);
}

static void start_three(rt_server s[3], const char *urls[3])
{
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rt_server_start(&s[i], NULL), 0);
        urls[i] = s[i].url;
    }
}

static int holds(rt_server *s, const char *key, const char *token)
{
    char *v = rt_get(s, key);
    int same = v && strcmp(v, token) == 0;
    free(v);
    return same;
}

/* Item 1: a re-acquire by the same token succeeds (the header's promise)
 * and, refused or failed, never deletes the lock the first handle holds.
 * Before the fix the second acquire was refused as BUSY and, with a node
 * down, its undo deleted the token on the two nodes that answered. */
static void reacquire_same_token(void **state)
{
    (void)state;
    trio t;
    trio_start(&t);
    redlock_options o;
    redlock_options_init(&o);
    o.connect_timeout_ms = o.io_timeout_ms = 300;
    redlock_client *c = connect_n(t.urls, 3, &o);
    redlock_lock *h1, *h2;
    assert_int_equal(redlock_acquire_as(c, "s:re", "tok", 60000, 0, &h1),
                     REDLOCK_OK);
    assert_int_equal(redlock_acquire_as(c, "s:re", "tok", 1000, 0, &h2),
                     REDLOCK_OK);
    assert_true(holds(&t.a, "s:re", "tok") && holds(&t.b, "s:re", "tok"));
    /* never shortened by the shorter re-acquire */
    assert_true(rt_pttl(&t.a, "s:re") > 50000);
    assert_true(redlock_validity_ms(h2) <= 1000);

    /* From another client (another process, say), too. */
    redlock_client *c2 = connect_n(t.urls, 3, &o);
    redlock_lock *h3;
    assert_int_equal(redlock_acquire_as(c2, "s:re", "tok", 5000, 0, &h3),
                     REDLOCK_OK);
    redlock_detach(h3);

    /* A re-acquire that fails (no replica acknowledges) undoes nothing it
     * did not place. */
    redlock_options o3 = o;
    o3.min_replicas = 1;
    o3.node_timeout_ms = 100;
    redlock_client *c3 = connect_n(t.urls, 3, &o3);
    redlock_lock *h4;
    assert_int_equal(redlock_acquire_as(c3, "s:re", "tok", 5000, 0, &h4),
                     REDLOCK_IO);
    assert_true(holds(&t.a, "s:re", "tok") && holds(&t.b, "s:re", "tok"));
    redlock_client_free(c3);
    redlock_client_free(c2);
    assert_true(holds(&t.a, "s:re", "tok") && holds(&t.b, "s:re", "tok"));

    /* Handles of one token in one client are one holder: the key goes
     * with the last of them. */
    assert_int_equal(redlock_release(h2), REDLOCK_OK);
    assert_true(holds(&t.a, "s:re", "tok") && holds(&t.b, "s:re", "tok"));
    assert_int_equal(redlock_held(h1), 1);
    assert_int_equal(redlock_release(h1), REDLOCK_OK);
    assert_null(rt_get(&t.a, "s:re"));
    assert_null(rt_get(&t.b, "s:re"));
    redlock_client_free(c);
    trio_stop(&t);
}

/* Item 1: with two handles of one token, neither an extend nor the
 * watchdog of one lowers the key's ttl below what the other counts on;
 * alone again, an extend to a shorter ttl shortens. */
static void sibling_extend_never_lowers(void **state)
{
    (void)state;
    rt_server s;
    assert_int_equal(rt_server_start(&s, NULL), 0);
    redlock_options o;
    redlock_options_init(&o);
    o.renew_floor_ms = 50;
    redlock_client *c = connect_n((const char *[]){s.url}, 1, &o);
    redlock_lock *h1, *h2;
    assert_int_equal(redlock_acquire_as(c, "s:sib", "tok", 60000, 0, &h1),
                     REDLOCK_OK);
    assert_int_equal(redlock_acquire_as(c, "s:sib", "tok", 600, 0, &h2),
                     REDLOCK_OK);
    assert_int_equal(redlock_extend(h2, 300), REDLOCK_OK);
    assert_true(rt_pttl(&s, "s:sib") > 50000);
    assert_true(redlock_validity_ms(h2) <= 300);
    assert_int_equal(redlock_keepalive(h2), REDLOCK_OK);
    sleep_ms(500); /* a few renewals with ttl 300 */
    assert_true(rt_pttl(&s, "s:sib") > 50000);
    assert_true(redlock_validity_ms(h1) > 50000);
    assert_int_equal(redlock_release(h1), REDLOCK_OK);
    assert_true(holds(&s, "s:sib", "tok")); /* h2 holds it on */
    assert_int_equal(redlock_extend(h2, 400), REDLOCK_OK);
    long long p = rt_pttl(&s, "s:sib");
    assert_true(p > 0 && p <= 400);
    assert_int_equal(redlock_release(h2), REDLOCK_OK);
    assert_null(rt_get(&s, "s:sib"));
    redlock_client_free(c);
    rt_server_stop(&s);
}

/* Item 1, the undo of a failed attempt of a second handle in the same
 * client: it must not delete what the first handle holds, even where the
 * attempt placed nothing and the vote was lost. */
static void reacquire_undo_spares_sibling(void **state)
{
    (void)state;
    rt_server s;
    assert_int_equal(rt_server_start(&s, NULL), 0);
    redlock_options o;
    redlock_options_init(&o);
    o.io_timeout_ms = 300;
    redlock_client *c = connect_n((const char *[]){s.url}, 1, &o);
    redlock_lock *h1, *h2;
    assert_int_equal(redlock_acquire_as(c, "s:undo", "tok", 60000, 0, &h1),
                     REDLOCK_OK);
    /* A second attempt of the token fails after its script ran (it wants
     * a replica this server does not have): its undo must leave alone the
     * key the script found already theirs.  Before the fix it was refused
     * by SET NX and, on N = 3 with a node down, undone by deleting. */
    redlock_options o2 = o;
    o2.min_replicas = 1;
    o2.node_timeout_ms = 100;
    redlock_client *c2 = connect_n((const char *[]){s.url}, 1, &o2);
    assert_int_equal(redlock_acquire_as(c2, "s:undo", "tok", 5000, 0, &h2),
                     REDLOCK_IO);
    assert_true(holds(&s, "s:undo", "tok"));
    assert_true(rt_pttl(&s, "s:undo") > 50000);
    redlock_client_free(c2);
    assert_int_equal(redlock_release(h1), REDLOCK_OK);
    redlock_client_free(c);
    rt_server_stop(&s);
}

/* Item 2: a ghost delete of (key, token) in flight on another thread's
 * connection must not land after the same token took the key again. */
typedef struct carrier_arg {
    redlock_client *c;
    redlock_status st;
} carrier_arg;

static void *carrier(void *arg)
{
    carrier_arg *a = arg;
    a->st = redlock_inspect(a->c, "s:other", NULL, 0, NULL);
    return NULL;
}

/* Start a ghost delete of (key, "tok") riding on connection 0, which the
 * proxy delays by 400 ms; returns with it in flight. */
static void ghost_in_flight(rt_server *s, rt_proxy *p, redlock_client *c,
                            const char *key, pthread_t *th, carrier_arg *a)
{
    /* The key holds tok, as after a release whose answer was lost: the
     * client owes a delete of it (a ghost). */
    assert_true(rt_cmd_ok(s, "SET %s tok PX 60000", key));
    redlock__node_add_ghost(&c->nodes[0], key, strlen(key), "tok");
    rt_proxy_delay(p, 0, 400);
    a->c = c;
    assert_int_equal(pthread_create(th, NULL, carrier, a), 0);
    sleep_ms(100); /* the carrier took connection 0 and the ghost */
}

static void ghost_delete_vs_reacquire(void **state)
{
    (void)state;
    rt_server s;
    assert_int_equal(rt_server_start(&s, NULL), 0);
    rt_proxy *p = rt_proxy_start(s.port);
    assert_non_null(p);
    redlock_options o;
    redlock_options_init(&o);
    o.connect_timeout_ms = o.io_timeout_ms = 2000;
    redlock_client *c = connect_n((const char *[]){rt_proxy_url(p)}, 1, &o);
    assert_int_equal(rt_proxy_connections(p), 1);

    pthread_t th;
    carrier_arg a;
    ghost_in_flight(&s, p, c, "s:ghost", &th, &a);
    redlock_lock *l;
    /* On a new connection: without the fix its SET lands first, then the
     * delayed delete. */
    assert_int_equal(redlock_acquire_as(c, "s:ghost", "tok", 60000, 0, &l),
                     REDLOCK_OK);
    pthread_join(th, NULL);
    assert_int_equal(a.st, REDLOCK_NOT_HELD);
    sleep_ms(100);
    assert_int_equal(redlock_held(l), 1);
    assert_true(holds(&s, "s:ghost", "tok"));
    assert_int_equal(redlock_release(l), REDLOCK_OK);

    /* adopt has the same exposure: it must see the delete done. */
    ghost_in_flight(&s, p, c, "s:ghost2", &th, &a);
    redlock_status st = redlock_adopt(c, "s:ghost2", "tok", &l);
    pthread_join(th, NULL);
    if (st == REDLOCK_OK) {
        sleep_ms(100);
        assert_true(holds(&s, "s:ghost2", "tok")); /* held means held */
        redlock_release(l);
    } else {
        assert_int_equal(st, REDLOCK_NOT_HELD); /* the delete came first */
        assert_null(rt_get(&s, "s:ghost2"));
    }
    redlock_client_free(c);
    rt_proxy_stop(p);
    rt_server_stop(&s);
}

/* 1 once the master's only replica has acknowledged its whole stream
 * (WAIT's own REPLCONF GETACK included, which WAIT does not wait for). */
static int replica_caught_up(rt_server *m)
{
    for (int i = 0; i < 200; i++) {
        redisReply *r = rt_cmd(m, "INFO replication");
        long long mine = -1, theirs = -2;
        if (r && r->type == REDIS_REPLY_STRING) {
            const char *p = strstr(r->str, "master_repl_offset:");
            const char *q = strstr(r->str, "slave0:");
            if (p)
                mine = atoll(p + strlen("master_repl_offset:"));
            if (q && (q = strstr(q, "offset=")))
                theirs = atoll(q + strlen("offset="));
        }
        if (r)
            freeReplyObject(r);
        if (mine >= 0 && mine == theirs)
            return 1;
        sleep_ms(20);
    }
    return 0;
}

/* Item 3: after SCRIPT FLUSH, the WAIT of min_replicas must count the
 * lock's own write (the EVAL), not the writes before it. */
static void noscript_then_wait(void **state)
{
    (void)state;
    rt_server m, r;
    assert_int_equal(rt_server_start(&m, NULL), 0);
    char port[16];
    snprintf(port, sizeof port, "%d", m.port);
    assert_int_equal(rt_server_start(&r, (const char *const[]){
                                             "--replicaof", "127.0.0.1",
                                             port, NULL}),
                     0);
    /* wait for the replica to sync */
    for (int i = 0; i < 100; i++) {
        redisReply *w = rt_cmd(&m, "WAIT 1 100");
        long long n = w && w->type == REDIS_REPLY_INTEGER ? w->integer : 0;
        if (w)
            freeReplyObject(w);
        if (n >= 1)
            break;
        sleep_ms(50);
    }
    redlock_options o;
    redlock_options_init(&o);
    o.min_replicas = 1;
    o.fencing = 1;
    o.io_timeout_ms = 1000;
    redlock_client *c = connect_n((const char *[]){m.url}, 1, &o);
    redlock_lock *l;
    /* (a wait: on a loaded machine the replica may be slow to answer) */
    assert_int_equal(redlock_acquire(c, "s:repl", 5000, 5000, &l),
                     REDLOCK_OK);
    redlock_release(l);

    /* The script cache is empty (SCRIPT FLUSH is replicated too) and the
     * replica has every write so far: a WAIT that counts only older writes
     * (the bug) is answered 1 at once. */
    assert_true(rt_cmd_ok(&m, "SCRIPT FLUSH"));
    assert_true(replica_caught_up(&m));
    /* Stopped, not gone: the master still counts it as a replica with
     * everything up to now, and it acknowledges nothing newer. */
    assert_int_equal(rt_server_pause(&r), 0);
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_acquire(c, "s:repl", 5000, 0, &l), REDLOCK_IO);
    assert_non_null(strstr(redlock_last_error(), "replicas acknowledged"));
    assert_true(rt_now_ms() - t0 >= 400); /* WAIT waited for the replica */
    assert_null(rt_get(&m, "s:repl"));
    /* and a caller's token goes through the script too (this script
     * flush is not acknowledged: the test shows only that nothing passes) */
    assert_true(rt_cmd_ok(&m, "SCRIPT FLUSH"));
    assert_int_equal(redlock_acquire_as(c, "s:repl", "tok", 5000, 0, &l),
                     REDLOCK_IO);
    redlock_client_free(c);
    rt_server_resume(&r);
    rt_server_stop(&r);
    rt_server_stop(&m);
}

/* Item 5: with a tolerated node down, a split vote (1 yes, 1 no, 1
 * failed) is a busy key, and a wait rides it out until the holder goes. */
typedef struct releaser_arg {
    rt_server *s;
    int after_ms;
} releaser_arg;

static void *releaser(void *arg)
{
    releaser_arg *a = arg;
    sleep_ms(a->after_ms);
    redisReply *r = rt_cmd(a->s, "DEL s:split");
    if (r)
        freeReplyObject(r);
    return NULL;
}

static void split_vote_waits(void **state)
{
    (void)state;
    trio t;
    trio_start(&t);
    redlock_options o;
    redlock_options_init(&o);
    o.connect_timeout_ms = o.io_timeout_ms = 200;
    o.retry_delay_ms = 20;
    redlock_client *c = connect_n(t.urls, 3, &o);
    /* Another token holds the key on a only. */
    assert_true(rt_cmd_ok(&t.a, "SET s:split other PX 60000"));
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "s:split", 5000, 0, &l),
                     REDLOCK_BUSY);
    assert_non_null(strstr(redlock_last_error(), "1 no"));
    pthread_t th;
    releaser_arg ra = {&t.a, 300};
    assert_int_equal(pthread_create(&th, NULL, releaser, &ra), 0);
    assert_int_equal(redlock_acquire(c, "s:split", 5000, 3000, &l),
                     REDLOCK_OK);
    pthread_join(th, NULL);
    redlock_release(l);
    redlock_client_free(c);
    trio_stop(&t);
}

/* Item 5: a restarting node (-LOADING) is retried for as long as the
 * wait lasts, and a try says IO (unavailable), not SERVER. */
static void loading_answers(void *arg, const fs_command *cmd, fs_reply *rep)
{
    int *left = arg;
    static const char loading[] =
        "-LOADING Redis is loading the dataset in memory\r\n";
    if ((cmd->kind == FS_SET || cmd->kind == FS_ACQUIRE_SCRIPT) &&
        *left > 0) {
        (*left)--;
        rep->data = loading;
        rep->len = sizeof loading - 1;
    }
}

static void loading_is_ridden_out(void **state)
{
    (void)state;
    fs_server *fs = fs_start();
    assert_non_null(fs);
    redlock_options o;
    redlock_options_init(&o);
    o.retry_delay_ms = 20;
    redlock_client *c = connect_n((const char *[]){fs_url(fs)}, 1, &o);
    int left = 1000;
    fs_set(fs, loading_answers, &left);
    sleep_ms(100); /* fs_set closed the pooled connection: let it show */
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "s:load", 5000, 0, &l), REDLOCK_IO);
    if (!strstr(redlock_last_error(), "LOADING"))
        fail_msg("%s", redlock_last_error());
    left = 3;
    fs_set(fs, loading_answers, &left);
    sleep_ms(100);
    redlock_status st = redlock_acquire(c, "s:load", 5000, 2000, &l);
    if (st != REDLOCK_OK)
        fail_msg("acquire: %s", redlock_last_error());
    redlock_detach(l);
    /* still loading when the wait ends: the last error */
    left = 1000;
    fs_set(fs, loading_answers, &left);
    sleep_ms(100);
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_acquire(c, "s:load", 5000, 300, &l), REDLOCK_IO);
    assert_true(rt_now_ms() - t0 >= 280);
    redlock_client_free(c);
    fs_stop(fs);
}

/* Item 8: a PSUBSCRIBE listener is no waiter: a release with nobody
 * waiting frees the key at once. */
static void psubscriber_is_no_waiter(void **state)
{
    (void)state;
    rt_server s;
    assert_int_equal(rt_server_start(&s, NULL), 0);
    redisContext *mon = redisConnect("127.0.0.1", s.port);
    assert_true(mon && !mon->err);
    redisReply *r = redisCommand(mon, "PSUBSCRIBE *");
    assert_non_null(r);
    freeReplyObject(r);
    redlock_client *c = connect_n((const char *[]){s.url}, 1, NULL);
    for (int i = 0; i < 20; i++) {
        redlock_lock *l;
        assert_int_equal(redlock_acquire(c, "s:psub", 5000, 0, &l),
                         REDLOCK_OK);
        assert_int_equal(redlock_release(l), REDLOCK_OK);
    }
    redlock_client_free(c);
    redisFree(mon);
    rt_server_stop(&s);
}

/* Item 10: a try on a held key with one of three nodes stalled is bounded
 * by one node timeout: the type check does not wait for the stalled node
 * again. */
static void try_bounded_once(void **state)
{
    (void)state;
    rt_server a, b, z;
    assert_int_equal(rt_server_start(&a, NULL), 0);
    assert_int_equal(rt_server_start(&b, NULL), 0);
    assert_int_equal(rt_server_start(&z, NULL), 0);
    redlock_options o;
    redlock_options_init(&o);
    o.connect_timeout_ms = o.io_timeout_ms = 400;
    redlock_client *c =
        connect_n((const char *[]){a.url, b.url, z.url}, 3, &o);
    assert_true(rt_cmd_ok(&a, "SET s:try other PX 60000"));
    assert_true(rt_cmd_ok(&b, "SET s:try other PX 60000"));
    assert_int_equal(rt_server_pause(&z), 0);
    redlock_lock *l;
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_acquire(c, "s:try", 5000, 0, &l), REDLOCK_BUSY);
    int64_t took = rt_now_ms() - t0;
    assert_true(took < 400 * 3 / 2); /* was two timeouts */
    /* a key of another type is still told, on the nodes that answer */
    assert_int_equal(rt_server_resume(&z), 0);
    redisReply *r = rt_cmd(&a, "DEL s:try");
    freeReplyObject(r);
    r = rt_cmd(&a, "LPUSH s:try x");
    freeReplyObject(r);
    r = rt_cmd(&b, "DEL s:try");
    freeReplyObject(r);
    r = rt_cmd(&b, "LPUSH s:try x");
    freeReplyObject(r);
    assert_int_equal(redlock_acquire(c, "s:try", 5000, 0, &l),
                     REDLOCK_SERVER);
    assert_non_null(strstr(redlock_last_error(), "not a lock"));
    redlock_client_free(c);
    rt_server_stop(&a);
    rt_server_stop(&b);
    rt_server_stop(&z);
}

/* Torture finding: a node that restarts empty loses the key of a held
 * lock; another token takes it, releases it, and a second handle of the
 * first token then takes it again: the first handle's renewals succeed
 * again and it never learns that another held the key meanwhile.  The
 * re-take, which had to place the token, must tell it. */
/* on_lost that counts into the _Atomic int its argument points to. */
static void count_lost(const redlock_lock *l, void *arg)
{
    (void)l;
    atomic_fetch_add((_Atomic int *)arg, 1);
}

static _Atomic int masked_lost;

static void retake_tells_lost_sibling(void **state)
{
    (void)state;
    rt_server s;
    assert_int_equal(rt_server_start(&s, NULL), 0);
    redlock_options o;
    redlock_options_init(&o);
    o.renew_floor_ms = 100;
    o.on_lost = count_lost;
    o.on_lost_arg = &masked_lost;
    redlock_client *c = connect_n((const char *[]){s.url}, 1, &o);
    redlock_lock *h1, *h2;
    assert_int_equal(redlock_acquire_as(c, "s:mask", "tok", 3000, 0, &h1),
                     REDLOCK_OK);
    assert_int_equal(redlock_keepalive(h1), REDLOCK_OK);
    redisReply *r = rt_cmd(&s, "DEL s:mask"); /* as a restart would */
    freeReplyObject(r);
    assert_int_equal(redlock_acquire_as(c, "s:mask", "tok", 3000, 0, &h2),
                     REDLOCK_OK);
    int held = redlock_held(h1);
    sleep_ms(1500); /* the watchdog's next look at h1 */
    int lost = atomic_load(&masked_lost);
    redlock_release(h1);
    redlock_release(h2);
    redlock_client_free(c);
    rt_server_stop(&s);
    assert_int_equal(held, 0);
    assert_int_equal(lost, 1);
}

/* Torture finding (3node-minority): a node that lost a kept-alive lock's
 * key (it restarted, or was down when the lock was taken) never got it
 * back, so the lock rested on a bare quorum and the next node to fail
 * lost it, with a quorum of nodes healthy all along. */
static void renewal_heals_a_node(void **state)
{
    (void)state;
    rt_server s[3];
    const char *urls[3];
    start_three(s, urls);
    redlock_options o;
    redlock_options_init(&o);
    o.renew_floor_ms = 100;
    o.io_timeout_ms = 300;
    redlock_client *c = connect_n(urls, 3, &o);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "s:heal", 1500, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK);
    redisReply *r = rt_cmd(&s[2], "DEL s:heal"); /* node 2 restarted empty */
    freeReplyObject(r);
    sleep_ms(800); /* a renewal or two */
    int back = holds(&s[2], "s:heal", redlock_token(l));
    rt_server_kill(&s[0]); /* the next node to fail */
    sleep_ms(3000); /* two ttls */
    int held = redlock_held(l) && redlock_validity_ms(l) > 0;
    redlock_release(l);
    redlock_client_free(c);
    for (int i = 0; i < 3; i++)
        rt_server_stop(&s[i]);
    assert_true(back);
    assert_true(held);
}

/* Torture finding (3node-minority, back-to-back stalls): a lock taken
 * while a node was stalled rests on the other two until its next renewal,
 * a whole interval; the next stall in that time loses it.  A node that
 * answers again gets every kept-alive key back at once. */
static void node_back_heals_at_once(void **state)
{
    (void)state;
    rt_server s[3];
    const char *urls[3];
    start_three(s, urls);
    redlock_options o;
    redlock_options_init(&o);
    o.connect_timeout_ms = o.io_timeout_ms = 200;
    redlock_client *c = connect_n(urls, 3, &o);
    assert_int_equal(rt_server_pause(&s[2]), 0);
    redlock_lock *l;
    /* renewed every 3 s (ttl/2, the floor being 5 s) */
    assert_int_equal(redlock_acquire(c, "s:back", 6000, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK);
    assert_int_equal(rt_server_resume(&s[2]), 0);
    sleep_ms(100); /* it applied the SET it had buffered: take it away */
    redisReply *r = rt_cmd(&s[2], "FLUSHALL"); /* as if it restarted */
    assert_non_null(r);
    freeReplyObject(r);
    int back = 0;
    for (int i = 0; i < 20 && !back; i++) { /* other traffic meets it */
        redlock_inspect(c, "s:other", NULL, 0, NULL);
        sleep_ms(50);
        back = holds(&s[2], "s:back", redlock_token(l));
    }
    redlock_release(l);
    redlock_client_free(c);
    for (int i = 0; i < 3; i++)
        rt_server_stop(&s[i]);
    assert_true(back);
}

/* Review finding: the fence counter "<key>:fence" taken as a lock by
 * another client was overwritten by INCR (two holders of "job:fence"),
 * and with that lock's ttl the counter could expire and start again. */
static void fence_counter_is_no_lock(void **state)
{
    (void)state;
    rt_server s;
    assert_int_equal(rt_server_start(&s, NULL), 0);
    redlock_client *a = connect_n((const char *[]){s.url}, 1, NULL);
    redlock_options o;
    redlock_options_init(&o);
    o.fencing = 1;
    redlock_client *f = connect_n((const char *[]){s.url}, 1, &o);
    redlock_lock *la, *lf;
    assert_int_equal(redlock_acquire_as(a, "job:fence", "41", 60000, 0, &la),
                     REDLOCK_OK);
    assert_int_equal(redlock_acquire(f, "job", 10000, 0, &lf),
                     REDLOCK_SERVER);
    assert_non_null(strstr(redlock_last_error(), "no fence counter"));
    assert_true(holds(&s, "job:fence", "41"));
    assert_true(rt_pttl(&s, "job:fence") > 50000);
    assert_null(rt_get(&s, "job")); /* nothing written */
    assert_int_equal(redlock_release(la), REDLOCK_OK);
    /* a real counter (no ttl) works, and its name is then never free */
    assert_int_equal(redlock_acquire(f, "job", 10000, 0, &lf), REDLOCK_OK);
    assert_int_equal(redlock_fence(lf), 1);
    assert_int_equal(rt_pttl(&s, "job:fence"), -1);
    assert_int_equal(redlock_acquire_as(a, "job:fence", "1", 60000, 0, &la),
                     REDLOCK_OK); /* "1" is the counter's value: the same */
    redlock_detach(la);
    assert_int_equal(rt_pttl(&s, "job:fence"), -1); /* never shortened */
    assert_int_equal(redlock_release(lf), REDLOCK_OK);
    redlock_client_free(f);
    redlock_client_free(a);
    rt_server_stop(&s);
}

/* Review finding: max_hold_ms shorter than the ttl was not enforced; the
 * lock lived its whole ttl. */
static _Atomic int capped_lost;

static void max_hold_below_ttl(void **state)
{
    (void)state;
    rt_server s;
    assert_int_equal(rt_server_start(&s, NULL), 0);
    redlock_options o;
    redlock_options_init(&o);
    o.max_hold_ms = 1000;
    o.on_lost = count_lost;
    o.on_lost_arg = &capped_lost;
    redlock_client *c = connect_n((const char *[]){s.url}, 1, &o);
    redlock_lock *l;
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_acquire(c, "s:cap", 6000, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK);
    while (redlock_held(l) && rt_now_ms() - t0 < 7000)
        sleep_ms(5);
    int64_t lost_at = rt_now_ms() - t0;
    sleep_ms(100);
    long long pttl = rt_pttl(&s, "s:cap");
    int lost = atomic_load(&capped_lost);
    redlock_release(l);
    redlock_client_free(c);
    rt_server_stop(&s);
    print_message("lost at %lld ms (cap 1000, ttl 6000)\n",
                  (long long)lost_at);
    assert_true(lost_at >= 950 && lost_at < 1500);
    assert_int_equal(pttl, -2); /* the key was cut to the cap */
    assert_int_equal(lost, 1);
}

/* Review finding: adopting a key that expires within the drift allowance
 * gave a handle that held nothing (validity 0). */
static void adopt_expiring_key(void **state)
{
    (void)state;
    rt_server s;
    assert_int_equal(rt_server_start(&s, NULL), 0);
    redlock_client *c = connect_n((const char *[]){s.url}, 1, NULL);
    assert_true(rt_cmd_ok(&s, "SET s:brief tok PX 2000"));
    redisReply *r = rt_cmd(&s, "PEXPIRE s:brief 3");
    freeReplyObject(r);
    redlock_lock *l = NULL;
    assert_int_equal(redlock_adopt(c, "s:brief", "tok", &l), REDLOCK_NOT_HELD);
    assert_null(l);
    redlock_client_free(c);
    rt_server_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reacquire_same_token),
        cmocka_unit_test(reacquire_undo_spares_sibling),
        cmocka_unit_test(sibling_extend_never_lowers),
        cmocka_unit_test(ghost_delete_vs_reacquire),
        cmocka_unit_test(noscript_then_wait),
        cmocka_unit_test(split_vote_waits),
        cmocka_unit_test(loading_is_ridden_out),
        cmocka_unit_test(psubscriber_is_no_waiter),
        cmocka_unit_test(try_bounded_once),
        cmocka_unit_test(retake_tells_lost_sibling),
        cmocka_unit_test(renewal_heals_a_node),
        cmocka_unit_test(node_back_heals_at_once),
        cmocka_unit_test(fence_counter_is_no_lock),
        cmocka_unit_test(max_hold_below_ttl),
        cmocka_unit_test(adopt_expiring_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
