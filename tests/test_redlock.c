/* Redlock: one lock over 3 and 5 independent redis-servers, with nodes
 * held by others, killed, restarted, stalled and flushed; and the replica
 * check (min_replicas) against a real master + replica pair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "redis_server.h"
#include "redlock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N 5
#define NODE_TIMEOUT_MS 250

static rt_server srv[N];

static void options(redlock_options *o)
{
    redlock_options_init(o);
    o->connect_timeout_ms = 300;
    o->io_timeout_ms = 1000;
    o->node_timeout_ms = NODE_TIMEOUT_MS;
    o->retry_delay_ms = 20;
}

/* A client over the first n servers. */
static redlock_client *client_n(int n, const redlock_options *o)
{
    const char *urls[N];
    redlock_options def;
    if (!o) {
        options(&def);
        o = &def;
    }
    for (int i = 0; i < n; i++)
        urls[i] = srv[i].url;
    redlock_status st;
    redlock_client *c = redlock_connect(urls, (size_t)n, o, &st);
    if (!c)
        fail_msg("connect to %d nodes: %s", n, redlock_last_error());
    return c;
}

/* How many of the first n nodes hold value under key. */
static int holders(int n, const char *key, const char *value)
{
    int count = 0;
    for (int i = 0; i < n; i++) {
        char *v = rt_get(&srv[i], key);
        count += v && strcmp(v, value) == 0;
        free(v);
    }
    return count;
}

static int present(int n, const char *key)
{
    int count = 0;
    for (int i = 0; i < n; i++)
        if (srv[i].pid > 0)
            count += rt_pttl(&srv[i], key) != -2;
    return count;
}

static int group_setup(void **state)
{
    (void)state;
    for (int i = 0; i < N; i++)
        if (rt_server_start(&srv[i], NULL) != 0)
            return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < N; i++)
        rt_server_stop(&srv[i]);
    return 0;
}

/* Every test starts with all nodes up and empty. */
static int fresh(void **state)
{
    (void)state;
    for (int i = 0; i < N; i++) {
        if (srv[i].pid == 0 && rt_server_restart(&srv[i]) != 0)
            return -1;
        rt_server_resume(&srv[i]);
        if (!rt_cmd_ok(&srv[i], "FLUSHALL"))
            return -1;
    }
    return 0;
}

static void on_all_nodes(void **state)
{
    (void)state;
    for (int n = 3; n <= 5; n += 2) {
        redlock_client *a = client_n(n, NULL), *b = client_n(n, NULL);
        redlock_lock *l, *l2;
        int64_t t0 = rt_now_ms();
        assert_int_equal(redlock_acquire(a, "r:all", 10000, 0, &l), REDLOCK_OK);
        int64_t took = rt_now_ms() - t0;
        assert_int_equal(holders(n, "r:all", redlock_token(l)), n);
        int64_t v = redlock_validity_ms(l);
        assert_true(v <= 10000 - 102 && v >= 10000 - 102 - took - 50);
        assert_int_equal(redlock_acquire(b, "r:all", 10000, 0, &l2),
                         REDLOCK_BUSY);
        assert_non_null(strstr(redlock_last_error(), "needed"));
        assert_int_equal(holders(n, "r:all", redlock_token(l)), n);
        assert_int_equal(redlock_extend(l, 20000), REDLOCK_OK);
        for (int i = 0; i < n; i++)
            assert_true(rt_pttl(&srv[i], "r:all") > 19000);
        char buf[64];
        int64_t pttl;
        assert_int_equal(redlock_inspect(b, "r:all", buf, sizeof buf, &pttl),
                         REDLOCK_OK);
        assert_string_equal(buf, redlock_token(l));
        assert_int_equal(redlock_release(l), REDLOCK_OK);
        assert_int_equal(present(n, "r:all"), 0);
        redlock_client_free(a);
        redlock_client_free(b);
    }
}

