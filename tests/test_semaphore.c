/* Counting semaphores (redlock_acquire_n): at most n holders at once, on
 * one node (waiters queue) and on three (notify and retry), against real
 * redis-servers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "delay_proxy.h"
#include "redis_server.h"
#include "redlock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NSRV 3
static rt_server srv[NSRV];

/* A client of the first n servers. */
static redlock_client *client(int n)
{
    redlock_options o;
    redlock_options_init(&o);
    o.retry_delay_ms = 2000;
    o.connect_timeout_ms = 500;
    o.io_timeout_ms = 1000;
    o.node_timeout_ms = 300;
    const char *urls[NSRV];
    for (int i = 0; i < n; i++)
        urls[i] = srv[i].url;
    redlock_client *c = redlock_connect(urls, (size_t)n, &o, NULL);
    if (!c)
        fail_msg("connect: %s", redlock_last_error());
    return c;
}

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < NSRV; i++)
        if (rt_server_start(&srv[i], NULL) != 0)
            return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NSRV; i++)
        rt_server_stop(&srv[i]);
    return 0;
}

static void bad_n(void **state)
{
    (void)state;
    redlock_client *c = client(1);
    redlock_lock *l = (redlock_lock *)1;
    assert_int_equal(redlock_acquire_n(c, "s:bad", 0, 1000, 0, &l),
                     REDLOCK_INVALID);
    assert_null(l);
    assert_int_equal(redlock_acquire_n(c, "s:bad", REDLOCK_SEMAPHORE_MAX + 1,
                                       1000, 0, &l),
                     REDLOCK_INVALID);
    assert_int_equal(redlock_acquire_n(NULL, "s:bad", 2, 1000, 0, &l),
                     REDLOCK_INVALID);
    assert_int_equal(redlock_acquire_n(c, "", 2, 1000, 0, &l),
                     REDLOCK_INVALID);
    /* n = 1 is the lock on the key itself */
    assert_int_equal(redlock_acquire_n(c, "s:one", 1, 10000, 0, &l),
                     REDLOCK_OK);
    assert_string_equal(redlock_key(l), "s:one");
    char *v = rt_get(&srv[0], "s:one");
    assert_string_equal(v, redlock_token(l));
    free(v);
    redlock_release(l);
    redlock_client_free(c);
}

/* At most n at once; the n + 1st is BUSY; a slot freed goes to a waiter. */
static void at_most_n(int nodes)
{
    enum { N = 3 };
    redlock_client *c = client(nodes);
    redlock_lock *l[N], *extra;
    int seen[N] = {0};
    for (int i = 0; i < N; i++) {
        assert_int_equal(redlock_acquire_n(c, "s:pool", N, 10000, 0, &l[i]),
                         REDLOCK_OK);
        const char *k = redlock_key(l[i]);
        assert_true(strncmp(k, "s:pool:redlock:", 15) == 0);
        int slot = atoi(k + 15);
        assert_true(slot >= 0 && slot < N);
        assert_false(seen[slot]);
        seen[slot] = 1;
        assert_true(redlock_validity_ms(l[i]) > 9000);
    }
    assert_int_equal(redlock_acquire_n(c, "s:pool", N, 10000, 0, &extra),
                     REDLOCK_BUSY);
    assert_null(extra);
    /* the key itself is never touched */
    assert_int_equal(rt_pttl(&srv[0], "s:pool"), -2);
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_release(l[1]), REDLOCK_OK);
    assert_int_equal(redlock_acquire_n(c, "s:pool", N, 10000, 3000, &extra),
                     REDLOCK_OK);
    assert_true(rt_now_ms() - t0 < 1500);
    l[1] = extra;
    for (int i = 0; i < N; i++)
        assert_int_equal(redlock_release(l[i]), REDLOCK_OK);
    for (int s = 0; s < N; s++) {
        char k[64];
        snprintf(k, sizeof k, "s:pool:redlock:%d", s);
        assert_int_equal(rt_pttl(&srv[0], k), -2);
    }
    redlock_client_free(c);
}

static void at_most_n_one_node(void **state)
{
    (void)state;
    at_most_n(1);
}

static void at_most_n_three_nodes(void **state)
{
    (void)state;
    at_most_n(3);
}

struct waiter {
    redlock_client *c;
    redlock_status st;
    redlock_lock *l;
    atomic_llong done_at;
};

static void *wait_permit(void *p)
{
    struct waiter *w = p;
    w->st = redlock_acquire_n(w->c, "s:handoff", 2, 10000, 8000, &w->l);
    atomic_store(&w->done_at, rt_now_ms());
    return NULL;
}

