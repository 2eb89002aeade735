/* The waiter queue (one node): a release hands the lock to the first live
 * waiter in one atomic step and wakes that waiter alone.  Against a real
 * redis-server; waiters use a retry delay of 2 s, so anything quick can
 * only come from a grant. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "redis_server.h"
#include "redlock.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static rt_server srv;

static redlock_client *client_with(int fencing)
{
    redlock_options o;
    redlock_options_init(&o);
    o.retry_delay_ms = 2000;
    o.connect_timeout_ms = 1000;
    o.io_timeout_ms = 1000;
    o.fencing = fencing;
    const char *url = srv.url;
    redlock_client *c = redlock_connect(&url, 1, &o, NULL);
    if (!c)
        fail_msg("connect: %s", redlock_last_error());
    return c;
}

static redlock_client *client(void) { return client_with(0); }

static long long llen(const char *key)
{
    redisReply *r = rt_cmd(&srv, "LLEN %s:redlock:q", key);
    assert_non_null(r);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* Commands the server has processed, INFO included (it counts itself
 * after answering). */
static long long commands(void)
{
    redisReply *r = rt_cmd(&srv, "INFO stats");
    assert_non_null(r);
    const char *p = strstr(r->str, "total_commands_processed:");
    assert_non_null(p);
    long long n = atoll(p + strlen("total_commands_processed:"));
    freeReplyObject(r);
    return n;
}

/* How many times the server ran EVALSHA so far (INFO commandstats). */
static long long evalsha_calls(void)
{
    redisReply *r = rt_cmd(&srv, "INFO commandstats");
    assert_non_null(r);
    const char *p = strstr(r->str, "cmdstat_evalsha:calls=");
    long long n = p ? atoll(p + strlen("cmdstat_evalsha:calls=")) : 0;
    freeReplyObject(r);
    return n;
}

/* Wait until the queue of key has n entries (waiters registered). */
static void await_queued(const char *key, long long n)
{
    int64_t t0 = rt_now_ms();
    while (llen(key) != n) {
        if (rt_now_ms() - t0 > 5000)
            fail_msg("queue of %s has %lld entries, not %lld", key,
                     llen(key), n);
        usleep(2000);
    }
}

struct waiter {
    redlock_client *c;
    const char *key;
    int64_t ttl_ms, wait_ms;
    redlock_status st;
    redlock_lock *lock;
    atomic_llong done_at;
};

static void *wait_for(void *p)
{
    struct waiter *w = p;
    w->st = redlock_acquire(w->c, w->key, w->ttl_ms ? w->ttl_ms : 10000,
                            w->wait_ms, &w->lock);
    atomic_store(&w->done_at, rt_now_ms());
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    return rt_server_start(&srv, NULL);
}

static int teardown(void **state)
{
    (void)state;
    rt_server_stop(&srv);
    return 0;
}

static void grant_needs_no_round_trip(void **state)
{
    (void)state;
    redlock_client *a = client(), *b = client();
    redlock_lock *l;
    assert_int_equal(redlock_acquire(a, "q:grant", 30000, 0, &l), REDLOCK_OK);
    struct waiter w = {.c = b, .key = "q:grant", .wait_ms = 8000};
    pthread_t t;
    pthread_create(&t, NULL, wait_for, &w);
    await_queued("q:grant", 1);
    usleep(50 * 1000); /* its subscription confirmed, asleep */
    long long c0 = commands();
    int64_t released = rt_now_ms();
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    pthread_join(t, NULL);
    long long c1 = commands();
    assert_int_equal(w.st, REDLOCK_OK);
    print_message("handoff took %lld ms, %lld commands\n",
                  (long long)(atomic_load(&w.done_at) - released),
                  c1 - c0 - 1);
    /* EVALSHA + GET + LPOP + PUBSUB SHARDNUMSUB + SPUBLISH + SET, and
     * nothing from the waiter (SHARDNUMSUB: a grant goes only to a
     * subscriber of this very server, see the release script) */
    assert_int_equal(c1 - c0 - 1, 6);
    assert_true(atomic_load(&w.done_at) - released < 500);
    char *v = rt_get(&srv, "q:grant");
    assert_string_equal(v, redlock_token(w.lock));
    free(v);
    long long pttl = rt_pttl(&srv, "q:grant");
    assert_true(pttl > 9000 && pttl <= 10000); /* the waiter's ttl */
    assert_true(redlock_validity_ms(w.lock) > 7000);
    assert_int_equal(llen("q:grant"), 0);
    assert_int_equal(redlock_release(w.lock), REDLOCK_OK);
    assert_int_equal(rt_pttl(&srv, "q:grant"), -2);
    redlock_client_free(a);
    redlock_client_free(b);
}

