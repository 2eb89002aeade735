/* The watchdog: keeping locks alive, noticing their loss, max_hold_ms,
 * and giving handles back, against a real redis-server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "redis_server.h"
#include "redlock.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static rt_server srv;

typedef struct lost_log {
    atomic_int calls;
    const redlock_lock *last;
    char key[64];
} lost_log;

static void on_lost(const redlock_lock *lock, void *arg)
{
    lost_log *log = arg;
    log->last = lock;
    snprintf(log->key, sizeof log->key, "%s", redlock_key(lock));
    atomic_fetch_add(&log->calls, 1);
}

static redlock_client *client_opts(int floor_ms, int max_hold_ms,
                                   lost_log *log)
{
    redlock_options o;
    redlock_options_init(&o);
    o.renew_floor_ms = floor_ms;
    o.max_hold_ms = max_hold_ms;
    o.io_timeout_ms = 300;
    o.connect_timeout_ms = 300;
    if (log) {
        o.on_lost = on_lost;
        o.on_lost_arg = log;
    }
    const char *url = srv.url;
    redlock_status st;
    redlock_client *c = redlock_connect(&url, 1, &o, &st);
    if (!c)
        fail_msg("connect: %s", redlock_last_error());
    return c;
}

/* Poll until the lock is seen lost or ms pass; returns the time it took. */
static int64_t wait_lost(const redlock_lock *l, int ms)
{
    int64_t t0 = rt_now_ms();
    while (redlock_held(l) && rt_now_ms() - t0 < ms)
        usleep(10 * 1000);
    return rt_now_ms() - t0;
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

static void keeps_short_lock(void **state)
{
    (void)state;
    lost_log log = {0};
    redlock_client *c = client_opts(50, 0, &log);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "w:short", 600, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK); /* harmless twice */
    for (int i = 0; i < 20; i++) { /* 2 s, over three ttls */
        usleep(100 * 1000);
        assert_int_equal(redlock_held(l), 1);
        assert_true(redlock_validity_ms(l) > 0);
    }
    char *v = rt_get(&srv, "w:short");
    assert_string_equal(v, redlock_token(l));
    free(v);
    assert_true(rt_pttl(&srv, "w:short") > 0);
    assert_int_equal(atomic_load(&log.calls), 0);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    assert_null(rt_get(&srv, "w:short"));
    redlock_client_free(c);
}

static void keeps_lock_with_default_floor(void **state)
{
    (void)state;
    /* ttl 6 s, floor 5 s: the ttl/2 cap renews every 3 s, in time. */
    redlock_options o;
    redlock_options_init(&o);
    const char *url = srv.url;
    redlock_client *c = redlock_connect(&url, 1, &o, NULL);
    assert_non_null(c);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "w:six", 6000, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK);
    sleep(7);
    assert_int_equal(redlock_held(l), 1);
    long long pttl = rt_pttl(&srv, "w:six");
    assert_true(pttl > 1500);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    redlock_client_free(c);
}

static void notices_overwrite(void **state)
{
    (void)state;
    lost_log log = {0};
    redlock_client *c = client_opts(50, 0, &log);
    redlock_lock *l;
    /* ttl 900: renewed every 300 ms */
    assert_int_equal(redlock_acquire(c, "w:stolen", 900, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK);
    usleep(100 * 1000);
    assert_true(rt_cmd_ok(&srv, "SET w:stolen intruder PX 60000"));
    int64_t took = wait_lost(l, 3000);
    assert_int_equal(redlock_held(l), 0);
    assert_true(took < 300 + 700); /* one interval, and some slack */
    assert_int_equal(redlock_validity_ms(l), 0);
    usleep(700 * 1000); /* more intervals: still a single call */
    assert_int_equal(atomic_load(&log.calls), 1);
    assert_ptr_equal(log.last, l);
    assert_string_equal(log.key, "w:stolen");
    assert_int_equal(redlock_release(l), REDLOCK_NOT_HELD);
    char *v = rt_get(&srv, "w:stolen");
    assert_string_equal(v, "intruder");
    free(v);
    redlock_client_free(c);
}

static void notices_delete(void **state)
{
    (void)state;
    lost_log log = {0};
    redlock_client *c = client_opts(50, 0, &log);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "w:gone", 900, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK);
    freeReplyObject(rt_cmd(&srv, "DEL w:gone"));
    wait_lost(l, 3000);
    assert_int_equal(redlock_held(l), 0);
    assert_null(rt_get(&srv, "w:gone")); /* the renewal did not recreate it */
    usleep(400 * 1000);
    assert_int_equal(atomic_load(&log.calls), 1);
    redlock_release(l);
    redlock_client_free(c);
}