static void minority_held_elsewhere(void **state)
{
    (void)state;
    redlock_client *c = client_n(N, NULL);
    redlock_lock *l;
    for (int i = 0; i < 2; i++)
        assert_true(rt_cmd_ok(&srv[i], "SET r:min intruder PX 60000"));
    assert_int_equal(redlock_acquire(c, "r:min", 10000, 0, &l), REDLOCK_OK);
    assert_int_equal(holders(N, "r:min", redlock_token(l)), 3);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    assert_int_equal(holders(N, "r:min", "intruder"), 2); /* untouched */
    assert_int_equal(present(N, "r:min"), 2);
    redlock_client_free(c);
}

static void majority_held_elsewhere(void **state)
{
    (void)state;
    redlock_client *c = client_n(N, NULL);
    redlock_lock *l;
    for (int i = 0; i < 3; i++)
        assert_true(rt_cmd_ok(&srv[i], "SET r:maj intruder PX 60000"));
    assert_int_equal(redlock_acquire(c, "r:maj", 10000, 0, &l), REDLOCK_BUSY);
    assert_non_null(strstr(redlock_last_error(), "2 of 5 nodes said yes, 3 no"));
    /* none of our keys is left behind on the two that said yes */
    assert_int_equal(present(N, "r:maj"), 3);
    assert_int_equal(holders(N, "r:maj", "intruder"), 3);
    redlock_client_free(c);
}

static void two_of_five_killed(void **state)
{
    (void)state;
    redlock_client *c = client_n(N, NULL);
    redlock_lock *l;
    rt_server_kill(&srv[3]);
    rt_server_kill(&srv[4]);
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_acquire(c, "r:two", 10000, 0, &l), REDLOCK_OK);
    int64_t took = rt_now_ms() - t0;
    assert_true(took <= NODE_TIMEOUT_MS + 500);
    assert_int_equal(holders(3, "r:two", redlock_token(l)), 3);
    assert_int_equal(redlock_extend(l, 10000), REDLOCK_OK);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    assert_int_equal(present(3, "r:two"), 0);

    /* restarted nodes count again */
    assert_int_equal(rt_server_restart(&srv[3]), 0);
    assert_int_equal(rt_server_restart(&srv[4]), 0);
    assert_int_equal(redlock_acquire(c, "r:two", 10000, 0, &l), REDLOCK_OK);
    assert_int_equal(holders(N, "r:two", redlock_token(l)), N);
    redlock_release(l);
    redlock_client_free(c);
}

static void three_of_five_killed(void **state)
{
    (void)state;
    redlock_client *c = client_n(N, NULL);
    redlock_lock *l;
    for (int i = 2; i < N; i++)
        rt_server_kill(&srv[i]);
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_acquire(c, "r:three", 10000, 0, &l), REDLOCK_IO);
    assert_true(rt_now_ms() - t0 <= NODE_TIMEOUT_MS + 500);
    assert_non_null(strstr(redlock_last_error(), "2 of 5 nodes said yes"));
    assert_int_equal(present(2, "r:three"), 0); /* no partial keys */
    /* and connect needs a quorum too */
    const char *urls[N];
    for (int i = 0; i < N; i++)
        urls[i] = srv[i].url;
    redlock_options o;
    options(&o);
    redlock_status st;
    assert_null(redlock_connect(urls, N, &o, &st));
    assert_int_equal(st, REDLOCK_IO);
    assert_non_null(strstr(redlock_last_error(), "only 2 of 5"));
    redlock_client_free(c);
}

static void connect_with_quorum(void **state)
{
    (void)state;
    rt_server_kill(&srv[0]);
    rt_server_kill(&srv[1]);
    redlock_client *c = client_n(N, NULL); /* 3 of 5 answer: enough */
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "r:cq", 10000, 0, &l), REDLOCK_OK);
    assert_int_equal(rt_server_restart(&srv[0]), 0);
    assert_int_equal(rt_server_restart(&srv[1]), 0);
    /* the nodes that were down at connect are used once back */
    assert_int_equal(redlock_extend(l, 10000), REDLOCK_OK);
    redlock_release(l);
    assert_int_equal(redlock_acquire(c, "r:cq", 10000, 0, &l), REDLOCK_OK);
    assert_int_equal(holders(N, "r:cq", redlock_token(l)), N);
    redlock_release(l);
    redlock_client_free(c);
}