enum { CROWD = 24 };

static void one_waiter_woken_in_order(void **state)
{
    (void)state;
    /* CROWD waiters in their own clients, queued one after another: each
     * release hands the lock to the next in line, and costs the same
     * commands however many wait. */
    redlock_client *a = client();
    redlock_client *cs[CROWD];
    struct waiter w[CROWD];
    pthread_t t[CROWD];
    redlock_lock *l;
    assert_int_equal(redlock_acquire(a, "q:crowd", 30000, 0, &l), REDLOCK_OK);
    for (int i = 0; i < CROWD; i++) {
        cs[i] = client();
        memset(&w[i], 0, sizeof w[i]);
        w[i].c = cs[i];
        w[i].key = "q:crowd";
        /* a long ttl: however slow the run (valgrind), the grant leaves
         * more than 3/4 of it, and no confirming try is made */
        w[i].ttl_ms = 120000;
        w[i].wait_ms = 60000;
        pthread_create(&t[i], NULL, wait_for, &w[i]);
        await_queued("q:crowd", i + 1);
    }
    usleep(50 * 1000);
    redlock_lock *holder = l;
    int exact = 0;
    for (int i = 0; i < CROWD; i++) {
        long long e0 = evalsha_calls();
        long long c0 = commands();
        assert_int_equal(redlock_release(holder), REDLOCK_OK);
        pthread_join(t[i], NULL);
        long long c1 = commands();
        long long e1 = evalsha_calls();
        assert_int_equal(w[i].st, REDLOCK_OK);
        /* 6 commands for the release, c0's INFO, and nothing more unless
         * a waiter further back ran its periodic check (an EVALSHA of its
         * own: every second or so, so it falls into this window now and
         * then on a slow run, under valgrind often). */
        if (e1 - e0 == 1) {
            assert_int_equal(c1 - c0 - 1, 6);
            exact++;
        }
        /* nobody behind it woke */
        for (int k = i + 1; k < CROWD; k++)
            assert_int_equal(atomic_load(&w[k].done_at), 0);
        assert_int_equal(llen("q:crowd"), CROWD - 1 - i);
        holder = w[i].lock;
    }
    /* The cost is shown constant on most releases, whatever the crowd. */
    assert_true(exact >= CROWD / 2);
    assert_int_equal(redlock_release(holder), REDLOCK_OK);
    assert_int_equal(rt_pttl(&srv, "q:crowd"), -2);
    for (int i = 0; i < CROWD; i++)
        redlock_client_free(cs[i]);
    redlock_client_free(a);
}

/* A waiter in a child process, which the test kills. */
static pid_t child_waiter(const char *key, int64_t ttl_ms)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        redlock_options o;
        redlock_options_init(&o);
        o.retry_delay_ms = 2000;
        const char *url = srv.url;
        redlock_client *c = redlock_connect(&url, 1, &o, NULL);
        redlock_lock *l;
        if (c)
            redlock_acquire(c, key, ttl_ms, REDLOCK_WAIT_FOREVER, &l);
        _exit(0);
    }
    return pid;
}

static void dead_waiter_skipped(void **state)
{
    (void)state;
    /* A pattern subscriber that hears everything (a monitor) must not make
     * a dead waiter look alive. */
    redisContext *mon = redisConnect("127.0.0.1", srv.port);
    assert_non_null(mon);
    redisReply *pr = redisCommand(mon, "PSUBSCRIBE *");
    assert_non_null(pr);
    freeReplyObject(pr);
    redlock_client *a = client(), *b = client();
    redlock_lock *l;
    assert_int_equal(redlock_acquire(a, "q:dead", 30000, 0, &l), REDLOCK_OK);
    pid_t pid = child_waiter("q:dead", 60000);
    await_queued("q:dead", 1);
    struct waiter w = {.c = b, .key = "q:dead", .wait_ms = 8000};
    pthread_t t;
    pthread_create(&t, NULL, wait_for, &w);
    await_queued("q:dead", 2);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    usleep(100 * 1000); /* the server has seen its connections close */
    int64_t released = rt_now_ms();
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    pthread_join(t, NULL);
    assert_int_equal(w.st, REDLOCK_OK);
    assert_true(atomic_load(&w.done_at) - released < 500);
    char *v = rt_get(&srv, "q:dead");
    assert_string_equal(v, redlock_token(w.lock));
    free(v);
    redlock_release(w.lock);
    redlock_client_free(a);
    redlock_client_free(b);
    redisFree(mon);
}

