/* Acquire, release, extend, adopt, inspect, waiting, fencing and bad input,
 * against a real redis-server on a free loopback port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"
#include "redis_server.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static rt_server srv;

static redlock_client *client_with(const redlock_options *o)
{
    const char *url = srv.url;
    redlock_status st;
    redlock_client *c = redlock_connect(&url, 1, o, &st);
    if (!c)
        fail_msg("connect: %s", redlock_last_error());
    assert_int_equal(st, REDLOCK_OK);
    return c;
}

static redlock_client *client(void) { return client_with(NULL); }

static void del(const char *key)
{
    redisReply *r = rt_cmd(&srv, "DEL %s", key);
    assert_non_null(r);
    freeReplyObject(r);
}

static int group_setup(void **state)
{
    (void)state;
    return rt_server_start(&srv, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    rt_server_stop(&srv);
    return 0;
}

static void try_then_busy(void **state)
{
    (void)state;
    redlock_client *a = client(), *b = client();
    redlock_lock *la, *lb = (redlock_lock *)&lb;
    assert_int_equal(redlock_acquire(a, "t:busy", 10000, 0, &la), REDLOCK_OK);
    assert_int_equal(redlock_acquire(b, "t:busy", 10000, 0, &lb), REDLOCK_BUSY);
    assert_null(lb);
    assert_non_null(strstr(redlock_last_error(), "t:busy"));
    /* the loser left nothing behind: the key still holds a's token */
    char *v = rt_get(&srv, "t:busy");
    assert_string_equal(v, redlock_token(la));
    free(v);
    assert_int_equal(redlock_release(la), REDLOCK_OK);
    assert_int_equal(redlock_acquire(b, "t:busy", 10000, 0, &lb), REDLOCK_OK);
    assert_int_equal(redlock_release(lb), REDLOCK_OK);
    redlock_client_free(a);
    redlock_client_free(b);
}

static void token_and_pttl(void **state)
{
    (void)state;
    redlock_options ho;
    redlock_options_init(&ho);
    ho.holder_info = 1;
    const char *hurl = srv.url;
    redlock_client *c = redlock_connect(&hurl, 1, &ho, NULL);
    assert_non_null(c);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "t:tok", 10000, 0, &l), REDLOCK_OK);
    const char *tok = redlock_token(l);
    assert_true(tok[8] == '-' && tok[13] == '-' && tok[14] == '4');
    /* who took it: "<uuid>;host=<name>;pid=<pid>;since=<ms>" (holder_info) */
    char host[80], want[160];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    long pid = 0;
    long long since = 0;
    char got_host[80] = "";
    assert_int_equal(sscanf(tok + 36, ";host=%79[^;];pid=%ld;since=%lld",
                            got_host, &pid, &since), 3);
    assert_int_equal(pid, (long)getpid());
    snprintf(want, sizeof want, "%.64s", host);
    for (char *p = want; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '.' || *p == '_'))
            *p = '_';
    assert_string_equal(got_host, want);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    assert_true(llabs((long long)now.tv_sec * 1000 - since) < 60000);
    /* and a bare UUID without it (the default) */
    redlock_options o;
    redlock_options_init(&o);
    const char *url = srv.url;
    redlock_client *bare = redlock_connect(&url, 1, &o, NULL);
    assert_non_null(bare);
    redlock_lock *lb;
    assert_int_equal(redlock_acquire(bare, "t:tok:bare", 10000, 0, &lb),
                     REDLOCK_OK);
    assert_int_equal(strlen(redlock_token(lb)), 36);
    redlock_release(lb);
    redlock_client_free(bare);
    assert_string_equal(redlock_key(l), "t:tok");
    char *v = rt_get(&srv, "t:tok");
    assert_string_equal(v, tok);
    free(v);
    long long pttl = rt_pttl(&srv, "t:tok");
    assert_true(pttl > 9000 && pttl <= 10000);
    int64_t val = redlock_validity_ms(l);
    assert_true(val > 9000 && val <= 10000 - 102);
    assert_int_equal(redlock_held(l), 1);
    assert_int_equal(redlock_fence(l), 0);

    /* two acquires never share a token */
    redlock_lock *l2;
    assert_int_equal(redlock_acquire(c, "t:tok2", 10000, 0, &l2), REDLOCK_OK);
    assert_string_not_equal(redlock_token(l2), tok);
    redlock_release(l2);
    redlock_release(l);
    redlock_client_free(c);
}