static void one_stalled(void **state)
{
    (void)state;
    redlock_client *c = client_n(N, NULL);
    redlock_lock *l;
    assert_int_equal(rt_server_pause(&srv[2]), 0);
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_acquire(c, "r:stall", 10000, 0, &l), REDLOCK_OK);
    int64_t took = rt_now_ms() - t0;
    /* Decided by the four that answered: the stalled node costs a grace
     * (a quarter of the node timeout), not the timeout. */
    assert_true(took < NODE_TIMEOUT_MS);
    assert_true(redlock_validity_ms(l) <= 10000 - 102 - took + 5);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    assert_int_equal(rt_server_resume(&srv[2]), 0);
    /* The stalled node applies the buffered SET, then our buffered
     * release (sent on a new connection): nothing of ours remains there
     * after the next contact. */
    usleep(200 * 1000);
    char buf[64];
    redlock_inspect(c, "r:other", buf, sizeof buf, NULL);
    assert_int_equal(present(N, "r:stall"), 0);
    redlock_client_free(c);
}

static void script_flush_some(void **state)
{
    (void)state;
    redlock_client *c = client_n(N, NULL);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "r:flush", 5000, 0, &l), REDLOCK_OK);
    assert_true(rt_cmd_ok(&srv[0], "SCRIPT FLUSH"));
    assert_true(rt_cmd_ok(&srv[3], "SCRIPT FLUSH"));
    assert_int_equal(redlock_extend(l, 30000), REDLOCK_OK);
    for (int i = 0; i < N; i++)
        assert_true(rt_pttl(&srv[i], "r:flush") > 29000);
    assert_true(rt_cmd_ok(&srv[1], "SCRIPT FLUSH"));
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    assert_int_equal(present(N, "r:flush"), 0);
    redlock_client_free(c);
}

static atomic_int lost_calls;

static void on_lost(const redlock_lock *l, void *arg)
{
    (void)l;
    (void)arg;
    atomic_fetch_add(&lost_calls, 1);
}

static void watchdog_quorum(void **state)
{
    (void)state;
    redlock_options o;
    options(&o);
    o.renew_floor_ms = 50;
    o.on_lost = on_lost;
    atomic_store(&lost_calls, 0);
    redlock_client *c = client_n(N, &o);
    redlock_lock *a, *b;
    assert_int_equal(redlock_acquire(c, "r:wa", 900, 0, &a), REDLOCK_OK);
    assert_int_equal(redlock_acquire(c, "r:wb", 900, 0, &b), REDLOCK_OK);
    redlock_keepalive(a);
    redlock_keepalive(b);
    usleep(1500 * 1000); /* kept past its ttl on every node */
    assert_true(redlock_held(a) && redlock_held(b));
    assert_int_equal(holders(N, "r:wa", redlock_token(a)), N);

    /* a minority overwritten: still held by the majority */
    for (int i = 0; i < 2; i++)
        assert_true(rt_cmd_ok(&srv[i], "SET r:wb intruder PX 60000"));
    /* a majority overwritten: lost within an interval */
    for (int i = 0; i < 3; i++)
        assert_true(rt_cmd_ok(&srv[i], "SET r:wa intruder PX 60000"));
    int64_t t0 = rt_now_ms();
    while (redlock_held(a) && rt_now_ms() - t0 < 3000)
        usleep(10 * 1000);
    assert_int_equal(redlock_held(a), 0);
    assert_true(rt_now_ms() - t0 < 300 + 700);
    usleep(600 * 1000);
    assert_int_equal(redlock_held(b), 1);
    assert_int_equal(atomic_load(&lost_calls), 1);
    assert_int_equal(redlock_release(a), REDLOCK_NOT_HELD);
    assert_int_equal(holders(N, "r:wa", "intruder"), 3);
    assert_int_equal(redlock_release(b), REDLOCK_OK);
    assert_int_equal(holders(N, "r:wb", "intruder"), 2);
    redlock_client_free(c);
}