static void stopped_waiter_costs_its_ttl(void **state)
{
    (void)state;
    /* A waiter that is stopped but connected is granted the lock; it
     * holds it for its own ttl at most, then the next waiter gets it. */
    redlock_client *a = client(), *b = client();
    redlock_lock *l;
    assert_int_equal(redlock_acquire(a, "q:stop", 30000, 0, &l), REDLOCK_OK);
    pid_t pid = child_waiter("q:stop", 700);
    await_queued("q:stop", 1);
    usleep(100 * 1000);
    kill(pid, SIGSTOP);
    struct waiter w = {.c = b, .key = "q:stop", .wait_ms = 8000};
    pthread_t t;
    pthread_create(&t, NULL, wait_for, &w);
    await_queued("q:stop", 2);
    int64_t released = rt_now_ms();
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    long long pttl = rt_pttl(&srv, "q:stop");
    assert_true(pttl > 0 && pttl <= 700);
    pthread_join(t, NULL);
    int64_t took = atomic_load(&w.done_at) - released;
    print_message("next waiter after %lld ms\n", (long long)took);
    assert_int_equal(w.st, REDLOCK_OK);
    assert_true(took >= 600 && took < 2500);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    redlock_release(w.lock);
    redlock_client_free(a);
    redlock_client_free(b);
}