static void release_frees(void **state)
{
    (void)state;
    redlock_client *c = client();
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "t:rel", 10000, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    assert_null(rt_get(&srv, "t:rel"));
    assert_int_equal(rt_pttl(&srv, "t:rel"), -2);
    redlock_client_free(c);
}

static void stale_release(void **state)
{
    (void)state;
    redlock_client *a = client(), *b = client();
    redlock_lock *la, *lb;
    assert_int_equal(redlock_acquire(a, "t:stale", 100, 0, &la), REDLOCK_OK);
    usleep(250 * 1000);
    assert_int_equal(redlock_validity_ms(la), 0);
    assert_int_equal(redlock_acquire(b, "t:stale", 10000, 0, &lb), REDLOCK_OK);
    assert_int_equal(redlock_release(la), REDLOCK_NOT_HELD);
    char *v = rt_get(&srv, "t:stale");
    assert_string_equal(v, redlock_token(lb));
    free(v);
    /* a stale extend does not touch the new holder either */
    assert_int_equal(redlock_release(lb), REDLOCK_OK);
    redlock_client_free(a);
    redlock_client_free(b);
}

static void extend_works(void **state)
{
    (void)state;
    redlock_client *c = client();
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "t:ext", 1000, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_extend(l, 20000), REDLOCK_OK);
    long long pttl = rt_pttl(&srv, "t:ext");
    assert_true(pttl > 19000 && pttl <= 20000);
    assert_true(redlock_validity_ms(l) > 19000);
    assert_int_equal(redlock_extend(l, 0), REDLOCK_INVALID);
    assert_int_equal(redlock_extend(l, REDLOCK_TTL_MAX + 1), REDLOCK_INVALID);
    assert_int_equal(redlock_held(l), 1); /* bad arguments lose nothing */
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    redlock_client_free(c);
}

static void extend_shorter_unanswered(void **state)
{
    (void)state;
    /* An extend to a shorter ttl whose answer never came may still have
     * been applied: validity must not count on the old, longer ttl. */
    redlock_options o;
    redlock_options_init(&o);
    o.io_timeout_ms = 300;
    redlock_client *c = client_with(&o);
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "t:shrink", 20000, 0, &l), REDLOCK_OK);
    assert_true(redlock_validity_ms(l) > 19000);
    assert_int_equal(rt_server_pause(&srv), 0);
    assert_int_equal(redlock_extend(l, 2000), REDLOCK_IO);
    assert_int_equal(rt_server_resume(&srv), 0);
    assert_true(redlock_validity_ms(l) <= 2000);
    assert_int_equal(redlock_held(l), 1); /* not known lost */
    usleep(100 * 1000);
    long long pttl = rt_pttl(&srv, "t:shrink");
    assert_true(pttl > 0 && pttl <= 2000); /* the server did apply it */
    assert_true(redlock_validity_ms(l) <= pttl);
    redlock_release(l);
    redlock_client_free(c);
}

static void extend_deleted(void **state)
{
    (void)state;
    redlock_client *c = client();
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "t:extdel", 10000, 0, &l), REDLOCK_OK);
    del("t:extdel");
    assert_int_equal(redlock_extend(l, 10000), REDLOCK_NOT_HELD);
    assert_null(rt_get(&srv, "t:extdel")); /* not recreated */
    assert_int_equal(redlock_held(l), 0);
    assert_int_equal(redlock_validity_ms(l), 0);
    assert_int_equal(redlock_keepalive(l), REDLOCK_NOT_HELD);
    assert_int_equal(redlock_release(l), REDLOCK_NOT_HELD);
    redlock_client_free(c);
}