enum { MX_CLIENTS = 3, MX_THREADS = 3, MX_MS = 2000 };
static atomic_int mx_inside, mx_max, mx_errors;

struct mx_arg {
    redlock_client *c;
    int sections;
};

static void *mx_worker(void *p)
{
    struct mx_arg *a = p;
    int64_t end = rt_now_ms() + MX_MS;
    while (rt_now_ms() < end) {
        redlock_lock *l;
        redlock_status st = redlock_acquire(a->c, "r:mx", 2000, 3000, &l);
        if (st != REDLOCK_OK) {
            atomic_fetch_add(&mx_errors, st != REDLOCK_BUSY);
            continue;
        }
        int in = atomic_fetch_add(&mx_inside, 1) + 1;
        int prev = atomic_load(&mx_max);
        while (in > prev && !atomic_compare_exchange_weak(&mx_max, &prev, in))
            ;
        usleep(500);
        atomic_fetch_sub(&mx_inside, 1);
        if (redlock_release(l) != REDLOCK_OK)
            atomic_fetch_add(&mx_errors, 1);
        a->sections++;
    }
    return NULL;
}

static void mutual_exclusion(void **state)
{
    (void)state;
    redlock_client *c[MX_CLIENTS];
    pthread_t t[MX_CLIENTS * MX_THREADS];
    struct mx_arg a[MX_CLIENTS * MX_THREADS];
    atomic_store(&mx_max, 0);
    atomic_store(&mx_errors, 0);
    for (int i = 0; i < MX_CLIENTS; i++)
        c[i] = client_n(N, NULL);
    for (int i = 0; i < MX_CLIENTS * MX_THREADS; i++) {
        a[i] = (struct mx_arg){c[i % MX_CLIENTS], 0};
        pthread_create(&t[i], NULL, mx_worker, &a[i]);
    }
    int total = 0;
    for (int i = 0; i < MX_CLIENTS * MX_THREADS; i++) {
        pthread_join(t[i], NULL);
        total += a[i].sections;
    }
    print_message("%d critical sections on 5 nodes\n", total);
    assert_int_equal(atomic_load(&mx_max), 1);
    assert_int_equal(atomic_load(&mx_errors), 0);
    assert_true(total >= 20);
    /* The last releases may have been handed off to waiters that gave up
     * just then: such a reservation lasts 50 ms, then nothing is left. */
    usleep(100 * 1000);
    assert_int_equal(present(N, "r:mx"), 0);
    for (int i = 0; i < MX_CLIENTS; i++)
        redlock_client_free(c[i]);
}

/* The replica check: a master with one replica. */
static void min_replicas(void **state)
{
    (void)state;
    rt_server master, replica;
    assert_int_equal(rt_server_start(&master, NULL), 0);
    char port[16];
    snprintf(port, sizeof port, "%d", master.port);
    const char *args[] = {"--replicaof", "127.0.0.1", port, NULL};
    assert_int_equal(rt_server_start(&replica, args), 0);
    /* wait for the link */
    int64_t t0 = rt_now_ms();
    for (;;) {
        redisReply *r = rt_cmd(&replica, "INFO replication");
        int up = r && r->type == REDIS_REPLY_STRING &&
                 strstr(r->str, "master_link_status:up");
        freeReplyObject(r);
        if (up)
            break;
        assert_true(rt_now_ms() - t0 < 10000);
        usleep(50 * 1000);
    }
    redlock_options o;
    options(&o);
    o.min_replicas = 1;
    o.node_timeout_ms = 600;
    const char *url = master.url;
    redlock_status st;
    redlock_client *c = redlock_connect(&url, 1, &o, &st);
    assert_non_null(c);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "r:rep", 10000, 0, &l), REDLOCK_OK);
    usleep(50 * 1000);
    char *v = rt_get(&replica, "r:rep");
    assert_string_equal(v, redlock_token(l)); /* acknowledged by the replica */
    free(v);
    assert_int_equal(redlock_extend(l, 10000), REDLOCK_OK);
    redlock_status rst = redlock_release(l);
    if (rst != REDLOCK_OK)
        fail_msg("release: %s", redlock_last_error());

    rt_server_stop(&replica);
    assert_int_equal(redlock_acquire(c, "r:rep", 10000, 0, &l), REDLOCK_IO);
    assert_non_null(strstr(redlock_last_error(), "0 of 1 replicas"));
    assert_null(rt_get(&master, "r:rep")); /* released, not left behind */
    redlock_client_free(c);
    rt_server_stop(&master);
}