static void ended_wait_leaves_no_entry(void **state)
{
    (void)state;
    redlock_client *a = client(), *b = client();
    redlock_lock *l, *lb;
    assert_int_equal(redlock_acquire(a, "q:end", 30000, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_acquire(b, "q:end", 10000, 300, &lb),
                     REDLOCK_BUSY);
    assert_null(lb);
    assert_int_equal(llen("q:end"), 0);
    /* nobody to hand it to: deleted */
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    assert_int_equal(rt_pttl(&srv, "q:end"), -2);
    redlock_client_free(a);
    redlock_client_free(b);
}

static void try_never_queues(void **state)
{
    (void)state;
    redlock_client *a = client(), *b = client();
    redlock_lock *l, *lb;
    assert_int_equal(redlock_acquire(a, "q:try", 30000, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_acquire(b, "q:try", 10000, 0, &lb), REDLOCK_BUSY);
    assert_int_equal(llen("q:try"), 0);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    assert_int_equal(rt_pttl(&srv, "q:try"), -2);
    redlock_client_free(a);
    redlock_client_free(b);
}

static void plain_client_interop(void **state)
{
    (void)state;
    /* A plain SET NX client excludes and is excluded; its DEL hands
     * nothing on, and the first waiter finds the key free within about
     * a second. */
    redlock_client *b = client();
    assert_true(rt_cmd_ok(&srv, "SET q:plain other NX PX 30000"));
    struct waiter w = {.c = b, .key = "q:plain", .wait_ms = 8000};
    pthread_t t;
    pthread_create(&t, NULL, wait_for, &w);
    await_queued("q:plain", 1);
    redisReply *r = rt_cmd(&srv, "DEL q:plain");
    freeReplyObject(r);
    int64_t t0 = rt_now_ms();
    pthread_join(t, NULL);
    assert_int_equal(w.st, REDLOCK_OK);
    assert_true(atomic_load(&w.done_at) - t0 < 2500);
    assert_int_equal(llen("q:plain"), 0);
    /* and the plain client is excluded while we hold it */
    r = rt_cmd(&srv, "SET q:plain other NX PX 30000");
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    redlock_release(w.lock);
    redlock_client_free(b);
}

static void grant_takes_next_fence(void **state)
{
    (void)state;
    redlock_client *a = client_with(1), *b = client_with(1);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(a, "q:fence", 30000, 0, &l), REDLOCK_OK);
    int64_t f0 = redlock_fence(l);
    struct waiter w = {.c = b, .key = "q:fence", .wait_ms = 8000};
    pthread_t t;
    pthread_create(&t, NULL, wait_for, &w);
    await_queued("q:fence", 1);
    usleep(50 * 1000);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    pthread_join(t, NULL);
    assert_int_equal(w.st, REDLOCK_OK);
    assert_true(redlock_fence(w.lock) > f0);
    char *v = rt_get(&srv, "q:fence:fence");
    assert_int_equal(atoll(v), redlock_fence(w.lock));
    free(v);
    redlock_release(w.lock);
    redlock_client_free(a);
    redlock_client_free(b);
}

static void long_wait_confirms_validity(void **state)
{
    (void)state;
    /* A grant after a wait longer than a quarter of the ttl leaves too
     * little validity counted from the first push: the waiter confirms
     * with one try, and gets (almost) the whole ttl. */
    redlock_client *a = client(), *b = client();
    redlock_lock *l;
    assert_int_equal(redlock_acquire(a, "q:long", 30000, 0, &l), REDLOCK_OK);
    struct waiter w = {.c = b, .key = "q:long", .ttl_ms = 1000,
                       .wait_ms = 8000};
    pthread_t t;
    pthread_create(&t, NULL, wait_for, &w);
    await_queued("q:long", 1);
    usleep(600 * 1000);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    pthread_join(t, NULL);
    assert_int_equal(w.st, REDLOCK_OK);
    int64_t v = redlock_validity_ms(w.lock);
    print_message("validity after a long wait: %lld ms\n", (long long)v);
    assert_true(v > 900 && v <= 1000);
    assert_true(rt_pttl(&srv, "q:long") > 900);
    redlock_release(w.lock);
    redlock_client_free(a);
    redlock_client_free(b);
}

static void queue_of_wrong_type(void **state)
{
    (void)state;
    redlock_client *a = client(), *b = client();
    redlock_lock *l, *lb;
    assert_true(rt_cmd_ok(&srv, "SET q:wt:redlock:q notalist"));
    assert_int_equal(redlock_acquire(a, "q:wt", 30000, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_acquire(b, "q:wt", 10000, 500, &lb),
                     REDLOCK_SERVER);
    assert_non_null(strstr(redlock_last_error(), "WRONGTYPE"));
    /* the release cannot hand on through it, and says so; the key stays
     * until its ttl, never deleted by someone else's mistake */
    assert_int_equal(redlock_release(l), REDLOCK_SERVER);
    redisReply *r = rt_cmd(&srv, "DEL q:wt q:wt:redlock:q");
    freeReplyObject(r);
    redlock_client_free(a);
    redlock_client_free(b);
}

static void stalled_server_then_in_order(void **state)
{
    (void)state;
    /* The server stops (longer than the node timeout) while three waiters
     * queue: they ride it out, and once it answers again the lock goes to
     * each in turn, one at a time. */
    redlock_client *a = client();
    redlock_client *cs[3];
    struct waiter w[3];
    pthread_t t[3];
    redlock_lock *l;
    assert_int_equal(redlock_acquire(a, "q:stall", 30000, 0, &l), REDLOCK_OK);
    for (int i = 0; i < 3; i++) {
        cs[i] = client();
        memset(&w[i], 0, sizeof w[i]);
        w[i].c = cs[i];
        w[i].key = "q:stall";
        w[i].wait_ms = 15000;
        pthread_create(&t[i], NULL, wait_for, &w[i]);
        await_queued("q:stall", i + 1);
    }
    assert_int_equal(rt_server_pause(&srv), 0);
    usleep(1500 * 1000); /* > io timeout: their checks time out */
    assert_int_equal(rt_server_resume(&srv), 0);
    redlock_lock *holder = l;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(redlock_release(holder), REDLOCK_OK);
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].st, REDLOCK_OK);
        for (int k = i + 1; k < 3; k++)
            assert_int_equal(atomic_load(&w[k].done_at), 0);
        char *v = rt_get(&srv, "q:stall");
        assert_string_equal(v, redlock_token(w[i].lock));
        free(v);
        holder = w[i].lock;
    }
    assert_int_equal(redlock_release(holder), REDLOCK_OK);
    for (int i = 0; i < 3; i++)
        redlock_client_free(cs[i]);
    redlock_client_free(a);
}