static void release_hands_slot_to_waiter(void **state)
{
    (void)state;
    /* One node: the waiter queues, and a released slot is granted to it
     * in the release's own step (the key holds its token at once). */
    redlock_client *a = client(1), *b = client(1);
    redlock_lock *l0, *l1;
    assert_int_equal(redlock_acquire_n(a, "s:handoff", 2, 30000, 0, &l0),
                     REDLOCK_OK);
    assert_int_equal(redlock_acquire_n(a, "s:handoff", 2, 30000, 0, &l1),
                     REDLOCK_OK);
    struct waiter w = {.c = b};
    pthread_t t;
    pthread_create(&t, NULL, wait_permit, &w);
    for (int i = 0; i < 500; i++) {
        redisReply *r = rt_cmd(&srv[0], "LLEN s:handoff:redlock:sq");
        long long n = r->integer;
        freeReplyObject(r);
        if (n == 1)
            break;
        usleep(2000);
    }
    usleep(50 * 1000);
    char slot[64];
    snprintf(slot, sizeof slot, "%s", redlock_key(l1));
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_release(l1), REDLOCK_OK);
    pthread_join(t, NULL);
    assert_int_equal(w.st, REDLOCK_OK);
    assert_true(atomic_load(&w.done_at) - t0 < 500);
    assert_string_equal(redlock_key(w.l), slot);
    char *v = rt_get(&srv[0], slot);
    assert_string_equal(v, redlock_token(w.l));
    free(v);
    /* a permit is a lock: keepalive, extend, release */
    assert_int_equal(redlock_keepalive(w.l), REDLOCK_OK);
    assert_int_equal(redlock_extend(w.l, 20000), REDLOCK_OK);
    assert_int_equal(redlock_release(w.l), REDLOCK_OK);
    assert_int_equal(redlock_release(l0), REDLOCK_OK);
    redlock_client_free(a);
    redlock_client_free(b);
}

static void crashed_holder_frees_its_slot(void **state)
{
    (void)state;
    redlock_client *c = client(1);
    redlock_lock *l0, *l1, *l2;
    assert_int_equal(redlock_acquire_n(c, "s:crash", 2, 300, 0, &l0),
                     REDLOCK_OK);
    assert_int_equal(redlock_acquire_n(c, "s:crash", 2, 10000, 0, &l1),
                     REDLOCK_OK);
    redlock_detach(l0); /* as if its process died */
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_acquire_n(c, "s:crash", 2, 10000, 5000, &l2),
                     REDLOCK_OK);
    int64_t took = rt_now_ms() - t0;
    print_message("a crashed holder's slot came free after %lld ms\n",
                  (long long)took);
    assert_true(took >= 200 && took < 2500);
    redlock_release(l1);
    redlock_release(l2);
    redlock_client_free(c);
}

enum { WORKERS = 8, ROUNDS = 12, PERMITS = 3 };
static atomic_int inside, max_inside;

static void *churn(void *p)
{
    redlock_client *c = p;
    for (int i = 0; i < ROUNDS; i++) {
        redlock_lock *l;
        if (redlock_acquire_n(c, "s:churn", PERMITS, 5000, 10000, &l) !=
            REDLOCK_OK)
            continue;
        int in = atomic_fetch_add(&inside, 1) + 1;
        int m = atomic_load(&max_inside);
        while (in > m && !atomic_compare_exchange_weak(&max_inside, &m, in)) {
        }
        usleep(2000);
        atomic_fetch_sub(&inside, 1);
        redlock_release(l);
    }
    return NULL;
}

static void never_more_than_n(int nodes)
{
    redlock_client *cs[WORKERS];
    pthread_t t[WORKERS];
    atomic_store(&max_inside, 0);
    for (int i = 0; i < WORKERS; i++) {
        cs[i] = client(nodes);
        pthread_create(&t[i], NULL, churn, cs[i]);
    }
    for (int i = 0; i < WORKERS; i++)
        pthread_join(t[i], NULL);
    print_message("at most %d inside at once (n = %d)\n",
                  atomic_load(&max_inside), PERMITS);
    assert_true(atomic_load(&max_inside) <= PERMITS);
    assert_true(atomic_load(&max_inside) >= 2); /* it is a semaphore */
    for (int i = 0; i < WORKERS; i++)
        redlock_client_free(cs[i]);
}

static void never_more_than_n_one_node(void **state)
{
    (void)state;
    never_more_than_n(1);
}

static void never_more_than_n_three_nodes(void **state)
{
    (void)state;
    never_more_than_n(3);
}

static void *wait_alias(void *p)
{
    struct waiter *w = p;
    w->st = redlock_acquire_n(w->c, "s:alias", 2, 10000, 1500, &w->l);
    atomic_store(&w->done_at, rt_now_ms());
    return NULL;
}

