/* Waiting, as users see it, against a real redis-server: one node, where
 * waiters queue and a release hands the lock to one of them (the queue's
 * own details are in test_queue.c; the N > 1 handoff in test_redlock.c).  Waiters here use a retry delay of 2 s, so a handoff that
 * takes well under a second can only come from a notification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "redis_server.h"
#include "redlock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static rt_server srv;

static redlock_client *client(int retry_delay_ms)
{
    redlock_options o;
    redlock_options_init(&o);
    o.retry_delay_ms = retry_delay_ms;
    o.connect_timeout_ms = 500;
    o.io_timeout_ms = 500;
    const char *url = srv.url;
    redlock_client *c = redlock_connect(&url, 1, &o, NULL);
    if (!c)
        fail_msg("connect: %s", redlock_last_error());
    return c;
}

struct waiter {
    redlock_client *c;
    const char *key;
    int64_t wait_ms;
    redlock_status st;
    redlock_lock *lock;
    int64_t done_at;
    atomic_int started;
};

static void *wait_for(void *p)
{
    struct waiter *w = p;
    atomic_store(&w->started, 1);
    w->st = redlock_acquire(w->c, w->key, 10000, w->wait_ms, &w->lock);
    w->done_at = rt_now_ms();
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

static void release_wakes_waiter(void **state)
{
    (void)state;
    redlock_client *a = client(100), *b = client(2000);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(a, "n:wake", 30000, 0, &l), REDLOCK_OK);
    struct waiter w = {.c = b, .key = "n:wake", .wait_ms = 8000};
    pthread_t t;
    pthread_create(&t, NULL, wait_for, &w);
    usleep(300 * 1000); /* the waiter tried, subscribed and sleeps */
    int64_t released = rt_now_ms();
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    pthread_join(t, NULL);
    assert_int_equal(w.st, REDLOCK_OK);
    int64_t gap = w.done_at - released;
    print_message("handoff took %lld ms\n", (long long)gap);
    assert_true(gap < 500); /* polling alone would take >= 1000 ms */
    char *v = rt_get(&srv, "n:wake");
    assert_string_equal(v, redlock_token(w.lock));
    free(v);
    redlock_release(w.lock);
    redlock_client_free(a);
    redlock_client_free(b);
}

static void vanished_holder_by_ttl(void **state)
{
    (void)state;
    /* A holder that dies publishes nothing: the waiter wakes by the
     * holder's remaining ttl, not by its 2 s retry delay. */
    redlock_client *a = client(100), *b = client(2000);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(a, "n:gone", 400, 0, &l), REDLOCK_OK);
    redlock_detach(l);
    int64_t t0 = rt_now_ms();
    redlock_lock *lb;
    assert_int_equal(redlock_acquire(b, "n:gone", 10000, 8000, &lb),
                     REDLOCK_OK);
    int64_t took = rt_now_ms() - t0;
    print_message("got an expired lock after %lld ms\n", (long long)took);
    assert_true(took >= 300 && took < 900);
    redlock_release(lb);
    redlock_client_free(a);
    redlock_client_free(b);
}

static void releaser_does_not_win_again(void **state)
{
    (void)state;
    redlock_client *a = client(100), *b = client(2000);
    redlock_lock *l, *again;
    assert_int_equal(redlock_acquire(a, "n:fair", 30000, 0, &l), REDLOCK_OK);
    struct waiter w = {.c = b, .key = "n:fair", .wait_ms = 8000};
    pthread_t t;
    pthread_create(&t, NULL, wait_for, &w);
    usleep(300 * 1000);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    /* Straight back: the key is handed off to the waiter, not to us. */
    assert_int_equal(redlock_acquire(a, "n:fair", 30000, 0, &again),
                     REDLOCK_BUSY);
    pthread_join(t, NULL);
    assert_int_equal(w.st, REDLOCK_OK);
    char *v = rt_get(&srv, "n:fair");
    assert_string_equal(v, redlock_token(w.lock));
    free(v);
    redlock_release(w.lock);
    redlock_client_free(a);
    redlock_client_free(b);
}

