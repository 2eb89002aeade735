/* Integration: threads.  One client shared by many threads; mutual
 * exclusion between clients and threads contending for one key (checked
 * with an occupancy counter in Redis and another in the process); the
 * watchdog working while several threads hand it locks, poll
 * redlock_held()/redlock_validity_ms() and release locks that other
 * threads acquired.  Meant to be run under ThreadSanitizer too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "redis_server.h"
#include "redlock.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MARGIN_MS 1500

static rt_server S;

/* ---- helpers ---------------------------------------------------------------- */

/* Failures seen by worker threads (cmocka's asserts belong to the main
 * thread): counted, the first one kept for the report. */
static atomic_int errors;
static pthread_mutex_t err_mu = PTHREAD_MUTEX_INITIALIZER;
static char first_error[512];

static void note_error(int line, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&err_mu);
    if (atomic_fetch_add(&errors, 1) == 0)
        snprintf(first_error, sizeof first_error, "line %d: %s", line, msg);
    pthread_mutex_unlock(&err_mu);
}

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond))                                                           \
            note_error(__LINE__, __VA_ARGS__);                                 \
    } while (0)

static void reset_errors(void)
{
    atomic_store(&errors, 0);
    first_error[0] = '\0';
}

static void assert_no_errors(void)
{
    int n = atomic_load(&errors);
    if (n != 0)
        print_error("%d failure(s) in threads; first: %s\n", n, first_error);
    assert_int_equal(n, 0);
}

/* A hiredis connection of a thread's own, to look at Redis directly. */
static redisContext *own_conn(void)
{
    struct timeval tv = {2, 0};
    redisContext *ctx = redisConnectWithTimeout("127.0.0.1", S.port, tv);
    if (ctx == NULL || ctx->err) {
        note_error(__LINE__, "redisConnect: %s", ctx ? ctx->errstr : "NULL");
        if (ctx)
            redisFree(ctx);
        return NULL;
    }
    redisSetTimeout(ctx, tv);
    return ctx;
}

/* GET key over ctx: 1 when it equals want (want NULL: no key), else 0. */
static int key_is(redisContext *ctx, const char *key, const char *want)
{
    redisReply *r = redisCommand(ctx, "GET %s", key);
    if (r == NULL)
        return 0;
    int ok = want == NULL ? r->type == REDIS_REPLY_NIL
                          : r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0;
    freeReplyObject(r);
    return ok;
}

static long long count_keys(const char *pattern)
{
    redisReply *r = rt_cmd(&S, "KEYS %s", pattern);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    long long n = (long long)r->elements;
    freeReplyObject(r);
    return n;
}

static redlock_client *make_client(const redlock_options *o)
{
    redlock_status st = REDLOCK_NOMEM;
    redlock_client *c = redlock_connect((const char *[]){S.url}, 1, o, &st);
    if (c == NULL)
        print_error("connect: %s: %s\n", redlock_strerror(st), redlock_last_error());
    assert_non_null(c);
    return c;
}

static void base_options(redlock_options *o)
{
    redlock_options_init(o);
    o->connect_timeout_ms = 1000;
    o->io_timeout_ms = 1000;
    o->retry_delay_ms = 10;
}