static void restart_loses_queue_not_waiters(void **state)
{
    (void)state;
    /* A restart without persistence empties the key and the queue: the
     * waiter finds the key free at its next look (its notifier's
     * re-subscription) and takes it. */
    redlock_client *a = client(), *b = client();
    redlock_lock *l;
    assert_int_equal(redlock_acquire(a, "q:restart", 30000, 0, &l),
                     REDLOCK_OK);
    struct waiter w = {.c = b, .key = "q:restart", .wait_ms = 10000};
    pthread_t t;
    pthread_create(&t, NULL, wait_for, &w);
    await_queued("q:restart", 1);
    assert_int_equal(rt_server_restart(&srv), 0);
    pthread_join(t, NULL);
    assert_int_equal(w.st, REDLOCK_OK);
    char *v = rt_get(&srv, "q:restart");
    assert_string_equal(v, redlock_token(w.lock));
    free(v);
    redlock_release(w.lock);
    redlock_detach(l);
    redlock_client_free(a);
    redlock_client_free(b);
}

struct as_waiter {
    redlock_client *c;
    redlock_status st;
    redlock_lock *lock;
};

static void *wait_as(void *p)
{
    struct as_waiter *w = p;
    w->st = redlock_acquire_as(w->c, "q:as", "job-42", 10000, 8000, &w->lock);
    return NULL;
}

static void caller_token_waits_in_queue(void **state)
{
    (void)state;
    redlock_client *a = client(), *b = client();
    redlock_lock *l;
    assert_int_equal(redlock_acquire(a, "q:as", 30000, 0, &l), REDLOCK_OK);
    struct as_waiter w = {.c = b};
    pthread_t t;
    pthread_create(&t, NULL, wait_as, &w);
    await_queued("q:as", 1);
    usleep(50 * 1000);
    long long c0 = commands();
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    pthread_join(t, NULL);
    assert_int_equal(w.st, REDLOCK_OK);
    assert_int_equal(commands() - c0 - 1, 6);
    char *v = rt_get(&srv, "q:as");
    assert_string_equal(v, "job-42");
    free(v);
    /* the same token again in this client: a re-acquire, no queue */
    redlock_lock *again;
    assert_int_equal(redlock_acquire_as(b, "q:as", "job-42", 10000, 1000,
                                        &again),
                     REDLOCK_OK);
    assert_int_equal(llen("q:as"), 0);
    assert_int_equal(redlock_release(again), REDLOCK_OK);
    assert_int_equal(redlock_release(w.lock), REDLOCK_OK);
    assert_int_equal(rt_pttl(&srv, "q:as"), -2);
    redlock_client_free(a);
    redlock_client_free(b);
}

static void grant_to_fencing_waiter_from_plain_releaser(void **state)
{
    (void)state;
    /* The releaser counts no fences, the waiter does: the waiter still
     * gets a number above every earlier holder's. */
    redlock_client *f = client_with(1), *plain = client_with(0);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(f, "q:fmix", 30000, 0, &l), REDLOCK_OK);
    int64_t f0 = redlock_fence(l);
    assert_true(f0 > 0);
    redlock_release(l);
    assert_int_equal(redlock_acquire(plain, "q:fmix", 30000, 0, &l),
                     REDLOCK_OK);
    struct waiter w = {.c = f, .key = "q:fmix", .wait_ms = 8000};
    pthread_t t;
    pthread_create(&t, NULL, wait_for, &w);
    await_queued("q:fmix", 1);
    usleep(50 * 1000);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    pthread_join(t, NULL);
    assert_int_equal(w.st, REDLOCK_OK);
    assert_true(redlock_fence(w.lock) > f0);
    redlock_release(w.lock);
    redlock_client_free(f);
    redlock_client_free(plain);
}

/* An entry pushed ahead of a real waiter by someone else (hostile or
 * buggy): copies of the waiter's own entry with another ttl. */
