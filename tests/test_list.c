/* redlock_list: the locks held now, with who took them, on one node and
 * on a quorum of three, against real redis-servers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "redis_server.h"
#include "redlock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NSRV 3
static rt_server srv[NSRV];

static redlock_client *client(int n, int info)
{
    redlock_options o;
    redlock_options_init(&o);
    o.holder_info = info;
    o.connect_timeout_ms = 500;
    o.io_timeout_ms = 1000;
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

struct found {
    int n, with_host;
    char keys[16][64];
    int stop_after;
};

static int collect(const redlock_holder *h, void *arg)
{
    struct found *f = arg;
    if (f->n < 16)
        snprintf(f->keys[f->n], sizeof f->keys[0], "%s", h->key);
    f->n++;
    assert_non_null(h->token);
    assert_true(h->pttl_ms > 0);
    if (h->host) {
        f->with_host++;
        assert_int_equal(h->pid, (long)getpid());
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        assert_true(llabs((long long)now.tv_sec * 1000 - h->since_ms) < 60000);
    }
    return f->stop_after && f->n >= f->stop_after;
}

static int has(const struct found *f, const char *key)
{
    for (int i = 0; i < f->n && i < 16; i++)
        if (strcmp(f->keys[i], key) == 0)
            return 1;
    return 0;
}

static void one_node(void **state)
{
    (void)state;
    redlock_client *c = client(1, 1), *bare = client(1, 0);
    redlock_lock *a, *b, *p;
    assert_int_equal(redlock_acquire(c, "ls:a", 30000, 0, &a), REDLOCK_OK);
    assert_int_equal(redlock_acquire(c, "ls:b", 30000, 0, &b), REDLOCK_OK);
    assert_int_equal(redlock_acquire_n(c, "ls:pool", 3, 30000, 0, &p),
                     REDLOCK_OK);
    redlock_lock *x;
    assert_int_equal(redlock_acquire(bare, "ls:bare", 30000, 0, &x),
                     REDLOCK_OK);
    assert_true(rt_cmd_ok(&srv[0], "SET ls:cache v"));            /* no ttl */
    assert_true(rt_cmd_ok(&srv[0], "SET ls:plain tok PX 30000")); /* a lock */
    assert_true(rt_cmd_ok(&srv[0], "SET other:a x PX 30000"));

    struct found f = {0};
    assert_int_equal(redlock_list(c, "ls:*", 0, collect, &f), REDLOCK_OK);
    assert_int_equal(f.n, 3); /* recorded holders only */
    assert_int_equal(f.with_host, 3);
    assert_true(has(&f, "ls:a") && has(&f, "ls:b"));
    assert_true(has(&f, redlock_key(p)));

    memset(&f, 0, sizeof f);
    assert_int_equal(redlock_list(c, "ls:*", REDLOCK_LIST_ALL, collect, &f),
                     REDLOCK_OK);
    assert_int_equal(f.n, 5); /* + ls:bare, ls:plain; never ls:cache */
    assert_true(has(&f, "ls:bare") && has(&f, "ls:plain"));
    assert_false(has(&f, "ls:cache"));

    memset(&f, 0, sizeof f);
    f.stop_after = 1;
    assert_int_equal(redlock_list(c, NULL, REDLOCK_LIST_ALL, collect, &f),
                     REDLOCK_OK);
    assert_int_equal(f.n, 1);

    assert_int_equal(redlock_list(NULL, NULL, 0, collect, &f),
                     REDLOCK_INVALID);
    assert_int_equal(redlock_list(c, NULL, 0, NULL, &f), REDLOCK_INVALID);
    assert_int_equal(redlock_list(c, NULL, 4, collect, &f), REDLOCK_INVALID);
    redlock_release(a);
    redlock_release(b);
    redlock_release(p);
    redlock_release(x);
    redlock_client_free(c);
    redlock_client_free(bare);
}

static void quorum_of_three(void **state)
{
    (void)state;
    redlock_client *c = client(3, 1);
    redlock_lock *a;
    assert_int_equal(redlock_acquire(c, "lq:a", 30000, 0, &a), REDLOCK_OK);
    /* a value on one node of three is no lock */
    char v[160];
    snprintf(v, sizeof v, "%.36s;host=h;pid=1;since=1", redlock_token(a));
    assert_true(rt_cmd_ok(&srv[1], "SET lq:minority %s PX 30000", v));
    struct found f = {0};
    assert_int_equal(redlock_list(c, "lq:*", 0, collect, &f), REDLOCK_OK);
    assert_int_equal(f.n, 1);
    assert_string_equal(f.keys[0], "lq:a");
    /* one node down: a quorum still answers */
    rt_server_kill(&srv[2]);
    memset(&f, 0, sizeof f);
    assert_int_equal(redlock_list(c, "lq:*", 0, collect, &f), REDLOCK_OK);
    assert_int_equal(f.n, 1);
    rt_server_kill(&srv[1]);
    assert_int_equal(redlock_list(c, "lq:*", 0, collect, &f), REDLOCK_IO);
    redlock_detach(a);
    redlock_client_free(c);
}

static void big_values_are_walked_past(void **state)
{
    (void)state;
    /* A 2 MB value is no lock: list walks past it, inspect says what it
     * is (not "unreachable"). */
    redlock_client *c = client(1, 1);
    size_t big = 2000000;
    char *v = malloc(big + 1);
    memset(v, 'x', big);
    v[big] = '\0';
    redisReply *r = rt_cmd(&srv[0], "SET lb:big %s PX 30000", v);
    freeReplyObject(r);
    free(v);
    redlock_lock *a;
    assert_int_equal(redlock_acquire(c, "lb:a", 30000, 0, &a), REDLOCK_OK);
    struct found f = {0};
    assert_int_equal(redlock_list(c, "lb:*", REDLOCK_LIST_ALL, collect, &f),
                     REDLOCK_OK);
    assert_int_equal(f.n, 1);
    assert_string_equal(f.keys[0], "lb:a");
    char tok[256];
    assert_int_equal(redlock_inspect(c, "lb:big", tok, sizeof tok, NULL),
                     REDLOCK_SERVER);
    assert_non_null(strstr(redlock_last_error(), "no token"));
    redlock_release(a);
    redlock_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_node),
        cmocka_unit_test(big_values_are_walked_past),
        cmocka_unit_test(quorum_of_three),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