static void adopt_inspect_detach(void **state)
{
    (void)state;
    redlock_client *a = client(), *b = client();
    redlock_lock *l, *adopted;
    char tok[64], buf[64];
    int64_t pttl = 0;

    assert_int_equal(redlock_inspect(b, "t:adopt", buf, sizeof buf, &pttl),
                     REDLOCK_NOT_HELD);
    assert_int_equal(redlock_acquire(a, "t:adopt", 10000, 0, &l), REDLOCK_OK);
    strcpy(tok, redlock_token(l));
    assert_int_equal(redlock_inspect(b, "t:adopt", buf, sizeof buf, &pttl),
                     REDLOCK_OK);
    assert_string_equal(buf, tok);
    assert_true(pttl > 9000 && pttl <= 10000);
    /* too small a buffer: INVALID, nothing copied; NULL buffer: ttl only */
    buf[0] = 'x';
    assert_int_equal(redlock_inspect(b, "t:adopt", buf, 36, NULL),
                     REDLOCK_INVALID);
    assert_int_equal(buf[0], 'x');
    assert_int_equal(redlock_inspect(b, "t:adopt", NULL, 0, &pttl), REDLOCK_OK);
    assert_int_equal(redlock_inspect(b, "t:adopt", NULL, 5, &pttl),
                     REDLOCK_INVALID);

    redlock_detach(l); /* the key stays */
    char *v = rt_get(&srv, "t:adopt");
    assert_string_equal(v, tok);
    free(v);

    assert_int_equal(redlock_adopt(b, "t:adopt", "not-the-token", &adopted),
                     REDLOCK_NOT_HELD);
    assert_null(adopted);
    assert_int_equal(redlock_adopt(b, "t:adopt", tok, &adopted), REDLOCK_OK);
    assert_string_equal(redlock_token(adopted), tok);
    assert_true(redlock_validity_ms(adopted) > 8000 &&
                redlock_validity_ms(adopted) <= 10000);
    assert_int_equal(redlock_extend(adopted, 30000), REDLOCK_OK);
    assert_true(rt_pttl(&srv, "t:adopt") > 29000);
    assert_int_equal(redlock_release(adopted), REDLOCK_OK);
    assert_null(rt_get(&srv, "t:adopt"));
    assert_int_equal(redlock_adopt(b, "t:adopt", tok, &adopted),
                     REDLOCK_NOT_HELD);
    redlock_client_free(a);
    redlock_client_free(b);
}

static void script_flush(void **state)
{
    (void)state;
    /* The digests we send as EVALSHA are those the server computes. */
    for (size_t i = 0; i < redlock__nscripts; i++) {
        redisReply *r = rt_cmd(&srv, "SCRIPT LOAD %s", redlock__scripts[i]->body);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_string_equal(r->str, redlock__scripts[i]->sha);
        freeReplyObject(r);
    }
    redlock_client *c = client();
    redlock_lock *l;
    assert_int_equal(redlock_acquire(c, "t:flush", 10000, 0, &l), REDLOCK_OK);
    assert_true(rt_cmd_ok(&srv, "SCRIPT FLUSH"));
    assert_int_equal(redlock_extend(l, 20000), REDLOCK_OK);
    assert_true(rt_pttl(&srv, "t:flush") > 19000);
    assert_true(rt_cmd_ok(&srv, "SCRIPT FLUSH"));
    char buf[64];
    assert_int_equal(redlock_inspect(c, "t:flush", buf, sizeof buf, NULL),
                     REDLOCK_OK);
    assert_true(rt_cmd_ok(&srv, "SCRIPT FLUSH"));
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    assert_null(rt_get(&srv, "t:flush"));
    redlock_client_free(c);
}