static void own_leftover_subscription(void **state)
{
    (void)state;
    /* A client that waited, got the lock and released it at once still
     * has its subscription for a moment: that is nobody to hand off to,
     * so another client's plain try right after succeeds (it was BUSY for
     * the 50 ms of a handoff to no one). */
    redlock_client *a = client(100), *b = client(2000);
    for (int round = 0; round < 20; round++) {
        redlock_lock *la, *lb, *again;
        assert_int_equal(redlock_acquire(a, "n:own", 300, 0, &la), REDLOCK_OK);
        redlock_detach(la); /* expires in 300 ms, publishing nothing */
        assert_int_equal(redlock_acquire(b, "n:own", 10000, 5000, &lb),
                         REDLOCK_OK);
        assert_int_equal(redlock_release(lb), REDLOCK_OK);
        assert_int_equal(redlock_acquire(a, "n:own", 10000, 0, &again),
                         REDLOCK_OK);
        /* (b's subscription may still count for a round trip, so this
         * release by a can be handed off to no one for 50 ms: wait that
         * out.  The discount covers only the releaser's own leftovers.) */
        redlock_release(again);
        usleep(60 * 1000);
    }
    redlock_client_free(a);
    redlock_client_free(b);
}

static void subscriber_killed(void **state)
{
    (void)state;
    /* The notifier's connection dies while a thread waits: the wait still
     * ends with the lock (by the fallback), and later handoffs are fast
     * again once the notifier has reconnected. */
    redlock_client *a = client(100), *b = client(300);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(a, "n:kill", 30000, 0, &l), REDLOCK_OK);
    struct waiter w = {.c = b, .key = "n:kill", .wait_ms = 8000};
    pthread_t t;
    pthread_create(&t, NULL, wait_for, &w);
    usleep(300 * 1000);
    redisReply *r = rt_cmd(&srv, "CLIENT KILL TYPE pubsub");
    assert_non_null(r);
    assert_true(r->integer >= 1);
    freeReplyObject(r);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    pthread_join(t, NULL);
    assert_int_equal(w.st, REDLOCK_OK);
    assert_true(w.done_at > 0);
    redlock_release(w.lock);

    usleep(800 * 1000); /* reconnected by now */
    assert_int_equal(redlock_acquire(a, "n:kill", 30000, 0, &l), REDLOCK_OK);
    struct waiter w2 = {.c = b, .key = "n:kill", .wait_ms = 8000};
    pthread_create(&t, NULL, wait_for, &w2);
    usleep(300 * 1000);
    int64_t released = rt_now_ms();
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    pthread_join(t, NULL);
    assert_int_equal(w2.st, REDLOCK_OK);
    assert_true(w2.done_at - released < 250);
    redlock_release(w2.lock);
    redlock_client_free(a);
    redlock_client_free(b);
}

enum { WORKERS = 6, ROUNDS = 25 };
static atomic_int inside, max_inside;

static void *churn(void *p)
{
    redlock_client *c = p;
    for (int i = 0; i < ROUNDS; i++) {
        redlock_lock *l;
        if (redlock_acquire(c, "n:churn", 5000, 10000, &l) != REDLOCK_OK)
            continue;
        int in = atomic_fetch_add(&inside, 1) + 1;
        if (in > atomic_load(&max_inside))
            atomic_store(&max_inside, in);
        usleep(200);
        atomic_fetch_sub(&inside, 1);
        redlock_release(l);
    }
    return NULL;
}

static void many_waiters_one_client(void **state)
{
    (void)state;
    /* Waiters of one client share one subscription; everyone gets the lock
     * in turn, one at a time, quickly. */
    redlock_client *c = client(2000);
    pthread_t t[WORKERS];
    atomic_store(&max_inside, 0);
    int64_t t0 = rt_now_ms();
    for (int i = 0; i < WORKERS; i++)
        pthread_create(&t[i], NULL, churn, c);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(t[i], NULL);
    int64_t took = rt_now_ms() - t0;
    print_message("%d sections in %lld ms\n", WORKERS * ROUNDS, (long long)took);
    assert_int_equal(atomic_load(&max_inside), 1);
    assert_true(took < 8000); /* 150 handoffs: polling at 2 s could not */
    assert_int_equal(rt_pttl(&srv, "n:churn"), -2);
    redlock_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(release_wakes_waiter),
        cmocka_unit_test(vanished_holder_by_ttl),
        cmocka_unit_test(releaser_does_not_win_again),
        cmocka_unit_test(own_leftover_subscription),
        cmocka_unit_test(subscriber_killed),
        cmocka_unit_test(many_waiters_one_client),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