/* With N > 1 there is no queue: a release with listeners hands the key off
 * to waiters ("redlock:handoff" for 50 ms), which a plain try cannot take
 * and a waiter's acquire can. */
static void handoff_is_free_to_waiters_only(void **state)
{
    (void)state;
    redisContext *sub[3];
    for (int i = 0; i < 3; i++) {
        sub[i] = rt_connect(&srv[i]);
        assert_true(sub[i] != NULL && sub[i]->err == 0);
        redisReply *r = redisCommand(sub[i], "SUBSCRIBE redlock:release:n:hand");
        assert_non_null(r);
        freeReplyObject(r);
    }
    redlock_client *a = client_n(3, NULL);
    redlock_lock *l, *l2;
    assert_int_equal(redlock_acquire(a, "n:hand", 30000, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    assert_int_equal(holders(3, "n:hand", "redlock:handoff"), 3);
    long long pttl = rt_pttl(&srv[0], "n:hand");
    assert_true(pttl > 0 && pttl <= 50);
    assert_int_equal(redlock_inspect(a, "n:hand", NULL, 0, NULL),
                     REDLOCK_NOT_HELD);
    assert_int_equal(redlock_acquire(a, "n:hand", 30000, 0, &l2),
                     REDLOCK_BUSY);
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_acquire(a, "n:hand", 30000, 3000, &l2),
                     REDLOCK_OK);
    assert_true(rt_now_ms() - t0 < 500);
    assert_int_equal(holders(3, "n:hand", redlock_token(l2)), 3);
    for (int i = 0; i < 3; i++) {
        redisReply *r = NULL;
        assert_int_equal(redisGetReply(sub[i], (void **)&r), REDIS_OK);
        assert_string_equal(r->element[0]->str, "message");
        freeReplyObject(r);
        redisFree(sub[i]);
    }
    usleep(100 * 1000); /* our own waiter's subscription is dropped */
    assert_int_equal(redlock_release(l2), REDLOCK_OK);
    assert_int_equal(present(3, "n:hand"), 0);
    assert_int_equal(
        redlock_acquire_as(a, "n:hand", "redlock:handoff", 1000, 0, &l2),
        REDLOCK_INVALID);
    redlock_client_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(on_all_nodes, fresh),
        cmocka_unit_test_setup(minority_held_elsewhere, fresh),
        cmocka_unit_test_setup(majority_held_elsewhere, fresh),
        cmocka_unit_test_setup(two_of_five_killed, fresh),
        cmocka_unit_test_setup(three_of_five_killed, fresh),
        cmocka_unit_test_setup(connect_with_quorum, fresh),
        cmocka_unit_test_setup(one_stalled, fresh),
        cmocka_unit_test_setup(script_flush_some, fresh),
        cmocka_unit_test_setup(watchdog_quorum, fresh),
        cmocka_unit_test_setup(mutual_exclusion, fresh),
        cmocka_unit_test_setup(min_replicas, fresh),
        cmocka_unit_test_setup(handoff_is_free_to_waiters_only, fresh),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