static void wait_runs_out(void **state)
{
    (void)state;
    redlock_client *a = client(), *b = client();
    redlock_lock *la, *lb;
    assert_int_equal(redlock_acquire(a, "t:wait", 10000, 0, &la), REDLOCK_OK);
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_acquire(b, "t:wait", 10000, 500, &lb), REDLOCK_BUSY);
    int64_t took = rt_now_ms() - t0;
    assert_true(took >= 490 && took < 2000);
    assert_non_null(strstr(redlock_last_error(), "500 ms"));
    redlock_release(la);
    redlock_client_free(a);
    redlock_client_free(b);
}

struct later {
    redlock_lock *lock;
    int delay_ms;
};

static void *release_later(void *arg)
{
    struct later *x = arg;
    usleep((useconds_t)x->delay_ms * 1000);
    redlock_release(x->lock);
    return NULL;
}

static void wait_gets_released(void **state)
{
    (void)state;
    redlock_client *a = client(), *b = client();
    redlock_lock *la, *lb;
    assert_int_equal(redlock_acquire(a, "t:handoff", 10000, 0, &la), REDLOCK_OK);
    struct later x = {la, 300};
    pthread_t t;
    pthread_create(&t, NULL, release_later, &x);
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_acquire(b, "t:handoff", 10000, 3000, &lb),
                     REDLOCK_OK);
    int64_t took = rt_now_ms() - t0;
    pthread_join(t, NULL);
    assert_true(took >= 250 && took < 2500);
    char *v = rt_get(&srv, "t:handoff");
    assert_string_equal(v, redlock_token(lb));
    free(v);
    redlock_release(lb);

    /* a holder that vanished: the key expires and the waiter gets it */
    assert_int_equal(redlock_acquire(a, "t:handoff", 300, 0, &la), REDLOCK_OK);
    redlock_detach(la);
    assert_int_equal(redlock_acquire(b, "t:handoff", 10000, REDLOCK_WAIT_FOREVER,
                                     &lb),
                     REDLOCK_OK);
    redlock_release(lb);
    redlock_client_free(a);
    redlock_client_free(b);
}