static int group_setup(void **state)
{
    (void)state;
    return rt_server_start(&S, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    rt_server_stop(&S);
    return 0;
}

static int flush(void **state)
{
    (void)state;
    reset_errors();
    return rt_cmd_ok(&S, "FLUSHALL") ? 0 : -1;
}

/* ---- 1. one client, many threads, distinct keys ------------------------- */

#define SHARED_THREADS 8
#define SHARED_ROUNDS 200

typedef struct shared_arg {
    redlock_client *c;
    int id;
    int ok;
} shared_arg;

static void *shared_worker(void *p)
{
    shared_arg *a = p;
    redisContext *ctx = own_conn();
    if (ctx == NULL)
        return NULL;
    char key[64];
    for (int i = 0; i < SHARED_ROUNDS; i++) {
        snprintf(key, sizeof key, "shared:%d:%d", a->id, i);
        redlock_lock *l = NULL;
        redlock_status st = redlock_acquire(a->c, key, 10000, 0, &l);
        CHECK(st == REDLOCK_OK, "acquire %s: %s: %s", key, redlock_strerror(st),
              redlock_last_error());
        if (st != REDLOCK_OK)
            continue;
        CHECK(strcmp(redlock_key(l), key) == 0, "key of handle");
        /* the first and every 10th: look at Redis */
        if (i % 10 == 0)
            CHECK(key_is(ctx, key, redlock_token(l)), "%s not held in Redis", key);
        if (i % 3 == 0) {
            st = redlock_extend(l, 12000);
            CHECK(st == REDLOCK_OK, "extend %s: %s", key, redlock_last_error());
        }
        st = redlock_release(l);
        CHECK(st == REDLOCK_OK, "release %s: %s: %s", key, redlock_strerror(st),
              redlock_last_error());
        if (i % 10 == 0)
            CHECK(key_is(ctx, key, NULL), "%s left in Redis", key);
        if (st == REDLOCK_OK)
            a->ok++;
    }
    redisFree(ctx);
    return NULL;
}

static void shared_client_distinct_keys(void **state)
{
    (void)state;
    redlock_options o;
    base_options(&o);
    redlock_client *c = make_client(&o);
    pthread_t t[SHARED_THREADS];
    shared_arg a[SHARED_THREADS];
    int64_t t0 = rt_now_ms();
    for (int i = 0; i < SHARED_THREADS; i++) {
        a[i] = (shared_arg){.c = c, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, shared_worker, &a[i]), 0);
    }
    for (int i = 0; i < SHARED_THREADS; i++)
        pthread_join(t[i], NULL);
    print_message("%d threads x %d acquire/release: %lld ms\n", SHARED_THREADS,
                  SHARED_ROUNDS, (long long)(rt_now_ms() - t0));
    redlock_client_free(c);
    assert_no_errors();
    for (int i = 0; i < SHARED_THREADS; i++)
        assert_int_equal(a[i].ok, SHARED_ROUNDS);
    assert_int_equal(count_keys("shared:*"), 0);
}

/* ---- 2. mutual exclusion -------------------------------------------------- */

#define MX_CLIENTS 4
#define MX_THREADS_PER 4
#define MX_THREADS (MX_CLIENTS * MX_THREADS_PER)
#define MX_RUN_MS 2000

static atomic_int mx_inside;     /* in-process occupancy */
static atomic_int mx_max_inside; /* the most seen at once, in process */
static atomic_llong mx_max_redis; /* the most INCR returned */
static atomic_int mx_go;
static int64_t mx_end;

typedef struct mx_arg {
    redlock_client *c;
    int sections, busy;
} mx_arg;

static void atomic_max_int(atomic_int *m, int v)
{
    int cur = atomic_load(m);
    while (v > cur && !atomic_compare_exchange_weak(m, &cur, v)) {
    }
}

static void atomic_max_ll(atomic_llong *m, long long v)
{
    long long cur = atomic_load(m);
    while (v > cur && !atomic_compare_exchange_weak(m, &cur, v)) {
    }
}