static void forged_entries(void **state)
{
    (void)state;
    static const char *const ttls[] = {"20", "0", "99999999999999999999"};
    for (size_t k = 0; k < sizeof ttls / sizeof ttls[0]; k++) {
        redlock_client *a = client(), *b = client();
        redlock_lock *l;
        assert_int_equal(redlock_acquire(a, "q:forge", 30000, 0, &l),
                         REDLOCK_OK);
        struct waiter w = {.c = b, .key = "q:forge", .wait_ms = 8000};
        pthread_t t;
        pthread_create(&t, NULL, wait_for, &w);
        await_queued("q:forge", 1);
        usleep(50 * 1000);
        redisReply *r = rt_cmd(&srv, "LINDEX q:forge:redlock:q 0");
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        char forged[512];
        snprintf(forged, sizeof forged, "%s%s", ttls[k],
                 strchr(r->str, ' ')); /* same seq, client and token */
        freeReplyObject(r);
        r = rt_cmd(&srv, "LPUSH q:forge:redlock:q %s", forged);
        freeReplyObject(r);
        assert_int_equal(redlock_release(l), REDLOCK_OK);
        pthread_join(t, NULL);
        assert_int_equal(w.st, REDLOCK_OK);
        /* whatever it was told, it counts on no more than the key has */
        long long pttl = rt_pttl(&srv, "q:forge");
        print_message("forged ttl %s: validity %lld ms, key's pttl %lld ms\n",
                      ttls[k], (long long)redlock_validity_ms(w.lock), pttl);
        assert_true(redlock_validity_ms(w.lock) <= pttl);
        redlock_release(w.lock);
        r = rt_cmd(&srv, "DEL q:forge q:forge:redlock:q");
        freeReplyObject(r);
        redlock_client_free(a);
        redlock_client_free(b);
    }
}

static void first_wait_is_heard(void **state)
{
    (void)state;
    /* A client's very first wait: its notifier has just started, and a
     * release must still hand the key to it (not skip it as deaf). */
    redlock_client *a = client();
    for (int round = 0; round < 60; round++) {
        redlock_lock *l;
        assert_int_equal(redlock_acquire(a, "q:first", 30000, 0, &l),
                         REDLOCK_OK);
        redlock_client *b = client();
        struct waiter w = {.c = b, .key = "q:first", .wait_ms = 8000};
        pthread_t t;
        pthread_create(&t, NULL, wait_for, &w);
        await_queued("q:first", 1);
        assert_int_equal(redlock_release(l), REDLOCK_OK);
        char *v = rt_get(&srv, "q:first"); /* handed over, not deleted */
        assert_non_null(v);
        free(v);
        pthread_join(t, NULL);
        assert_int_equal(w.st, REDLOCK_OK);
        redlock_release(w.lock);
        redlock_client_free(b);
    }
    redlock_client_free(a);
}

static void wait_bounded_on_stalled_server(void **state)
{
    (void)state;
    /* A wait of 100 ms on a stopped server returns within the wait and one
     * node timeout (1 s here), not two. */
    redlock_client *a = client(), *b = client();
    redlock_lock *l, *lb;
    assert_int_equal(redlock_acquire(a, "q:bound", 30000, 0, &l), REDLOCK_OK);
    redlock_lock *warm; /* b's notifier is up before the stop */
    assert_int_equal(redlock_acquire(b, "q:bound", 10000, 50, &warm),
                     REDLOCK_BUSY);
    assert_int_equal(rt_server_pause(&srv), 0);
    int64_t t0 = rt_now_ms();
    redlock_status st = redlock_acquire(b, "q:bound", 10000, 100, &lb);
    int64_t took = rt_now_ms() - t0;
    assert_int_equal(rt_server_resume(&srv), 0);
    print_message("wait of 100 ms, node timeout 1000 ms: %s after %lld ms\n",
                  redlock_strerror(st), (long long)took);
    assert_int_equal(st, REDLOCK_IO);
    assert_true(took < 100 + 1000 + 400);
    redlock_release(l);
    redlock_client_free(a);
    redlock_client_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grant_needs_no_round_trip),
        cmocka_unit_test(one_waiter_woken_in_order),
        cmocka_unit_test(dead_waiter_skipped),
        cmocka_unit_test(stopped_waiter_costs_its_ttl),
        cmocka_unit_test(ended_wait_leaves_no_entry),
        cmocka_unit_test(try_never_queues),
        cmocka_unit_test(plain_client_interop),
        cmocka_unit_test(grant_takes_next_fence),
        cmocka_unit_test(long_wait_confirms_validity),
        cmocka_unit_test(queue_of_wrong_type),
        cmocka_unit_test(stalled_server_then_in_order),
        cmocka_unit_test(restart_loses_queue_not_waiters),
        cmocka_unit_test(caller_token_waits_in_queue),
        cmocka_unit_test(grant_to_fencing_waiter_from_plain_releaser),
        cmocka_unit_test(forged_entries),
        cmocka_unit_test(first_wait_is_heard),
        cmocka_unit_test(wait_bounded_on_stalled_server),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