static void bad_input(void **state)
{
    (void)state;
    redlock_client *c = client();
    redlock_lock *l = (redlock_lock *)&l;
#define INVALID(call, needle)                                                  \
    do {                                                                       \
        assert_int_equal(call, REDLOCK_INVALID);                               \
        assert_non_null(strstr(redlock_last_error(), needle));                 \
    } while (0)
    INVALID(redlock_acquire(c, NULL, 1000, 0, &l), "key");
    assert_null(l);
    INVALID(redlock_acquire(c, "", 1000, 0, &l), "empty");
    INVALID(redlock_acquire(c, "k", 0, 0, &l), "ttl");
    INVALID(redlock_acquire(c, "k", -1, 0, &l), "ttl");
    INVALID(redlock_acquire(c, "k", REDLOCK_TTL_MAX + 1, 0, &l), "ttl");
    INVALID(redlock_acquire(c, "k", INT64_MAX, 0, &l), "ttl");
    INVALID(redlock_acquire(c, "k", 1000, -2, &l), "wait");
    INVALID(redlock_acquire(c, "k", 1000, INT64_MIN, &l), "wait");
    INVALID(redlock_acquire(c, "k", 1000, 0, NULL), "lock");
    INVALID(redlock_acquire_as(c, "k", NULL, 1000, 0, &l), "token");
    INVALID(redlock_acquire_as(c, "k", "", 1000, 0, &l), "token");
    INVALID(redlock_adopt(c, "k", NULL, &l), "token");
    INVALID(redlock_adopt(c, "", "t", &l), "empty");
    INVALID(redlock_adopt(c, "k", "t", NULL), "lock");
    INVALID(redlock_inspect(c, NULL, NULL, 0, NULL), "key");
    char *long_token = malloc(REDLOCK_TOKEN_MAX + 2);
    assert_non_null(long_token);
    memset(long_token, 't', REDLOCK_TOKEN_MAX + 1);
    long_token[REDLOCK_TOKEN_MAX + 1] = '\0';
    INVALID(redlock_acquire_as(c, "k", long_token, 1000, 0, &l),
            "REDLOCK_TOKEN_MAX");
    INVALID(redlock_adopt(c, "k", long_token, &l), "REDLOCK_TOKEN_MAX");
    long_token[REDLOCK_TOKEN_MAX] = '\0'; /* the longest allowed */
    assert_int_equal(redlock_acquire_as(c, "t:longtok", long_token, 10000, 0, &l),
                     REDLOCK_OK);
    char *held = rt_get(&srv, "t:longtok");
    assert_int_equal(strlen(held), REDLOCK_TOKEN_MAX);
    free(held);
    assert_int_equal(redlock_inspect(c, "t:longtok", long_token,
                                     REDLOCK_TOKEN_MAX + 1, NULL),
                     REDLOCK_OK);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    free(long_token);
    INVALID(redlock_adopt(c, "k", "redlock:handoff", &l), "reserved");
#undef INVALID
    /* nothing was written by any of them */
    assert_null(rt_get(&srv, "k"));

    /* the extremes of the range are accepted */
    assert_int_equal(redlock_acquire(c, "t:max", REDLOCK_TTL_MAX, 0, &l),
                     REDLOCK_OK);
    assert_true(rt_pttl(&srv, "t:max") > (REDLOCK_TTL_MAX - 60000));
    redlock_release(l);
    /* 1..3 ms: no validity is left after the drift allowance (3 ms at
     * the default 0.01), so they are refused before anything is sent;
     * 4 ms is the smallest usable ttl. */
    for (int64_t ttl = 1; ttl <= 3; ttl++) {
        assert_int_equal(redlock_acquire(c, "t:min", ttl, 0, &l),
                         REDLOCK_INVALID);
        assert_non_null(strstr(redlock_last_error(), "smallest usable ttl is 4"));
        assert_null(rt_get(&srv, "t:min"));
    }
    /* (4 ms leaves 1 ms of validity: a slow run, under valgrind, may take
     * longer than that, which is IO; never INVALID) */
    redlock_status st4 = redlock_acquire(c, "t:min", 4, 0, &l);
    if (st4 != REDLOCK_OK)
        assert_non_null(strstr(redlock_last_error(), "longer than the validity"));
    assert_true(st4 == REDLOCK_OK || st4 == REDLOCK_IO);
    redlock_release(l);
    /* the longest waits do not overflow the deadline arithmetic */
    assert_int_equal(redlock_acquire(c, "t:long", 1000, INT64_MAX, &l),
                     REDLOCK_OK);
    redlock_release(l);
    assert_int_equal(redlock_acquire(c, "t:long", 1000, INT64_MAX / 1000, &l),
                     REDLOCK_OK);
    redlock_release(l);
    redlock_client_free(c);
}

static void odd_keys(void **state)
{
    (void)state;
    /* Keys are arguments, never formats: anything but NUL is fine. */
    const char *keys[] = {"with space", "%s%n%d", "line\r\nbreak", "ключ",
                          "*3\r\n$3\r\nDEL"};
    redlock_client *c = client();
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        redlock_lock *l;
        assert_int_equal(redlock_acquire(c, keys[i], 10000, 0, &l), REDLOCK_OK);
        char *v = rt_get(&srv, keys[i]);
        assert_string_equal(v, redlock_token(l));
        free(v);
        assert_string_equal(redlock_key(l), keys[i]);
        assert_int_equal(redlock_release(l), REDLOCK_OK);
        assert_null(rt_get(&srv, keys[i]));
    }
    redlock_client_free(c);
}

static void acquire_as_token(void **state)
{
    (void)state;
    redlock_client *c = client();
    redlock_lock *l, *l2;
    assert_int_equal(redlock_acquire_as(c, "t:as", "job-42@host", 10000, 0, &l),
                     REDLOCK_OK);
    assert_string_equal(redlock_token(l), "job-42@host");
    char *v = rt_get(&srv, "t:as");
    assert_string_equal(v, "job-42@host");
    free(v);
    assert_int_equal(redlock_acquire_as(c, "t:as", "other", 10000, 0, &l2),
                     REDLOCK_BUSY);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    redlock_client_free(c);
}