static void *mx_worker(void *p)
{
    mx_arg *a = p;
    redisContext *ctx = own_conn();
    if (ctx == NULL)
        return NULL;
    while (!atomic_load(&mx_go))
        rt_sleep_ms(1);
    while (rt_now_ms() < mx_end) {
        redlock_lock *l = NULL;
        redlock_status st = redlock_acquire(a->c, "mx:lock", 2000, 5000, &l);
        if (st == REDLOCK_BUSY) {
            a->busy++;
            continue;
        }
        CHECK(st == REDLOCK_OK, "acquire: %s: %s", redlock_strerror(st),
              redlock_last_error());
        if (st != REDLOCK_OK)
            break;
        int in = atomic_fetch_add(&mx_inside, 1) + 1;
        atomic_max_int(&mx_max_inside, in);
        redisReply *r = redisCommand(ctx, "INCR mx:occupancy");
        CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER, "INCR failed");
        if (r != NULL && r->type == REDIS_REPLY_INTEGER) {
            atomic_max_ll(&mx_max_redis, r->integer);
            CHECK(r->integer == 1, "occupancy %lld inside the critical section",
                  r->integer);
        }
        if (r)
            freeReplyObject(r);
        rt_sleep_ms(1);
        r = redisCommand(ctx, "DECR mx:occupancy");
        if (r)
            freeReplyObject(r);
        atomic_fetch_sub(&mx_inside, 1);
        a->sections++;
        st = redlock_release(l);
        CHECK(st == REDLOCK_OK, "release: %s: %s", redlock_strerror(st),
              redlock_last_error());
    }
    redisFree(ctx);
    return NULL;
}

static void mutual_exclusion(void **state)
{
    (void)state;
    redlock_options o;
    base_options(&o);
    redlock_client *c[MX_CLIENTS];
    for (int i = 0; i < MX_CLIENTS; i++)
        c[i] = make_client(&o);
    atomic_store(&mx_inside, 0);
    atomic_store(&mx_max_inside, 0);
    atomic_store(&mx_max_redis, 0);
    atomic_store(&mx_go, 0);

    pthread_t t[MX_THREADS];
    mx_arg a[MX_THREADS];
    for (int i = 0; i < MX_THREADS; i++) {
        a[i] = (mx_arg){.c = c[i / MX_THREADS_PER]};
        assert_int_equal(pthread_create(&t[i], NULL, mx_worker, &a[i]), 0);
    }
    int64_t t0 = rt_now_ms();
    mx_end = t0 + MX_RUN_MS; /* published by the atomic store below */
    atomic_store(&mx_go, 1);
    for (int i = 0; i < MX_THREADS; i++)
        pthread_join(t[i], NULL);
    int64_t took = rt_now_ms() - t0;
    for (int i = 0; i < MX_CLIENTS; i++)
        redlock_client_free(c[i]);

    int total = 0, minimum = 1 << 30, busy = 0;
    for (int i = 0; i < MX_THREADS; i++) {
        total += a[i].sections;
        busy += a[i].busy;
        if (a[i].sections < minimum)
            minimum = a[i].sections;
    }
    print_message("%d threads on %d clients: %d sections in %lld ms (fewest "
                  "per thread %d, %d waits ran out), max occupancy %d / %lld\n",
                  MX_THREADS, MX_CLIENTS, total, (long long)took, minimum, busy,
                  atomic_load(&mx_max_inside), (long long)atomic_load(&mx_max_redis));
    assert_no_errors();
    assert_int_equal(atomic_load(&mx_max_inside), 1);
    assert_int_equal(atomic_load(&mx_max_redis), 1);
    assert_true(minimum >= 1);
    assert_true(took <= MX_RUN_MS + 5000 + MARGIN_MS);
    char *occ = rt_get(&S, "mx:occupancy");
    assert_non_null(occ);
    assert_string_equal(occ, "0");
    free(occ);
    /* A last release handed off to waiters that gave up just then leaves
     * a 50 ms reservation; after it nothing is left. */
    rt_sleep_ms(100);
    assert_int_equal(count_keys("mx:lock"), 0);
}

/* ---- 3. the watchdog under several threads ------------------------------- */

#define KA_THREADS 6
#define KA_TTL 1500
#define KA_PHASE_MS 2000

typedef struct ka_shared {
    redlock_client *c;
    redlock_lock *lock[KA_THREADS];
    char token[KA_THREADS][64];
    pthread_barrier_t start, held, done;
    atomic_int polling;
    long polls;
    int64_t min_validity;
    int released_ok;
} ka_shared;

typedef struct ka_arg {
    ka_shared *sh;
    int id;
} ka_arg;