static void lock_named_like_a_slot_hands_nothing_on(void **state)
{
    (void)state;
    /* A plain lock whose name looks like a slot (out of range, or written
     * "00") is no permit: its release must not admit a third holder. */
    static const char *const names[] = {"s:alias:redlock:5",
                                        "s:alias:redlock:00"};
    for (size_t k = 0; k < 2; k++) {
        redlock_client *a = client(1), *b = client(1);
        redlock_lock *p0, *p1, *plain;
        assert_int_equal(redlock_acquire_n(a, "s:alias", 2, 30000, 0, &p0),
                         REDLOCK_OK);
        assert_int_equal(redlock_acquire_n(a, "s:alias", 2, 30000, 0, &p1),
                         REDLOCK_OK);
        struct waiter w = {.c = b};
        pthread_t t;
        pthread_create(&t, NULL, wait_alias, &w);
        usleep(200 * 1000); /* queued */
        assert_int_equal(redlock_acquire(a, names[k], 30000, 0, &plain),
                         REDLOCK_OK);
        assert_int_equal(redlock_release(plain), REDLOCK_OK);
        pthread_join(t, NULL);
        if (w.st == REDLOCK_OK)
            print_error("a third holder: %s\n", redlock_key(w.l));
        assert_int_equal(w.st, REDLOCK_BUSY);
        assert_int_equal(rt_pttl(&srv[0], names[k]), -2);
        redlock_release(p0);
        redlock_release(p1);
        redlock_client_free(a);
        redlock_client_free(b);
    }
}

static void many_slots_try_is_bounded(void **state)
{
    (void)state;
    /* Three nodes 5 ms away, 600 slots all held: one try looks at slots
     * for one node timeout (50 ms), not for 600 round trips (3 s). */
    enum { SLOTS = 600 };
    redlock_client *a = client(3);
    redlock_options o;
    redlock_options_init(&o);
    o.node_timeout_ms = 50;
    rt_proxy *px[3];
    const char *urls[3];
    for (int i = 0; i < 3; i++) {
        px[i] = rt_proxy_start(srv[i].port);
        assert_non_null(px[i]);
        urls[i] = rt_proxy_url(px[i]);
    }
    redlock_client *b = redlock_connect(urls, 3, &o, NULL);
    assert_non_null(b);
    for (int i = 0; i < 3; i++)
        rt_proxy_delay(px[i], 0, 5); /* b's pooled connection to each */
    redlock_lock **held = calloc(SLOTS, sizeof *held);
    for (int i = 0; i < SLOTS; i++)
        assert_int_equal(redlock_acquire_n(a, "s:many", SLOTS, 60000, 0,
                                           &held[i]),
                         REDLOCK_OK);
    redlock_lock *l;
    /* BUSY, or IO when a slot's attempt is cut by the node timeout (a
     * slow run: valgrind); never a slot, and never late */
    int64_t t0 = rt_now_ms();
    redlock_status st = redlock_acquire_n(b, "s:many", SLOTS, 60000, 0, &l);
    int64_t took = rt_now_ms() - t0;
    assert_true(st == REDLOCK_BUSY || st == REDLOCK_IO);
    t0 = rt_now_ms();
    st = redlock_acquire_n(b, "s:many", SLOTS, 60000, 100, &l);
    int64_t waited = rt_now_ms() - t0;
    assert_true(st == REDLOCK_BUSY || st == REDLOCK_IO);
    print_message("a try over %d held slots: %lld ms; a wait of 100 ms: "
                  "%lld ms\n", SLOTS, (long long)took, (long long)waited);
    /* Freed before judging: a failed check must not leak (valgrind). */
    for (int i = 0; i < SLOTS; i++)
        redlock_release(held[i]);
    free(held);
    redlock_client_free(a);
    redlock_client_free(b);
    for (int i = 0; i < 3; i++)
        rt_proxy_stop(px[i]);
    /* The margin is for the client's CPU time over 600 slots (watches
     * included), which valgrind multiplies: 475 ms there for the wait. */
    assert_true(took < 50 + rt_slack_ms(250));
    assert_true(waited < 100 + 50 + rt_slack_ms(250));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_n),
        cmocka_unit_test(at_most_n_one_node),
        cmocka_unit_test(at_most_n_three_nodes),
        cmocka_unit_test(release_hands_slot_to_waiter),
        cmocka_unit_test(crashed_holder_frees_its_slot),
        cmocka_unit_test(never_more_than_n_one_node),
        cmocka_unit_test(never_more_than_n_three_nodes),
        cmocka_unit_test(lock_named_like_a_slot_hands_nothing_on),
        cmocka_unit_test(many_slots_try_is_bounded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