static void wrong_type(void **state)
{
    (void)state;
    redlock_client *c = client();
    redlock_lock *l;
    redisReply *r = rt_cmd(&srv, "RPUSH t:list x");
    freeReplyObject(r);
    assert_int_equal(redlock_acquire(c, "t:list", 1000, 0, &l), REDLOCK_SERVER);
    assert_non_null(strstr(redlock_last_error(), "list"));
    /* a wait does not wait for a key that is not a lock */
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_acquire(c, "t:list", 1000, 5000, &l),
                     REDLOCK_SERVER);
    assert_true(rt_now_ms() - t0 < 2000);
    assert_int_equal(redlock_inspect(c, "t:list", NULL, 0, NULL),
                     REDLOCK_SERVER);
    assert_non_null(strstr(redlock_last_error(), "WRONGTYPE"));
    assert_int_equal(redlock_adopt(c, "t:list", "t", &l), REDLOCK_SERVER);

    /* a lock whose key was replaced by another type */
    assert_int_equal(redlock_acquire(c, "t:morph", 10000, 0, &l), REDLOCK_OK);
    del("t:morph");
    freeReplyObject(rt_cmd(&srv, "HSET t:morph f v"));
    assert_int_equal(redlock_extend(l, 10000), REDLOCK_SERVER);
    assert_int_equal(redlock_release(l), REDLOCK_SERVER);
    assert_int_equal(rt_pttl(&srv, "t:morph"), -1); /* untouched */
    del("t:list");
    del("t:morph");
    redlock_client_free(c);
}

static void fencing(void **state)
{
    (void)state;
    redlock_options o;
    redlock_options_init(&o);
    o.fencing = 1;
    redlock_client *a = client_with(&o), *b = client_with(&o);
    int64_t last = 0;
    for (int i = 0; i < 6; i++) {
        redlock_lock *l;
        assert_int_equal(redlock_acquire(i % 2 ? a : b, "t:fence", 10000, 0, &l),
                         REDLOCK_OK);
        assert_true(redlock_fence(l) > last);
        last = redlock_fence(l);
        /* a refused acquire does not move the counter */
        redlock_lock *l2;
        assert_int_equal(redlock_acquire(i % 2 ? b : a, "t:fence", 10000, 0, &l2),
                         REDLOCK_BUSY);
        assert_int_equal(redlock_release(l), REDLOCK_OK);
    }
    char *v = rt_get(&srv, "t:fence:fence");
    assert_non_null(v);
    assert_int_equal(atoll(v), last);
    free(v);
    redlock_client_free(a);
    redlock_client_free(b);
}

static void client_free_releases(void **state)
{
    (void)state;
    redlock_client *c = client();
    redlock_lock *l[5];
    char key[32];
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "t:free:%d", i);
        assert_int_equal(redlock_acquire(c, key, 30000, 0, &l[i]), REDLOCK_OK);
    }
    redlock_keepalive(l[0]);
    redlock_client_free(c); /* releases all five and frees the handles */
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "t:free:%d", i);
        assert_null(rt_get(&srv, key));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(try_then_busy),
        cmocka_unit_test(token_and_pttl),
        cmocka_unit_test(release_frees),
        cmocka_unit_test(stale_release),
        cmocka_unit_test(extend_works),
        cmocka_unit_test(extend_shorter_unanswered),
        cmocka_unit_test(extend_deleted),
        cmocka_unit_test(adopt_inspect_detach),
        cmocka_unit_test(script_flush),
        cmocka_unit_test(wait_runs_out),
        cmocka_unit_test(wait_gets_released),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(odd_keys),
        cmocka_unit_test(acquire_as_token),
        cmocka_unit_test(wrong_type),
        cmocka_unit_test(fencing),
        cmocka_unit_test(client_free_releases),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