static void *ka_worker(void *p)
{
    ka_arg *a = p;
    ka_shared *sh = a->sh;
    redisContext *ctx = own_conn();
    char key[32];
    snprintf(key, sizeof key, "ka:%d", a->id);

    redlock_lock *l = NULL;
    redlock_status st = redlock_acquire(sh->c, key, KA_TTL, 0, &l);
    CHECK(st == REDLOCK_OK, "acquire %s: %s", key, redlock_last_error());
    if (l)
        snprintf(sh->token[a->id], sizeof sh->token[a->id], "%s", redlock_token(l));
    /* Everyone hands its lock to the watchdog at the same moment. */
    pthread_barrier_wait(&sh->start);
    if (l) {
        st = redlock_keepalive(l);
        CHECK(st == REDLOCK_OK, "keepalive %s: %s", key, redlock_last_error());
    }
    sh->lock[a->id] = l;
    pthread_barrier_wait(&sh->held); /* the poller starts */

    /* Keep the lock across more than its ttl; calling keepalive again is
     * harmless. */
    for (int i = 0; i < 4 && l; i++) {
        rt_sleep_ms(KA_PHASE_MS / 4);
        st = redlock_keepalive(l);
        CHECK(st == REDLOCK_OK, "keepalive again %s: %s", key, redlock_last_error());
    }
    if (ctx && l)
        CHECK(key_is(ctx, key, sh->token[a->id]),
              "%s not held in Redis after %d ms with a %d ms ttl", key,
              KA_PHASE_MS, KA_TTL);
    pthread_barrier_wait(&sh->done); /* the poller has stopped */

    /* Release the neighbour's lock: handles may change threads. */
    int other = (a->id + 1) % KA_THREADS;
    redlock_lock *ol = sh->lock[other];
    if (ol) {
        st = redlock_release(ol);
        CHECK(st == REDLOCK_OK, "release ka:%d from thread %d: %s: %s", other,
              a->id, redlock_strerror(st), redlock_last_error());
        char okey[32];
        snprintf(okey, sizeof okey, "ka:%d", other);
        if (ctx)
            CHECK(key_is(ctx, okey, NULL), "%s left in Redis", okey);
    }
    if (ctx)
        redisFree(ctx);
    return NULL;
}

static void *ka_poller(void *p)
{
    ka_shared *sh = p;
    pthread_barrier_wait(&sh->start);
    pthread_barrier_wait(&sh->held);
    int64_t end = rt_now_ms() + KA_PHASE_MS;
    sh->min_validity = INT64_MAX;
    while (rt_now_ms() < end) {
        for (int i = 0; i < KA_THREADS; i++) {
            redlock_lock *l = sh->lock[i];
            if (!l)
                continue;
            int held = redlock_held(l);
            int64_t v = redlock_validity_ms(l);
            CHECK(held == 1, "ka:%d not held while kept alive", i);
            CHECK(v > 0 && v <= KA_TTL, "ka:%d validity %lld", i, (long long)v);
            if (v < sh->min_validity)
                sh->min_validity = v;
            sh->polls++;
        }
        struct timespec pause = {0, 200 * 1000}; /* leave the cores to others */
        nanosleep(&pause, NULL);
    }
    pthread_barrier_wait(&sh->done);
    return NULL;
}