static void max_hold_stops(void **state)
{
    (void)state;
    lost_log log = {0};
    redlock_client *c = client_opts(50, 1500, &log);
    redlock_lock *l;
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_acquire(c, "w:cap", 600, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK);
    usleep(1000 * 1000); /* renewed beyond the first ttl */
    assert_int_equal(redlock_held(l), 1);
    assert_true(rt_pttl(&srv, "w:cap") > 0);
    wait_lost(l, 3000);
    int64_t lost_at = rt_now_ms() - t0;
    assert_int_equal(redlock_held(l), 0);
    /* never held past the cap, and not given up long before it */
    assert_true(lost_at <= 1500 + 300);
    assert_true(lost_at >= 1500 - 600 - 100);
    usleep(200 * 1000);
    assert_int_equal(rt_pttl(&srv, "w:cap"), -2); /* expired in Redis too */
    assert_int_equal(atomic_load(&log.calls), 1);
    redlock_release(l);
    redlock_client_free(c);
}

static void io_failure_loses_at_validity_end(void **state)
{
    (void)state;
    lost_log log = {0};
    redlock_client *c = client_opts(50, 0, &log);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "w:stall", 1200, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK);
    int64_t t0 = rt_now_ms();
    assert_int_equal(rt_server_pause(&srv), 0);
    wait_lost(l, 4000);
    int64_t took = rt_now_ms() - t0;
    assert_int_equal(rt_server_resume(&srv), 0);
    assert_int_equal(redlock_held(l), 0);
    /* retried until the validity ran out, not given up at the first error */
    assert_true(took >= 500);
    assert_true(took < 1200 + 1000);
    assert_int_equal(atomic_load(&log.calls), 1);
    redlock_release(l);
    redlock_client_free(c);
}

static void many_locks(void **state)
{
    (void)state;
    enum { N = 300 };
    lost_log log = {0};
    redlock_client *c = client_opts(50, 0, &log);
    redlock_lock *l[N];
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "w:many:%d", i);
        assert_int_equal(redlock_acquire(c, key, 600, 0, &l[i]), REDLOCK_OK);
        assert_int_equal(redlock_keepalive(l[i]), REDLOCK_OK);
    }
    usleep(1500 * 1000);
    for (int i = 0; i < N; i++) {
        assert_int_equal(redlock_held(l[i]), 1);
        snprintf(key, sizeof key, "w:many:%d", i);
        assert_true(rt_pttl(&srv, key) > 0);
    }
    /* give half back one by one while the watchdog works on the rest */
    for (int i = 0; i < N; i += 2)
        assert_int_equal(redlock_release(l[i]), REDLOCK_OK);
    usleep(700 * 1000);
    for (int i = 1; i < N; i += 2)
        assert_int_equal(redlock_held(l[i]), 1);
    assert_int_equal(atomic_load(&log.calls), 0);
    redlock_client_free(c); /* releases the other half */
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "w:many:%d", i);
        assert_int_equal(rt_pttl(&srv, key), -2);
    }
}

static void late_keepalive(void **state)
{
    (void)state;
    /* Handed to the watchdog with less validity left than one interval
     * (ttl 6 s, default floor: interval 3 s, but 1.5 s left): renewed in
     * time, not found expired at its first renewal. */
    lost_log log = {0};
    redlock_client *c = client_opts(5000, 0, &log);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "w:late", 6000, 0, &l), REDLOCK_OK);
    usleep(4500 * 1000);
    assert_true(redlock_validity_ms(l) < 1600);
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK);
    usleep(2500 * 1000); /* past the original expiry */
    assert_int_equal(redlock_held(l), 1);
    assert_true(rt_pttl(&srv, "w:late") > 1000);
    assert_int_equal(atomic_load(&log.calls), 0);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    redlock_client_free(c);
}

static void detach_stops_renewal(void **state)
{
    (void)state;
    redlock_client *c = client_opts(50, 0, NULL);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "w:detach", 600, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK);
    usleep(300 * 1000);
    redlock_detach(l);
    /* no longer renewed: it expires on its own within one ttl */
    usleep(900 * 1000);
    assert_int_equal(rt_pttl(&srv, "w:detach"), -2);
    redlock_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(keeps_short_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(keeps_lock_with_default_floor, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(notices_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(notices_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(max_hold_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(io_failure_loses_at_validity_end,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(many_locks, setup, teardown),
        cmocka_unit_test_setup_teardown(late_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(detach_stops_renewal, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