static void keepalive_threads_handoff(void **state)
{
    (void)state;
    redlock_options o;
    base_options(&o);
    o.renew_floor_ms = 0; /* renew every ttl/3 = 500 ms */
    ka_shared *sh = calloc(1, sizeof *sh);
    assert_non_null(sh);
    sh->c = make_client(&o);
    pthread_barrier_init(&sh->start, NULL, KA_THREADS + 1);
    pthread_barrier_init(&sh->held, NULL, KA_THREADS + 1);
    pthread_barrier_init(&sh->done, NULL, KA_THREADS + 1);

    pthread_t t[KA_THREADS], poller;
    ka_arg a[KA_THREADS];
    for (int i = 0; i < KA_THREADS; i++) {
        a[i] = (ka_arg){.sh = sh, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, ka_worker, &a[i]), 0);
    }
    assert_int_equal(pthread_create(&poller, NULL, ka_poller, sh), 0);
    for (int i = 0; i < KA_THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_join(poller, NULL);
    print_message("poller: %ld samples, lowest validity %lld ms\n", sh->polls,
                  (long long)sh->min_validity);
    redlock_client_free(sh->c);
    pthread_barrier_destroy(&sh->start);
    pthread_barrier_destroy(&sh->held);
    pthread_barrier_destroy(&sh->done);
    long polls = sh->polls;
    free(sh);
    assert_no_errors();
    assert_true(polls > 0);
    assert_int_equal(count_keys("ka:*"), 0);
}

/* ---- 4. loss seen from another thread -------------------------------------- */

static atomic_int lost_calls;
static pthread_mutex_t lost_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t lost_thread; /* where on_lost ran */
static char lost_key[32];

static void on_lost(const redlock_lock *l, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lost_mu);
    lost_thread = pthread_self();
    snprintf(lost_key, sizeof lost_key, "%s", redlock_key(l));
    pthread_mutex_unlock(&lost_mu);
    atomic_fetch_add(&lost_calls, 1);
}

typedef struct loss_arg {
    redlock_lock *l;
    atomic_int started;
    int64_t seen_at;
    int64_t validity_after;
} loss_arg;

static void *loss_poller(void *p)
{
    loss_arg *a = p;
    atomic_store(&a->started, 1);
    int64_t end = rt_now_ms() + 10000;
    while (redlock_held(a->l) && rt_now_ms() < end)
        sched_yield();
    a->seen_at = rt_now_ms();
    a->validity_after = redlock_validity_ms(a->l);
    return NULL;
}

static void loss_seen_from_other_thread(void **state)
{
    (void)state;
    redlock_options o;
    base_options(&o);
    o.renew_floor_ms = 0;
    o.on_lost = on_lost;
    atomic_store(&lost_calls, 0);
    pthread_t main_thread = pthread_self(), poller_thread;
    lost_thread = main_thread;
    redlock_client *c = make_client(&o);
    redlock_lock *l = NULL;
    assert_int_equal(redlock_acquire(c, "loss:key", 900, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK);

    loss_arg *a = calloc(1, sizeof *a);
    assert_non_null(a);
    a->l = l;
    assert_int_equal(pthread_create(&poller_thread, NULL, loss_poller, a), 0);
    while (!atomic_load(&a->started))
        rt_sleep_ms(1);
    rt_sleep_ms(400); /* a renewal or so */
    assert_int_equal(redlock_held(l), 1);
    int64_t t0 = rt_now_ms();
    assert_true(rt_cmd_ok(&S, "SET loss:key intruder PX 60000"));
    pthread_join(poller_thread, NULL);
    int64_t took = a->seen_at - t0;
    int64_t vafter = a->validity_after;
    free(a);
    print_message("loss seen by another thread %lld ms after the takeover\n",
                  (long long)took);
    rt_sleep_ms(100);
    int calls = atomic_load(&lost_calls);
    pthread_mutex_lock(&lost_mu);
    int wrong = pthread_equal(lost_thread, main_thread) ||
                pthread_equal(lost_thread, poller_thread);
    int key_ok = strcmp(lost_key, "loss:key") == 0;
    pthread_mutex_unlock(&lost_mu);
    assert_int_equal(redlock_held(l), 0);
    assert_int_equal(redlock_release(l), REDLOCK_NOT_HELD);
    redlock_client_free(c);
    assert_true(took <= 300 + MARGIN_MS); /* one renewal interval */
    assert_int_equal(vafter, 0);
    assert_int_equal(calls, 1);
    assert_int_equal(wrong, 0); /* on the watchdog thread */
    assert_true(key_ok);
    char *v = rt_get(&S, "loss:key");
    assert_non_null(v);
    assert_string_equal(v, "intruder"); /* never touched by the loser */
    free(v);
}

/* ---- 5. churn: keepalive, extend and release racing the watchdog -------- */

#define CHURN_THREADS 8
#define CHURN_ROUNDS 25

typedef struct churn_arg {
    redlock_client *c;
    int id;
    unsigned seed;
    int ok;
} churn_arg;

static void *churn_worker(void *p)
{
    churn_arg *a = p;
    char key[32];
    for (int i = 0; i < CHURN_ROUNDS; i++) {
        snprintf(key, sizeof key, "churn:%d", a->id);
        redlock_lock *l = NULL;
        redlock_status st = redlock_acquire(a->c, key, 600, 0, &l);
        CHECK(st == REDLOCK_OK, "acquire %s: %s", key, redlock_last_error());
        if (st != REDLOCK_OK)
            continue;
        st = redlock_keepalive(l);
        CHECK(st == REDLOCK_OK, "keepalive %s: %s", key, redlock_last_error());
        rt_sleep_ms(rand_r(&a->seed) % 60);
        if (rand_r(&a->seed) % 3 == 0) {
            st = redlock_extend(l, 600);
            CHECK(st == REDLOCK_OK, "extend %s: %s", key, redlock_last_error());
        }
        CHECK(redlock_held(l) == 1, "%s lost", key);
        st = redlock_release(l);
        CHECK(st == REDLOCK_OK, "release %s: %s: %s", key, redlock_strerror(st),
              redlock_last_error());
        if (st == REDLOCK_OK)
            a->ok++;
    }
    return NULL;
}

static void keepalive_release_churn(void **state)
{
    (void)state;
    redlock_options o;
    base_options(&o);
    o.renew_floor_ms = 0; /* every 200 ms: releases meet renewals in flight */
    redlock_client *c = make_client(&o);
    pthread_t t[CHURN_THREADS];
    churn_arg a[CHURN_THREADS];
    for (int i = 0; i < CHURN_THREADS; i++) {
        a[i] = (churn_arg){.c = c, .id = i, .seed = 1234u + (unsigned)i};
        assert_int_equal(pthread_create(&t[i], NULL, churn_worker, &a[i]), 0);
    }
    for (int i = 0; i < CHURN_THREADS; i++)
        pthread_join(t[i], NULL);
    redlock_client_free(c);
    assert_no_errors();
    for (int i = 0; i < CHURN_THREADS; i++)
        assert_int_equal(a[i].ok, CHURN_ROUNDS);
    assert_int_equal(count_keys("churn:*"), 0);
}

/* ---- 6. client_free while other locks are kept alive -------------------- */

static void client_free_with_kept_locks(void **state)
{
    (void)state;
    redlock_options o;
    base_options(&o);
    o.renew_floor_ms = 0;
    redlock_client *c = make_client(&o);
    char key[32];
    for (int i = 0; i < 50; i++) {
        redlock_lock *l = NULL;
        snprintf(key, sizeof key, "free:%d", i);
        assert_int_equal(redlock_acquire(c, key, 300 + i * 10, 0, &l), REDLOCK_OK);
        assert_int_equal(redlock_keepalive(l), REDLOCK_OK);
    }
    rt_sleep_ms(350); /* past the shortest ttls: renewals must have happened */
    assert_int_equal(count_keys("free:*"), 50);
    redlock_client_free(c); /* stops the watchdog, releases all 50 */
    assert_int_equal(count_keys("free:*"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(shared_client_distinct_keys, flush),
        cmocka_unit_test_setup(mutual_exclusion, flush),
        cmocka_unit_test_setup(keepalive_threads_handoff, flush),
        cmocka_unit_test_setup(loss_seen_from_other_thread, flush),
        cmocka_unit_test_setup(keepalive_release_churn, flush),
        cmocka_unit_test_setup(client_free_with_kept_locks, flush),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
