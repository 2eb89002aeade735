/*
 * redlock-bench: how fast libredlock is, each figure beside a baseline
 * measured in the same process and the same run, so that ratios hold on a
 * noisy machine.
 *
 *   1 uncontended      one thread, acquire + release pairs on one key;
 *                      baseline: raw hiredis sending the same two commands
 *                      (SET NX PX, EVALSHA compare-and-delete) on one
 *                      connection.
 *   2 shared client    T threads (8), distinct keys, one client; baseline:
 *                      T threads, each with its own raw hiredis connection.
 *   3 contended        T workers, each with its own client, loop
 *                      acquire(one key, wait) -> tiny section -> release;
 *                      idle gap (a release returning -> the next acquire
 *                      returning in another worker that was waiting),
 *                      fairness, sections/s; baseline: a raw hiredis spin
 *                      lock (SET NX PX in a tight loop, no sleep).
 *   4 watchdog scale   10 000 locks kept alive by one client, ttl 30 s, and
 *                      a short variant renewed every 100 ms: CPU per wall
 *                      second, renewals/s (counted by Redis: INFO
 *                      commandstats), RSS per held lock; baseline: the CPU
 *                      raw hiredis spends pipelining the same renewals.
 *   5 Redlock          acquire + release latency with N = 1, 3, 5 nodes, on
 *                      loopback and through a delay proxy (1 ms each way);
 *                      baseline: raw hiredis on one node, same path.
 *   6 waiters          waiter scaling (--scenario waiters): 8, 64, 256
 *                      waiter processes (fork, a client each) loop
 *                      acquire(one key, wait 30 s) -> 1 ms section ->
 *                      release for 10 s: sections/s, redis-server CPU per
 *                      handoff (INFO cpu), commands per section (INFO
 *                      stats), idle gap, fairness, overlaps; and the same
 *                      with 10 % of the waiters SIGKILLed mid-wait;
 *                      baseline: redis-py's Lock as raw hiredis processes
 *                      (SET NX PX, sleep 0.1 s when refused; also 10 ms and
 *                      1 ms).  A markdown table follows the main table.
 *   7 TLS              (--scenario tls, with --certs DIR) one redis-server
 *                      with a plaintext and a TLS port: acquire+release
 *                      pairs/s over TLS, plaintext, and raw hiredis
 *                      plaintext (the baseline), in rotating rounds; then
 *                      the cost of new connections: fresh clients
 *                      (connect + full handshake + a pair) and reconnects
 *                      of a live client after CLIENT KILL (a resumed
 *                      handshake), TLS against plaintext.
 *   8 Redis Cluster    (--scenario cluster) a real 3-master/3-replica
 *                      cluster on loopback (tests/support/cluster.c):
 *                      (a) acquire+release pairs/s on a redis+cluster://
 *                      URL, on a plain redis:// URL to the master of the
 *                      key's slot, and raw hiredis to that master (the
 *                      baseline), in rotating rounds, with the commands
 *                      each pair costs that master (INFO stats); (b) the
 *                      cost of a MOVED: --migrations times, a key's slot
 *                      is migrated to another master behind the client's
 *                      back (contiguous slots to a neighbour, as a
 *                      reshard moves them; --scattered: any slot, the map
 *                      fragmenting), then the next pair on the key (pays
 *                      the MOVED) is timed against the pairs after it, and
 *                      the client's map reads are counted (CLUSTER SLOTS
 *                      calls in every node's INFO commandstats).
 *
 * It starts its own redis-server(s) on free loopback ports (or uses --url),
 * can pin itself and them to CPUs (--placement; the processes of scenario 6
 * inherit the pinning), prints a table or one JSON object (--json), and
 * exits 0 unless something failed (missed targets are not failures;
 * overlapping critical sections are failures).  `redlock-bench --help` lists the options.
 */
#define _GNU_SOURCE
#include "bench.h"
#include "cluster.h" /* tests/support: scenario 8's Redis Cluster */

#include <redlock.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef BENCH_BUILD_TYPE
#define BENCH_BUILD_TYPE ""
#endif

/* The library's scripts (src/scripts.c), for the raw hiredis baselines. */
/* The release script publishes the release (waiters wake on it) and, when
 * someone listens, hands the key off for 50 ms: the baseline sends exactly
 * what the library sends. */
#define RELEASE_LUA                                                           \
    "if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end "             \
    "if redis.call('publish', 'redlock:release:' .. KEYS[1], '') > "          \
    "tonumber(ARGV[3] or '0') then "                                          \
    "redis.call('set', KEYS[1], 'redlock:handoff', 'PX', ARGV[2]) "           \
    "else redis.call('del', KEYS[1]) end return 1"
#define RELEASE_SHA "768d13877382233ffe7abc7f1452452999137bdd"
#define EXTEND_LUA                                                            \
    "if redis.call('get', KEYS[1]) == ARGV[1] then "                          \
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
#define EXTEND_SHA "e95849a1757fe494b3c802dc09b717d0c074eb21"
/* Scenario 8's baseline: the release script the library sends on a cluster
 * URL (src/scripts.c RELEASE_BODY, with the queue: LPOP of an empty queue,
 * PUBSUB SHARDNUMSUB of the key's shard channel, DEL).  RELEASE_LUA above
 * would PUBLISH, which a cluster passes to all six nodes, a cost the
 * library does not pay there.  Scenario 8 checks (SCRIPT EXISTS) that the
 * library's script is this one, and sends it as the library does
 * (raw_release_cluster). */
#define CLUSTER_RELEASE_LUA                                                   \
    "if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end "            \
    "if KEYS[2] then while true do "                                          \
    "local e = redis.call('lpop', KEYS[2]) "                                  \
    "if not e then redis.call('del', KEYS[1]) return 1 end "                  \
    "local t, s, id, tok = string.match(e, '^(%d+) (%d+) (%x+) (.+)$') "      \
    "local tn = tonumber(t) "                                                 \
    "if t and tn >= 1 and tn <= 1099511627776 then local f = 0 "             \
    "if KEYS[3] then f = redis.call('incr', KEYS[3]) end "                    \
    "local ch = 'redlock:grant:' .. id local n = 0 "                          \
    "if ARGV[4] then ch = ch .. ':' .. KEYS[2] end "                          \
    "local m = s .. ' ' .. f .. ' ' .. t .. ' ' .. #KEYS[1] .. ' ' .. KEYS[1] " \
    ".. tok "                                                                 \
    "if redis.REDIS_VERSION_NUM then "                                        \
    "if redis.call('pubsub', 'shardnumsub', ch)[2] > 0 then "                 \
    "n = redis.call('spublish', ch, m) end "                                  \
    "elseif redis.call('pubsub', 'numsub', ch)[2] > 0 then "                  \
    "n = redis.call('publish', ch, m) end "                                   \
    "if n > 0 then "                                                          \
    "redis.call('set', KEYS[1], tok, 'PX', t) return 1 end end end end "      \
    "local sh = ARGV[4] local ch = sh or ('redlock:release:' .. KEYS[1]) "    \
    "local n = redis.call('pubsub', sh and 'shardnumsub' or 'numsub', ch)[2] " \
    "if n > 0 then redis.call(sh and 'spublish' or 'publish', ch, '') "       \
    "end if n > tonumber(ARGV[3] or '0') then redis.call('set', KEYS[1], "    \
    "'redlock:handoff', 'PX', ARGV[2]) else redis.call('del', KEYS[1]) "      \
    "end return 1"
#define CLUSTER_RELEASE_SHA "27f57118969233ed52bdc97a2188359c7679e715"

#define TTL_MS 10000       /* ttl of the locks of scenarios 1, 2, 3, 5 */
#define S3_WAIT_MS 5000    /* wait of one acquire in scenario 3 */
#define IO_TIMEOUT_MS 5000 /* raw connections */
#define MAX_THREADS 256
#define S5_NODES 5
#define S6_MAX_SIZES 8
#define S6_MAX_WAITERS 4000
#define SC_ALL 0x7eu /* scenarios 1..6; 7 (tls) and 8 (cluster) only when asked for */

/* ---- options ------------------------------------------------------------------ */

enum { PL_NONE, PL_PINNED, PL_SPLIT };
static const char *const placement_names[] = {"none", "pinned", "split"};

static struct {
    unsigned scenarios; /* bit n: scenario n */
    double duration_s;  /* per measured part */
    long count;         /* > 0: operations per part instead of a duration */
    int threads;
    int json, tiny;
    int placements[2];
    int nplacements;
    int pin_cpu, split_cpu;
    const char *urls[REDLOCK_MAX_NODES];
    int nurls;
    int locks;
    double window_s, short_window_s;
    int short_ttl_ms, short_floor_ms;
    int64_t delay_us;
    int rounds;
    int warmup;
    const char *redis_path;
    const char *label;
    int wsizes[S6_MAX_SIZES]; /* scenario 6: waiter counts */
    int nwsizes;
    double wduration_s;       /* scenario 6: seconds per run */
    int section_us;           /* scenario 6: the critical section */
    double kill_pct;          /* scenario 6: waiters killed in the killed run */
    const char *certdir;      /* scenario 7: make_certs.sh's directory */
    int migrations;           /* scenario 8: slots migrated under the client */
    int scattered;            /* scenario 8: scattered slots, not reshard order */
} O;

static char cmdline[1024]; /* how the benchmark was started, for the record */
static char load_start[32], load_end[32];

static int g_errors;

/* ---- results ------------------------------------------------------------------ */

enum { T_NONE, T_VALUE, T_RATIO };

typedef struct {
    const char *placement;
    int scenario;
    char figure[96];
    char unit[12];
    double value;
    double baseline;
    char baseline_is[40];
    double ratio;
    char target[32];
    int meets; /* -1: no target */
} row;

static row *rows;
static int nrows, caprows;
static const char *cur_placement = "none";

static int meets(double v, const char *op, double t)
{
    if (isnan(v))
        return 0;
    if (strcmp(op, ">=") == 0)
        return v >= t;
    if (strcmp(op, "<=") == 0)
        return v <= t;
    if (strcmp(op, "<") == 0)
        return v < t;
    if (strcmp(op, ">") == 0)
        return v > t;
    return v == t;
}

/* One line of the table.  tkind: T_NONE, T_VALUE (op t applies to value)
 * or T_RATIO (to ratio). */
static void add_row(int sc, const char *figure, const char *unit, double value,
                    double baseline, const char *baseline_is, double ratio, int tkind,
                    const char *op, double t)
{
    if (nrows == caprows) {
        int cap = caprows ? caprows * 2 : 64;
        row *r = realloc(rows, (size_t)cap * sizeof *r);
        if (r == NULL) {
            fprintf(stderr, "redlock-bench: out of memory\n");
            g_errors++;
            return;
        }
        rows = r;
        caprows = cap;
    }
    row *r = &rows[nrows++];
    memset(r, 0, sizeof *r);
    r->placement = cur_placement;
    r->scenario = sc;
    snprintf(r->figure, sizeof r->figure, "%s", figure);
    snprintf(r->unit, sizeof r->unit, "%s", unit);
    r->value = value;
    r->baseline = baseline;
    snprintf(r->baseline_is, sizeof r->baseline_is, "%s", baseline_is ? baseline_is : "");
    r->ratio = ratio;
    r->meets = -1;
    if (tkind == T_RATIO) {
        snprintf(r->target, sizeof r->target, "ratio %s %g", op, t);
        r->meets = meets(ratio, op, t);
    } else if (tkind == T_VALUE) {
        snprintf(r->target, sizeof r->target, "%s %g%s%s", op, t, unit[0] ? " " : "", unit);
        r->meets = meets(value, op, t);
    }
}

static double ratio_of(double a, double b)
{
    return (isnan(a) || isnan(b) || b == 0) ? NAN : a / b;
}

static double us(int64_t ns)
{
    return (double)ns / 1000.0;
}

/* ---- small helpers -------------------------------------------------------------- */

static void progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] ", cur_placement);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void lib_fail(const char *what, const char *key, redlock_status st)
{
    fprintf(stderr, "redlock-bench: %s %s: %s (%s)\n", what, key ? key : "",
            redlock_strerror(st), redlock_last_error());
}

static redlock_client *lib_connect(const char *const *urls, size_t n,
                                   const redlock_options *opts)
{
    redlock_status st;
    redlock_client *c = redlock_connect(urls, n, opts, &st);
    if (c == NULL)
        fprintf(stderr, "redlock-bench: redlock_connect(%s, %zu nodes): %s (%s)\n",
                urls[0], n, redlock_strerror(st), redlock_last_error());
    return c;
}

/* A raw hiredis connection with the release and extend scripts loaded. */
static redisContext *raw_connect(const char *url)
{
    bn_url u;
    if (bn_url_parse(url, &u) != 0) {
        fprintf(stderr, "redlock-bench: cannot parse %s for hiredis\n", url);
        return NULL;
    }
    redisContext *c = bn_url_connect(&u, IO_TIMEOUT_MS);
    if (c == NULL)
        return NULL;
    if (bn_script_load(c, RELEASE_LUA, RELEASE_SHA) != 0 ||
        bn_script_load(c, EXTEND_LUA, EXTEND_SHA) != 0) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* A 36-character token, like the library's, made cheaply. */
static void raw_token(char *buf, size_t len, unsigned id, unsigned long seq)
{
    snprintf(buf, len, "%08x-0000-4000-8000-%012lx", id, seq & 0xffffffffffffUL);
}

/* SET key token NX PX ttl: 1 taken, 0 held elsewhere, -1 error. */
static int raw_acquire(redisContext *c, const char *key, const char *token, long ttl)
{
    redisReply *r = redisCommand(c, "SET %s %s NX PX %ld", key, token, ttl);
    if (r == NULL) {
        fprintf(stderr, "redlock-bench: raw SET: %s\n", c->errstr);
        return -1;
    }
    int res = -1;
    if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0)
        res = 1;
    else if (r->type == REDIS_REPLY_NIL)
        res = 0;
    else
        fprintf(stderr, "redlock-bench: raw SET answered type %d %s\n", r->type,
                r->type == REDIS_REPLY_ERROR ? r->str : "");
    freeReplyObject(r);
    return res;
}

/* EVALSHA of the release script `sha`: 1 deleted, 0 not ours, -1 error. */
/* A release script's answer: 1 released, 0 not ours, -1 failed (said). */
static int release_answer(redisContext *c, redisReply *r)
{
    if (r == NULL) {
        fprintf(stderr, "redlock-bench: raw EVALSHA: %s\n", c->errstr);
        return -1;
    }
    int res = -1;
    if (r->type == REDIS_REPLY_INTEGER)
        res = r->integer == 1;
    else
        fprintf(stderr, "redlock-bench: raw EVALSHA answered type %d %s\n", r->type,
                r->type == REDIS_REPLY_ERROR ? r->str : "");
    freeReplyObject(r);
    return res;
}

static int raw_release_sha(redisContext *c, const char *sha, const char *key,
                           const char *token)
{
    return release_answer(c, redisCommand(c, "EVALSHA %s 1 %s %s 50 0", sha, key, token));
}

/* The library's release on a cluster, for a key with a hash tag: the
 * queue beside it, the shard channel as ARGV[4]. */
static int raw_release_cluster(redisContext *c, const char *key,
                               const char *token)
{
    return release_answer(c, redisCommand(c, "EVALSHA %s 2 %s %s:redlock:q %s 50 0 "
                                             "redlock:release:%s",
                                          CLUSTER_RELEASE_SHA, key, key, token, key));
}

static int raw_release(redisContext *c, const char *key, const char *token)
{
    return raw_release_sha(c, RELEASE_SHA, key, token);
}

/* A part ends after `count` operations when count > 0, else at `end_ns`. */
typedef struct {
    int64_t end_ns;
    long count;
} budget;

static budget part_budget(double seconds, long count)
{
    budget b;
    b.count = count;
    b.end_ns = bn_now_ns() + (int64_t)(seconds * 1e9);
    return b;
}

static int budget_done(const budget *b, long i, int64_t now)
{
    return b->count > 0 ? i >= b->count : now >= b->end_ns;
}

/* ---- the environment of one placement --------------------------------------------- */

typedef struct {
    int placement;
    int bench_cpu, server_cpu; /* -1: not pinned */
    bn_server srv[S5_NODES];
    int nsrv;
    const char *urls[REDLOCK_MAX_NODES];
    int nurls;
    char prefix[64]; /* of every key */
} env;

static int env_open(env *e, int placement, int nodes)
{
    memset(e, 0, sizeof *e);
    e->placement = placement;
    e->bench_cpu = e->server_cpu = -1;
    if (placement == PL_PINNED) {
        e->bench_cpu = e->server_cpu = O.pin_cpu;
    } else if (placement == PL_SPLIT) {
        e->server_cpu = O.pin_cpu;
        e->bench_cpu = O.split_cpu;
    }
    cur_placement = placement_names[placement];
    /* Threads made from here on (workers, the library's watchdog, the
     * proxies) inherit the main thread's affinity. */
    if (bn_pin_self(e->bench_cpu) != 0)
        return -1;
    snprintf(e->prefix, sizeof e->prefix, "redlock-bench:%ld:%s", (long)getpid(),
             placement_names[placement]);
    if (O.nurls > 0) {
        for (int i = 0; i < O.nurls; i++)
            e->urls[i] = O.urls[i];
        e->nurls = O.nurls;
        return 0;
    }
    for (int i = 0; i < nodes; i++) {
        if (bn_server_start(&e->srv[i], O.redis_path, e->server_cpu) != 0)
            return -1;
        e->nsrv++;
        e->urls[i] = e->srv[i].url;
        e->nurls++;
    }
    return 0;
}

static void env_close(env *e)
{
    for (int i = 0; i < e->nsrv; i++)
        bn_server_stop(&e->srv[i]);
    e->nsrv = 0;
    bn_pin_self(-1);
}

/* ==== scenario 1: uncontended ========================================================= */

static int lib_pairs(redlock_client *c, const char *key, budget b, bn_samples *pair,
                     bn_samples *acq, bn_samples *rel, long *pairs, int64_t *elapsed)
{
    int64_t t0 = bn_now_ns(), a = t0;
    long i;
    for (i = 0; !budget_done(&b, i, a); i++) {
        redlock_lock *l;
        redlock_status st = redlock_acquire(c, key, TTL_MS, 0, &l);
        int64_t m = bn_now_ns();
        if (st != REDLOCK_OK) {
            lib_fail("acquire", key, st);
            return -1;
        }
        st = redlock_release(l);
        int64_t z = bn_now_ns();
        if (st != REDLOCK_OK) {
            lib_fail("release", key, st);
            return -1;
        }
        bn_samples_push(pair, z - a);
        if (acq)
            bn_samples_push(acq, m - a);
        if (rel)
            bn_samples_push(rel, z - m);
        a = z;
    }
    *pairs += i;
    *elapsed += a - t0;
    return 0;
}

/* raw_pairs() with the release script `sha`. */
static int raw_pairs_sha(redisContext *c, const char *sha, const char *key, unsigned id,
                         budget b, bn_samples *pair, long *pairs, int64_t *elapsed)
{
    char token[48];
    int64_t t0 = bn_now_ns(), a = t0;
    long i;
    for (i = 0; !budget_done(&b, i, a); i++) {
        raw_token(token, sizeof token, id, (unsigned long)i);
        if (raw_acquire(c, key, token, TTL_MS) != 1 ||
            (strcmp(sha, CLUSTER_RELEASE_SHA) == 0
                 ? raw_release_cluster(c, key, token)
                 : raw_release_sha(c, sha, key, token)) != 1) {
            fprintf(stderr, "redlock-bench: raw pair on %s failed\n", key);
            return -1;
        }
        int64_t z = bn_now_ns();
        bn_samples_push(pair, z - a);
        a = z;
    }
    *pairs += i;
    *elapsed += a - t0;
    return 0;
}

static int raw_pairs(redisContext *c, const char *key, unsigned id, budget b,
                     bn_samples *pair, long *pairs, int64_t *elapsed)
{
    return raw_pairs_sha(c, RELEASE_SHA, key, id, b, pair, pairs, elapsed);
}

static int scenario1(env *e)
{
    progress("scenario 1: uncontended acquire + release, 1 thread");
    char key[96];
    snprintf(key, sizeof key, "%s:s1", e->prefix);
    redlock_client *c = lib_connect(e->urls, 1, NULL);
    redisContext *rc = raw_connect(e->urls[0]);
    bn_samples lib_lat = {0}, raw_lat = {0}, scratch = {0};
    long lib_n = 0, raw_n = 0, wn = 0;
    int64_t lib_t = 0, raw_t = 0, wt = 0;
    int rc_ = -1;
    if (c == NULL || rc == NULL)
        goto out;
    if (lib_pairs(c, key, part_budget(0, O.warmup), &scratch, NULL, NULL, &wn, &wt) != 0 ||
        raw_pairs(rc, key, 1, part_budget(0, O.warmup), &scratch, &wn, &wt) != 0)
        goto out;
    /* Rounds in ABBA order, so that a drift of the machine weighs on both. */
    for (int r = 0; r < O.rounds; r++) {
        double secs = O.duration_s / O.rounds;
        long cnt = O.count > 0 ? (O.count + O.rounds - 1) / O.rounds : 0;
        for (int k = 0; k < 2; k++) {
            int lib_turn = (r % 2 == 0) == (k == 0);
            int err = lib_turn ? lib_pairs(c, key, part_budget(secs, cnt), &lib_lat, NULL,
                                           NULL, &lib_n, &lib_t)
                               : raw_pairs(rc, key, 1, part_budget(secs, cnt), &raw_lat,
                                           &raw_n, &raw_t);
            if (err)
                goto out;
        }
    }
    double lib_rate = lib_n / (lib_t / 1e9), raw_rate = raw_n / (raw_t / 1e9);
    add_row(1, "acquire+release pairs/s", "/s", lib_rate, raw_rate, "raw hiredis",
            ratio_of(lib_rate, raw_rate), T_RATIO, ">=", 0.95);
    double l50 = us(bn_percentile(&lib_lat, 50)), r50 = us(bn_percentile(&raw_lat, 50));
    double l99 = us(bn_percentile(&lib_lat, 99)), r99 = us(bn_percentile(&raw_lat, 99));
    add_row(1, "pair latency p50", "us", l50, r50, "raw hiredis", ratio_of(l50, r50),
            T_NONE, "", 0);
    add_row(1, "pair latency p99", "us", l99, r99, "raw hiredis", ratio_of(l99, r99),
            T_NONE, "", 0);
    rc_ = 0;
out:
    bn_samples_free(&lib_lat);
    bn_samples_free(&raw_lat);
    bn_samples_free(&scratch);
    if (rc)
        redisFree(rc);
    redlock_client_free(c);
    return rc_;
}

/* ==== scenario 2: one client shared by T threads ========================================= */

typedef struct {
    int id;
    redlock_client *c; /* lib mode */
    redisContext *rc;  /* raw mode */
    char key[128];
    pthread_barrier_t *ready, *go;
    const int64_t *end_ns;
    long count;
    long pairs;
    int64_t elapsed;
    int64_t finished_ns;
    bn_samples lat;
    int err;
} s2_arg;

static void *s2_thread(void *p)
{
    s2_arg *a = p;
    pthread_barrier_wait(a->ready);
    pthread_barrier_wait(a->go);
    budget b = {*a->end_ns, a->count};
    a->err = a->c ? lib_pairs(a->c, a->key, b, &a->lat, NULL, NULL, &a->pairs, &a->elapsed)
                  : raw_pairs(a->rc, a->key, (unsigned)a->id, b, &a->lat, &a->pairs,
                              &a->elapsed);
    a->finished_ns = bn_now_ns();
    return NULL;
}

/* One timed part with T threads; adds to *pairs, *elapsed and lat. */
static int s2_part(env *e, redlock_client *c, redisContext **rcs, double secs, long count,
                   long *pairs, int64_t *elapsed, bn_samples *lat)
{
    int T = O.threads;
    s2_arg *args = calloc((size_t)T, sizeof *args);
    pthread_t *th = calloc((size_t)T, sizeof *th);
    pthread_barrier_t ready, go;
    int64_t end_ns = 0;
    int err = 0, started = 0;
    if (args == NULL || th == NULL) {
        free(args);
        free(th);
        return -1;
    }
    pthread_barrier_init(&ready, NULL, (unsigned)T + 1);
    pthread_barrier_init(&go, NULL, (unsigned)T + 1);
    for (int i = 0; i < T; i++) {
        s2_arg *a = &args[i];
        a->id = i + 1;
        a->c = c;
        a->rc = c ? NULL : rcs[i];
        snprintf(a->key, sizeof a->key, "%s:s2:%d", e->prefix, i);
        a->ready = &ready;
        a->go = &go;
        a->end_ns = &end_ns;
        a->count = count > 0 ? (count + T - 1) / T : 0;
        if (pthread_create(&th[i], NULL, s2_thread, a) != 0) {
            fprintf(stderr, "redlock-bench: cannot start a thread\n");
            /* the barriers need T + 1: this is fatal for the run */
            exit(1);
        }
        started++;
    }
    pthread_barrier_wait(&ready);
    int64_t t0 = bn_now_ns();
    end_ns = t0 + (int64_t)(secs * 1e9);
    pthread_barrier_wait(&go);
    int64_t last = t0;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        err |= args[i].err;
        *pairs += args[i].pairs;
        if (args[i].finished_ns > last)
            last = args[i].finished_ns;
        bn_samples_append(lat, &args[i].lat);
        bn_samples_free(&args[i].lat);
    }
    *elapsed += last - t0;
    pthread_barrier_destroy(&ready);
    pthread_barrier_destroy(&go);
    free(args);
    free(th);
    return err ? -1 : 0;
}

static int scenario2(env *e)
{
    int T = O.threads;
    progress("scenario 2: %d threads, distinct keys, one shared client", T);
    redlock_client *c = lib_connect(e->urls, 1, NULL);
    redisContext **rcs = calloc((size_t)T, sizeof *rcs);
    bn_samples lib_lat = {0}, raw_lat = {0}, scratch = {0};
    long lib_n = 0, raw_n = 0, wn = 0;
    int64_t lib_t = 0, raw_t = 0, wt = 0;
    int res = -1;
    if (c == NULL || rcs == NULL)
        goto out;
    for (int i = 0; i < T; i++)
        if ((rcs[i] = raw_connect(e->urls[0])) == NULL)
            goto out;
    if (s2_part(e, c, rcs, 0, (long)O.warmup * T, &wn, &wt, &scratch) != 0 ||
        s2_part(e, NULL, rcs, 0, (long)O.warmup * T, &wn, &wt, &scratch) != 0)
        goto out;
    for (int r = 0; r < O.rounds; r++) {
        double secs = O.duration_s / O.rounds;
        long cnt = O.count > 0 ? (O.count + O.rounds - 1) / O.rounds : 0;
        for (int k = 0; k < 2; k++) {
            int lib_turn = (r % 2 == 0) == (k == 0);
            int err = lib_turn ? s2_part(e, c, rcs, secs, cnt, &lib_n, &lib_t, &lib_lat)
                               : s2_part(e, NULL, rcs, secs, cnt, &raw_n, &raw_t, &raw_lat);
            if (err)
                goto out;
        }
    }
    double lib_rate = lib_n / (lib_t / 1e9), raw_rate = raw_n / (raw_t / 1e9);
    char fig[96];
    snprintf(fig, sizeof fig, "pairs/s, %d threads, 1 client", T);
    char base[40];
    snprintf(base, sizeof base, "%d raw connections", T);
    add_row(2, fig, "/s", lib_rate, raw_rate, base, ratio_of(lib_rate, raw_rate), T_RATIO,
            ">=", 0.8);
    double l50 = us(bn_percentile(&lib_lat, 50)), r50 = us(bn_percentile(&raw_lat, 50));
    double l99 = us(bn_percentile(&lib_lat, 99)), r99 = us(bn_percentile(&raw_lat, 99));
    add_row(2, "pair latency p50", "us", l50, r50, base, ratio_of(l50, r50), T_NONE, "", 0);
    add_row(2, "pair latency p99", "us", l99, r99, base, ratio_of(l99, r99), T_NONE, "", 0);
    res = 0;
out:
    bn_samples_free(&lib_lat);
    bn_samples_free(&raw_lat);
    bn_samples_free(&scratch);
    for (int i = 0; rcs && i < T; i++)
        if (rcs[i])
            redisFree(rcs[i]);
    free(rcs);
    redlock_client_free(c);
    return res;
}

/* ==== scenario 3: contended handoff ========================================================= */

typedef struct {
    atomic_int stop;
    atomic_llong stop_ns;
    atomic_int in_cs;
    atomic_long overlaps;
    atomic_long total;
    atomic_long work;
    long count;
    pthread_barrier_t *go;
    const char *key;
} s3_shared;

typedef struct {
    int id;
    s3_shared *sh;
    redlock_client *c; /* lib worker */
    redisContext *rc;  /* spin-lock worker */
    bn_samples t_start, t_acq, t_rel; /* one entry per section */
    long timeouts;
    int err;
} s3_arg;

static void s3_section(s3_shared *sh)
{
    if (atomic_exchange(&sh->in_cs, 1) != 0)
        atomic_fetch_add(&sh->overlaps, 1);
    /* a tiny critical section: a few dozen nanoseconds of work */
    for (int i = 0; i < 16; i++)
        atomic_fetch_add_explicit(&sh->work, 1, memory_order_relaxed);
    atomic_store(&sh->in_cs, 0);
}

static void s3_count(s3_shared *sh)
{
    long n = atomic_fetch_add(&sh->total, 1) + 1;
    if (sh->count > 0 && n >= sh->count) {
        long long zero = 0;
        atomic_compare_exchange_strong(&sh->stop_ns, &zero, (long long)bn_now_ns());
        atomic_store(&sh->stop, 1);
    }
}

static void *s3_lib_worker(void *p)
{
    s3_arg *a = p;
    s3_shared *sh = a->sh;
    pthread_barrier_wait(sh->go);
    while (!atomic_load(&sh->stop)) {
        int64_t t0 = bn_now_ns();
        redlock_lock *l;
        redlock_status st = redlock_acquire(a->c, sh->key, TTL_MS, S3_WAIT_MS, &l);
        int64_t t1 = bn_now_ns();
        if (st == REDLOCK_BUSY) {
            a->timeouts++;
            continue;
        }
        if (st != REDLOCK_OK) {
            lib_fail("acquire (waiting)", sh->key, st);
            a->err = 1;
            atomic_store(&sh->stop, 1);
            break;
        }
        s3_section(sh);
        st = redlock_release(l);
        int64_t t2 = bn_now_ns();
        if (st != REDLOCK_OK) {
            lib_fail("release", sh->key, st);
            a->err = 1;
            atomic_store(&sh->stop, 1);
            break;
        }
        bn_samples_push(&a->t_start, t0);
        bn_samples_push(&a->t_acq, t1);
        bn_samples_push(&a->t_rel, t2);
        s3_count(sh);
    }
    return NULL;
}

static void *s3_spin_worker(void *p)
{
    s3_arg *a = p;
    s3_shared *sh = a->sh;
    char token[48];
    unsigned long seq = 0;
    pthread_barrier_wait(sh->go);
    while (!atomic_load(&sh->stop)) {
        raw_token(token, sizeof token, (unsigned)a->id, seq++);
        int64_t t0 = bn_now_ns();
        int got;
        while ((got = raw_acquire(a->rc, sh->key, token, TTL_MS)) == 0 &&
               !atomic_load(&sh->stop)) {
        }
        if (got < 0) {
            a->err = 1;
            atomic_store(&sh->stop, 1);
            break;
        }
        if (got == 0)
            break; /* stopped while spinning */
        int64_t t1 = bn_now_ns();
        s3_section(sh);
        int rel = raw_release(a->rc, sh->key, token);
        int64_t t2 = bn_now_ns();
        if (rel != 1) {
            a->err = 1;
            atomic_store(&sh->stop, 1);
            break;
        }
        bn_samples_push(&a->t_start, t0);
        bn_samples_push(&a->t_acq, t1);
        bn_samples_push(&a->t_rel, t2);
        s3_count(sh);
    }
    return NULL;
}

typedef struct {
    int64_t start, acq, rel;
    int w;
} section;

static int cmp_section(const void *x, const void *y)
{
    const section *a = x, *b = y;
    return (a->acq > b->acq) - (a->acq < b->acq);
}

typedef struct {
    long sections;
    double rate;
    double fairness;
    long min_w, max_w;
    bn_samples gaps;  /* ns */
    long releases_waited; /* releases while another worker was waiting */
    long handed_over;     /* ... after which another worker got the lock next */
    long early;           /* acquires that returned before the release did */
    long overlaps;
    long timeouts;
} s3_result;

/* 1 when worker v (sections sorted by acq in secs[from..to)) was inside an
 * acquire call at time t. */
static int waiting_at(const section *s, long n, int64_t t)
{
    /* the first section of v with acq > t: v waits at t if it started <= t */
    long lo = 0, hi = n;
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        if (s[mid].acq > t)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo < n && s[lo].start <= t;
}

/* Every section whose acquire returned before t_stop counts. */
static int s3_analyze(s3_arg *args, int W, int64_t t_begin, int64_t t_stop, s3_result *res)
{
    memset(res, 0, sizeof *res);
    size_t total = 0;
    for (int w = 0; w < W; w++)
        total += args[w].t_acq.n;
    section *all = malloc((total ? total : 1) * sizeof *all);
    section **per = calloc((size_t)W, sizeof *per);
    long *nper = calloc((size_t)W, sizeof *nper);
    if (all == NULL || per == NULL || nper == NULL) {
        free(all);
        free(per);
        free(nper);
        return -1;
    }
    long n = 0;
    for (int w = 0; w < W; w++) {
        per[w] = all + n;
        for (size_t i = 0; i < args[w].t_acq.n; i++) {
            if (args[w].t_acq.v[i] >= t_stop)
                continue;
            all[n].start = args[w].t_start.v[i];
            all[n].acq = args[w].t_acq.v[i];
            all[n].rel = args[w].t_rel.v[i];
            all[n].w = w;
            n++;
            nper[w]++;
        }
        res->timeouts += args[w].timeouts;
    }
    /* per-worker runs are already in time order */
    long mn = -1, mx = 0;
    for (int w = 0; w < W; w++) {
        if (mn < 0 || nper[w] < mn)
            mn = nper[w];
        if (nper[w] > mx)
            mx = nper[w];
    }
    res->min_w = mn;
    res->max_w = mx;
    res->fairness = mx > 0 ? (double)mn / (double)mx : NAN;
    res->sections = n;
    res->rate = n / ((double)(t_stop - t_begin) / 1e9);

    /* copy before sorting: per[] points into all[] */
    section *sorted = malloc((n ? (size_t)n : 1) * sizeof *sorted);
    if (sorted == NULL) {
        free(all);
        free(per);
        free(nper);
        return -1;
    }
    memcpy(sorted, all, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_section);
    for (long k = 1; k < n; k++) {
        const section *prev = &sorted[k - 1], *cur = &sorted[k];
        int other_waiting = 0;
        for (int v = 0; v < W && !other_waiting; v++)
            if (v != prev->w && waiting_at(per[v], nper[v], prev->rel))
                other_waiting = 1;
        if (other_waiting) {
            res->releases_waited++;
            if (cur->w != prev->w)
                res->handed_over++;
        }
        /* the idle gap: a different worker, already waiting when the
         * previous holder's release returned */
        if (cur->w != prev->w && cur->start < prev->rel) {
            int64_t gap = cur->acq - prev->rel;
            if (gap < 0) {
                res->early++;
                gap = 0;
            }
            bn_samples_push(&res->gaps, gap);
        }
    }
    free(sorted);
    free(all);
    free(per);
    free(nper);
    return 0;
}

/* One run of W workers (lib or spin) for secs (or O.count sections). */
static int s3_run(env *e, int spin, double secs, s3_result *res)
{
    int W = O.threads;
    char key[96];
    snprintf(key, sizeof key, "%s:s3:%s", e->prefix, spin ? "spin" : "lib");
    s3_shared sh;
    memset(&sh, 0, sizeof sh);
    atomic_init(&sh.stop, 0);
    atomic_init(&sh.stop_ns, 0);
    atomic_init(&sh.in_cs, 0);
    atomic_init(&sh.overlaps, 0);
    atomic_init(&sh.total, 0);
    atomic_init(&sh.work, 0);
    sh.count = O.count;
    sh.key = key;
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)W + 1);
    sh.go = &go;
    s3_arg *args = calloc((size_t)W, sizeof *args);
    pthread_t *th = calloc((size_t)W, sizeof *th);
    int err = 0;
    if (args == NULL || th == NULL) {
        free(args);
        free(th);
        pthread_barrier_destroy(&go);
        return -1;
    }
    for (int w = 0; w < W; w++) {
        args[w].id = w + 1;
        args[w].sh = &sh;
        /* each worker is its own client, as separate processes would be */
        if (spin)
            args[w].rc = raw_connect(e->urls[0]);
        else
            args[w].c = lib_connect(e->urls, 1, NULL);
        if (args[w].rc == NULL && args[w].c == NULL)
            err = 1;
    }
    int started = 0;
    if (!err) {
        for (int w = 0; w < W; w++) {
            if (pthread_create(&th[w], NULL, spin ? s3_spin_worker : s3_lib_worker,
                               &args[w]) != 0) {
                fprintf(stderr, "redlock-bench: cannot start a thread\n");
                exit(1);
            }
            started++;
        }
        pthread_barrier_wait(&go);
        int64_t t_begin = bn_now_ns();
        if (O.count <= 0) {
            bn_sleep_until_ns(t_begin + (int64_t)(secs * 1e9));
            long long zero = 0;
            atomic_compare_exchange_strong(&sh.stop_ns, &zero, (long long)bn_now_ns());
            atomic_store(&sh.stop, 1);
        }
        for (int w = 0; w < started; w++) {
            pthread_join(th[w], NULL);
            err |= args[w].err;
        }
        int64_t t_stop = atomic_load(&sh.stop_ns);
        if (t_stop == 0)
            t_stop = bn_now_ns(); /* a worker failed */
        if (!err && s3_analyze(args, W, t_begin, t_stop, res) != 0)
            err = 1;
        res->overlaps = atomic_load(&sh.overlaps);
    }
    for (int w = 0; w < W; w++) {
        if (args[w].rc)
            redisFree(args[w].rc);
        redlock_client_free(args[w].c);
        bn_samples_free(&args[w].t_start);
        bn_samples_free(&args[w].t_acq);
        bn_samples_free(&args[w].t_rel);
    }
    free(args);
    free(th);
    pthread_barrier_destroy(&go);
    return err ? -1 : 0;
}

static int scenario3(env *e)
{
    int W = O.threads;
    progress("scenario 3: %d workers, one key, acquire(wait) -> section -> release", W);
    s3_result lib, spin;
    memset(&lib, 0, sizeof lib);
    memset(&spin, 0, sizeof spin);
    bn_samples rtt = {0};
    int res = -1;

    /* the floor: one SET NX round trip on a held key (what a poller sends) */
    redisContext *rc = raw_connect(e->urls[0]);
    if (rc == NULL)
        goto out;
    char key[96];
    snprintf(key, sizeof key, "%s:s3:rtt", e->prefix);
    if (raw_acquire(rc, key, "holder", TTL_MS) != 1)
        goto out;
    budget b = part_budget(O.duration_s / 4, O.count);
    int64_t a = bn_now_ns();
    for (long i = 0; !budget_done(&b, i, a); i++) {
        if (raw_acquire(rc, key, "other", TTL_MS) != 0)
            goto out;
        int64_t z = bn_now_ns();
        bn_samples_push(&rtt, z - a);
        a = z;
    }
    if (raw_release(rc, key, "holder") != 1)
        goto out;

    if (s3_run(e, 0, O.duration_s * 2, &lib) != 0)
        goto out;
    if (s3_run(e, 1, O.duration_s, &spin) != 0)
        goto out;

    const char *sp = "raw spin lock";
    add_row(3, "sections/s", "/s", lib.rate, spin.rate, sp, ratio_of(lib.rate, spin.rate),
            T_NONE, "", 0);
    double g50 = us(bn_percentile(&lib.gaps, 50)), s50 = us(bn_percentile(&spin.gaps, 50));
    double g99 = us(bn_percentile(&lib.gaps, 99)), s99 = us(bn_percentile(&spin.gaps, 99));
    double gmx = us(bn_max(&lib.gaps)), smx = us(bn_max(&spin.gaps));
    if (lib.gaps.n == 0)
        g50 = g99 = gmx = NAN;
    if (spin.gaps.n == 0)
        s50 = s99 = smx = NAN;
    add_row(3, "idle gap p50", "us", g50, s50, sp, ratio_of(g50, s50), T_NONE, "", 0);
    add_row(3, "idle gap p99", "us", g99, s99, sp, ratio_of(g99, s99), T_VALUE, "<=", 2000);
    add_row(3, "idle gap max", "us", gmx, smx, sp, ratio_of(gmx, smx), T_NONE, "", 0);
    add_row(3, "idle gaps measured", "", (double)lib.gaps.n, (double)spin.gaps.n, sp,
            NAN, T_NONE, "", 0);
    add_row(3, "fairness (fewest/most sections)", "", lib.fairness, spin.fairness, sp,
            ratio_of(lib.fairness, spin.fairness), T_VALUE, ">=", 0.5);
    double lh = lib.releases_waited ? 100.0 * lib.handed_over / lib.releases_waited : NAN;
    double sh = spin.releases_waited ? 100.0 * spin.handed_over / spin.releases_waited : NAN;
    add_row(3, "releases with a waiter that went to it", "%", lh, sh, sp, ratio_of(lh, sh),
            T_NONE, "", 0);
    double le = lib.gaps.n ? 100.0 * lib.early / (double)lib.gaps.n : NAN;
    double se = spin.gaps.n ? 100.0 * spin.early / (double)spin.gaps.n : NAN;
    add_row(3, "handoffs seen before the release returned", "%", le, se, sp, NAN, T_NONE,
            "", 0);
    double r50 = us(bn_percentile(&rtt, 50));
    add_row(3, "SET NX round trip p50 (the floor)", "us", r50, NAN, "", NAN, T_NONE, "", 0);
    add_row(3, "overlapping sections (safety)", "", (double)lib.overlaps,
            (double)spin.overlaps, sp, NAN, T_VALUE, "<=", 0);
    if (lib.timeouts > 0)
        add_row(3, "acquires that waited out 5 s", "", (double)lib.timeouts, NAN, "", NAN,
                T_NONE, "", 0);
    if (lib.overlaps > 0 || spin.overlaps > 0) {
        fprintf(stderr, "redlock-bench: MUTUAL EXCLUSION VIOLATED: %ld overlapping "
                        "sections (library), %ld (spin lock)\n",
                lib.overlaps, spin.overlaps);
        goto out;
    }
    progress("  library: %ld sections (per worker %ld..%ld), spin: %ld (%ld..%ld)",
             lib.sections, lib.min_w, lib.max_w, spin.sections, spin.min_w, spin.max_w);
    res = 0;
out:
    if (rc)
        redisFree(rc);
    bn_samples_free(&rtt);
    bn_samples_free(&lib.gaps);
    bn_samples_free(&spin.gaps);
    return res;
}

/* ==== scenario 4: watchdog scale ==================================================== */

static double evalsha_calls(redisContext *c)
{
    double a = bn_info_number(c, "commandstats", "cmdstat_evalsha:calls");
    double b = bn_info_number(c, "commandstats", "cmdstat_eval:calls");
    return (a > 0 ? a : 0) + (b > 0 ? b : 0);
}

static double server_cpu_s(redisContext *c)
{
    double s = bn_info_number(c, "cpu", "used_cpu_sys");
    double u = bn_info_number(c, "cpu", "used_cpu_user");
    return (s < 0 || u < 0) ? NAN : s + u;
}

/* The library's renewal interval (DESIGN decision 6). */
static int64_t renew_interval_ms(int64_t ttl, int64_t floor_ms)
{
    int64_t iv = ttl / 3;
    if (iv < floor_ms)
        iv = floor_ms;
    if (iv > ttl / 2)
        iv = ttl / 2;
    return iv < 1 ? 1 : iv;
}

/* CPU seconds raw hiredis spends on one pipelined EVALSHA extend, measured
 * by renewing every held lock once, in batches of 1000.  NAN on failure. */
static double raw_renewal_cost(redisContext *rc, redlock_lock **locks, int n, int ttl_ms)
{
    double cpu0 = bn_cpu_thread_s();
    int done = 0;
    for (int i = 0; i < n; i += 1000) {
        int m = n - i < 1000 ? n - i : 1000;
        for (int k = 0; k < m; k++)
            redisAppendCommand(rc, "EVALSHA %s 1 %s %s %d", EXTEND_SHA,
                               redlock_key(locks[i + k]), redlock_token(locks[i + k]),
                               ttl_ms);
        for (int k = 0; k < m; k++) {
            void *r = NULL;
            if (redisGetReply(rc, &r) != REDIS_OK || r == NULL) {
                fprintf(stderr, "redlock-bench: pipelined EVALSHA: %s\n", rc->errstr);
                return NAN;
            }
            freeReplyObject(r);
            done++;
        }
    }
    return done ? (bn_cpu_thread_s() - cpu0) / done : NAN;
}

static int s4_variant(env *e, const char *label, int ttl_ms, int floor_ms, double window_s,
                      int targets, int sample_ms)
{
    int N = O.locks;
    int64_t iv = renew_interval_ms(ttl_ms, floor_ms > 0 ? floor_ms : 5000);
    progress("scenario 4 %s: %d locks kept alive (ttl %d ms, renewed every %lld ms), "
             "%.1f s window",
             label, N, ttl_ms, (long long)iv, window_s);
    redlock_options o;
    redlock_options_init(&o);
    if (floor_ms > 0)
        o.renew_floor_ms = floor_ms;
    redlock_client *c = lib_connect(e->urls, 1, &o);
    redisContext *rc = raw_connect(e->urls[0]);
    redlock_lock **locks = calloc((size_t)N, sizeof *locks);
    char (*keys)[96] = calloc((size_t)N, sizeof *keys);
    int res = -1, n = 0;
    if (c == NULL || rc == NULL || locks == NULL || keys == NULL)
        goto out;
    for (int i = 0; i < N; i++)
        snprintf(keys[i], sizeof keys[i], "%s:s4:%06d", e->prefix, i);
    size_t keylen = strlen(keys[0]);

    /* start the watchdog thread before measuring */
    {
        char wkey[96];
        snprintf(wkey, sizeof wkey, "%s:s4:warm", e->prefix);
        redlock_lock *l;
        redlock_status st = redlock_acquire(c, wkey, ttl_ms, 0, &l);
        if (st != REDLOCK_OK) {
            lib_fail("acquire", wkey, st);
            goto out;
        }
        redlock_keepalive(l);
        redlock_release(l);
    }

    /* the bookkeeping arrays are touched now, not while measuring */
    memset(locks, 0, (size_t)N * sizeof *locks);
    bn_heap_trim();
    long rss0 = bn_rss_kb();
    long long heap0 = bn_heap_in_use();
    int64_t ta0 = bn_now_ns();
    for (n = 0; n < N; n++) {
        redlock_status st = redlock_acquire(c, keys[n], ttl_ms, 0, &locks[n]);
        if (st != REDLOCK_OK) {
            lib_fail("acquire", keys[n], st);
            goto out;
        }
        st = redlock_keepalive(locks[n]);
        if (st != REDLOCK_OK) {
            lib_fail("keepalive", keys[n], st);
            n++;
            goto out;
        }
    }
    int64_t ta1 = bn_now_ns();
    long rss1 = bn_rss_kb();
    long long heap1 = bn_heap_in_use();
    int held0 = 0;
    for (int i = 0; i < n; i++)
        held0 += redlock_held(locks[i]);

    double ev0 = evalsha_calls(rc), scpu0 = server_cpu_s(rc);
    double cpu0 = bn_cpu_process_s();
    int64_t w0 = bn_now_ns(), wend = w0 + (int64_t)(window_s * 1e9);
    int64_t stall = 0;
    if (sample_ms > 0) {
        /* a short ttl loses locks to any stall of the machine: watch for
         * them with a periodic sleep (only here, where it costs nothing
         * next to the renewals) */
        for (int64_t t = w0 + sample_ms * 1000000; t < wend; t += sample_ms * 1000000) {
            bn_sleep_until_ns(t);
            int64_t late = bn_now_ns() - t;
            if (late > stall)
                stall = late;
        }
    }
    bn_sleep_until_ns(wend);
    double cpu1 = bn_cpu_process_s();
    int64_t w1 = bn_now_ns();
    double ev1 = evalsha_calls(rc), scpu1 = server_cpu_s(rc);
    double wall = (double)(w1 - w0) / 1e9;

    int held = 0;
    for (int i = 0; i < n; i++)
        held += redlock_held(locks[i]);

    double cost = raw_renewal_cost(rc, locks, n, ttl_ms);

    /* Release them one by one while the watchdog keeps the others alive.
     * A release that finds the key gone although the library believed the
     * lock held means the watchdog fell behind (the validity had run out),
     * or, with validity left, that the library's validity was wrong. */
    int64_t tr0 = bn_now_ns();
    int rel_failed = 0, expired = 0, wrong_validity = 0;
    int64_t expired_validity = 0;
    for (int i = 0; i < n; i++) {
        int was_held = redlock_held(locks[i]);
        int64_t validity = redlock_validity_ms(locks[i]);
        redlock_status st = redlock_release(locks[i]);
        locks[i] = NULL;
        if (st == REDLOCK_OK || (st == REDLOCK_NOT_HELD && !was_held))
            continue;
        if (st == REDLOCK_NOT_HELD) {
            expired++;
            if (validity > expired_validity)
                expired_validity = validity;
            /* a few ms may pass between reading it and Redis seeing the
             * release: only a clear margin counts as wrong */
            if (validity > 20) {
                if (wrong_validity++ == 0)
                    fprintf(stderr, "redlock-bench: release %s: NOT_HELD with %lld ms of "
                                    "validity left\n",
                            keys[i], (long long)validity);
            }
            continue;
        }
        if (rel_failed++ == 0)
            lib_fail("release", keys[i], st);
    }
    int64_t tr1 = bn_now_ns();

    char fig[96];
    double cpu_pct = 100.0 * (cpu1 - cpu0) / wall;
    double renew_rate = (ev1 - ev0) / wall;
    double base_pct = 100.0 * cost * renew_rate;
    snprintf(fig, sizeof fig, "%s: CPU per wall second", label);
    add_row(4, fig, "%", cpu_pct, base_pct, "raw pipelined", ratio_of(cpu_pct, base_pct),
            targets ? T_VALUE : T_NONE, "<", 5);
    snprintf(fig, sizeof fig, "%s: renewals/s (Redis count)", label);
    double expected = n / ((double)iv / 1000.0);
    add_row(4, fig, "/s", renew_rate, expected, "locks/interval",
            ratio_of(renew_rate, expected), T_NONE, "", 0);
    snprintf(fig, sizeof fig, "%s: RSS per held lock (key %zu B)", label, keylen);
    double per_lock = n > 0 && rss0 > 0 && rss1 > 0 ? (double)(rss1 - rss0) * 1024.0 / n : NAN;
    add_row(4, fig, "B", per_lock, NAN, "", NAN, targets ? T_VALUE : T_NONE, "<=",
            256.0 + (double)keylen);
    snprintf(fig, sizeof fig, "%s: heap per held lock (malloc, key %zu B)", label, keylen);
    double heap_lock = n > 0 && heap0 >= 0 && heap1 >= 0 ? (double)(heap1 - heap0) / n : NAN;
    add_row(4, fig, "B", heap_lock, NAN, "", NAN, targets ? T_VALUE : T_NONE, "<=",
            256.0 + (double)keylen);
    snprintf(fig, sizeof fig, "%s: locks lost while acquiring", label);
    add_row(4, fig, "", (double)(n - held0), NAN, "", NAN, T_VALUE, "<=", 0);
    snprintf(fig, sizeof fig, "%s: locks lost in the window", label);
    add_row(4, fig, "", (double)(held0 - held), NAN, "", NAN, T_VALUE, "<=", 0);
    if (sample_ms > 0) {
        snprintf(fig, sizeof fig, "%s: longest stall of a %d ms sleep", label, sample_ms);
        add_row(4, fig, "ms", (double)stall / 1e6, NAN, "", NAN, T_NONE, "", 0);
    }
    snprintf(fig, sizeof fig, "%s: expired while the others were released", label);
    add_row(4, fig, "", (double)expired, NAN, "", NAN, T_VALUE, "<=", 0);
    if (expired > 0) {
        snprintf(fig, sizeof fig, "%s: most validity left on one of those", label);
        add_row(4, fig, "ms", (double)expired_validity, NAN, "", NAN, T_VALUE, "<=", 20);
    }
    snprintf(fig, sizeof fig, "%s: redis-server CPU per wall second", label);
    add_row(4, fig, "%", 100.0 * (scpu1 - scpu0) / wall, NAN, "", NAN, T_NONE, "", 0);
    snprintf(fig, sizeof fig, "%s: acquire+keepalive of all", label);
    add_row(4, fig, "ms", (double)(ta1 - ta0) / 1e6, NAN, "", NAN, T_NONE, "", 0);
    snprintf(fig, sizeof fig, "%s: release of all", label);
    add_row(4, fig, "ms", (double)(tr1 - tr0) / 1e6, NAN, "", NAN, T_NONE, "", 0);
    if (rel_failed || wrong_validity) {
        fprintf(stderr, "redlock-bench: %d releases failed, %d found the key gone with "
                        "validity left\n",
                rel_failed, wrong_validity);
        goto out;
    }
    res = 0;
out:
    for (int i = 0; locks && i < n; i++)
        if (locks[i])
            redlock_release(locks[i]);
    free(locks);
    free(keys);
    if (rc)
        redisFree(rc);
    redlock_client_free(c);
    return res;
}

static int scenario4(env *e)
{
    int err = 0;
    if (s4_variant(e, "ttl 30 s", 30000, 0, O.window_s, 1, 0) != 0)
        err = -1;
    char label[64];
    snprintf(label, sizeof label, "ttl %d ms, floor %d ms", O.short_ttl_ms, O.short_floor_ms);
    if (s4_variant(e, label, O.short_ttl_ms, O.short_floor_ms, O.short_window_s, 0, 20) != 0)
        err = -1;
    return err;
}

/* ==== scenario 5: Redlock with N nodes ================================================ */

static int s5_mode(env *e, const char *label, const char *const *urls, int nurls)
{
    static const int ns[] = {1, 3, 5};
    bn_samples raw = {0};
    double p50[3] = {NAN, NAN, NAN};
    long cnt = 0;
    int64_t el = 0;
    int res = -1;
    char key[96];
    snprintf(key, sizeof key, "%s:s5", e->prefix);

    redisContext *rc = raw_connect(urls[0]);
    if (rc == NULL)
        goto out;
    bn_samples scratch = {0};
    int err = raw_pairs(rc, key, 1, part_budget(0, O.warmup), &scratch, &cnt, &el) ||
              raw_pairs(rc, key, 1, part_budget(O.duration_s, O.count), &raw, &cnt, &el);
    bn_samples_free(&scratch);
    redisFree(rc);
    if (err)
        goto out;
    double r50 = us(bn_percentile(&raw, 50)), r99 = us(bn_percentile(&raw, 99));

    for (int k = 0; k < 3; k++) {
        int n = ns[k];
        if (n > nurls) {
            progress("  %s: N=%d skipped (only %d URLs)", label, n, nurls);
            continue;
        }
        redlock_client *c = lib_connect(urls, (size_t)n, NULL);
        if (c == NULL)
            goto out;
        bn_samples pair = {0}, acq = {0}, rel = {0}, warm = {0};
        long pairs = 0;
        int64_t elapsed = 0;
        err = lib_pairs(c, key, part_budget(0, O.warmup), &warm, NULL, NULL, &pairs,
                        &elapsed) ||
              lib_pairs(c, key, part_budget(O.duration_s, O.count), &pair, &acq, &rel,
                        &pairs, &elapsed);
        redlock_client_free(c);
        if (!err) {
            char fig[96];
            double v50 = us(bn_percentile(&pair, 50)), v99 = us(bn_percentile(&pair, 99));
            p50[k] = v50;
            snprintf(fig, sizeof fig, "%s N=%d: acquire+release p50", label, n);
            add_row(5, fig, "us", v50, r50, "raw 1 node", ratio_of(v50, r50), T_NONE, "", 0);
            snprintf(fig, sizeof fig, "%s N=%d: acquire+release p99", label, n);
            add_row(5, fig, "us", v99, r99, "raw 1 node", ratio_of(v99, r99), T_NONE, "", 0);
            progress("  %s N=%d: acquire p50 %.0f us, release p50 %.0f us", label, n,
                     us(bn_percentile(&acq, 50)), us(bn_percentile(&rel, 50)));
        }
        bn_samples_free(&pair);
        bn_samples_free(&acq);
        bn_samples_free(&rel);
        bn_samples_free(&warm);
        if (err)
            goto out;
    }
    if (!isnan(p50[0]) && !isnan(p50[2])) {
        char fig[96];
        snprintf(fig, sizeof fig, "%s: N=5 / N=1 (p50)", label);
        add_row(5, fig, "x", p50[2] / p50[0], NAN, "", NAN, T_VALUE, "<=", 1.5);
    }
    res = 0;
out:
    bn_samples_free(&raw);
    return res;
}

static int scenario5(env *e)
{
    progress("scenario 5: Redlock, N = 1, 3, 5 nodes, loopback and +%lld us each way",
             (long long)O.delay_us);
    int err = 0;
    if (s5_mode(e, "loopback", e->urls, e->nurls) != 0)
        err = -1;

    /* the same through delay proxies */
    bn_proxy *px[REDLOCK_MAX_NODES] = {0};
    char purl[REDLOCK_MAX_NODES][640];
    const char *purls[REDLOCK_MAX_NODES];
    int n = e->nurls < S5_NODES ? e->nurls : S5_NODES;
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        bn_url u;
        int port;
        if (bn_url_parse(e->urls[i], &u) != 0 || u.is_unix) {
            progress("  delay proxy: %s is not a TCP URL: skipped", e->urls[i]);
            ok = 0;
            break;
        }
        px[i] = bn_proxy_start(u.host, u.port, O.delay_us, &port);
        if (px[i] == NULL) {
            ok = 0;
            err = -1;
            break;
        }
        char auth[400] = "";
        if (u.password[0] != '\0' || u.user[0] != '\0')
            snprintf(auth, sizeof auth, "%s%s%s@", u.user, u.password[0] ? ":" : "",
                     u.password);
        snprintf(purl[i], sizeof purl[i], "redis://%s127.0.0.1:%d/%d", auth, port, u.db);
        purls[i] = purl[i];
    }
    if (ok) {
        char label[64];
        if (O.delay_us % 1000 == 0)
            snprintf(label, sizeof label, "+%lld ms each way", (long long)(O.delay_us / 1000));
        else
            snprintf(label, sizeof label, "+%lld us each way", (long long)O.delay_us);
        if (s5_mode(e, label, purls, n) != 0)
            err = -1;
    }
    for (int i = 0; i < n; i++)
        bn_proxy_stop(px[i]);
    return err;
}

/* ==== scenario 7: TLS =================================================================== */

#define S7_CLIENTS_FULL 50 /* fresh clients and reconnects measured */
#define S7_CLIENTS_TINY 3

/* n fresh clients in turn: connect (TCP, TLS handshake, AUTH/scripts),
 * one pair, free; each sample the whole of it. */
static int s7_fresh(const char *url, const redlock_options *o, const char *key, int n,
                    bn_samples *out)
{
    for (int i = 0; i < n; i++) {
        int64_t t0 = bn_now_ns();
        redlock_client *c = lib_connect(&url, 1, o);
        if (c == NULL)
            return -1;
        redlock_lock *l;
        redlock_status st = redlock_acquire(c, key, TTL_MS, 0, &l);
        if (st == REDLOCK_OK)
            st = redlock_release(l);
        int64_t t1 = bn_now_ns();
        redlock_client_free(c);
        if (st != REDLOCK_OK) {
            lib_fail("fresh client pair", key, st);
            return -1;
        }
        bn_samples_push(out, t1 - t0);
    }
    return 0;
}

/* A reconnect of a live client: the server drops every connection but the
 * killer's (CLIENT KILL), then the time until a pair succeeds again.  Over
 * TLS the client offers the session it kept for the node: a resumed
 * handshake, the case of a Redis restart or a network blip. */
static int s7_reconnect(redlock_client *c, redisContext *killer, const char *key, int n,
                        bn_samples *out)
{
    for (int i = 0; i < n; i++) {
        redisReply *r = redisCommand(killer, "CLIENT KILL TYPE normal SKIPME yes");
        if (r == NULL || r->type != REDIS_REPLY_INTEGER || r->integer < 1) {
            fprintf(stderr, "redlock-bench: CLIENT KILL did not kill the client\n");
            if (r)
                freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
        int64_t t0 = bn_now_ns();
        redlock_status st = REDLOCK_IO;
        /* The first try may find the connection closed (IO): the next
         * connects again. */
        for (int k = 0; k < 100 && st == REDLOCK_IO; k++) {
            redlock_lock *l;
            st = redlock_acquire(c, key, TTL_MS, 0, &l);
            if (st == REDLOCK_OK)
                st = redlock_release(l);
        }
        int64_t t1 = bn_now_ns();
        if (st != REDLOCK_OK) {
            lib_fail("pair after CLIENT KILL", key, st);
            return -1;
        }
        bn_samples_push(out, t1 - t0);
    }
    return 0;
}

static int scenario7(env *e)
{
    progress("scenario 7 (tls): pairs/s over TLS, plaintext and raw hiredis on one "
             "redis-server; new clients and reconnects");
    if (O.nurls > 0)
        progress("  --url is not used: this scenario starts its own server with a TLS port");
    bn_server s;
    if (bn_server_start_tls(&s, O.redis_path, e->server_cpu, O.certdir) != 0)
        return -1;
    char ca[320], key[96];
    snprintf(ca, sizeof ca, "%s/ca.crt", O.certdir);
    snprintf(key, sizeof key, "%s:s7", e->prefix);
    redlock_options o;
    redlock_options_init(&o);
    o.tls_cacert = ca;
    const char *tls_url = s.tls_url, *plain_url = s.url;
    redlock_client *ct = lib_connect(&tls_url, 1, &o);
    redlock_client *cp = lib_connect(&plain_url, 1, NULL);
    redisContext *rc = raw_connect(plain_url);
    bn_samples lat[3] = {{0}}, scratch = {0}, fresh[2] = {{0}}, recon[2] = {{0}};
    long n[3] = {0}, wn = 0;
    int64_t t[3] = {0}, wt = 0;
    int res = -1;
    if (ct == NULL || cp == NULL || rc == NULL)
        goto out;
    if (lib_pairs(ct, key, part_budget(0, O.warmup), &scratch, NULL, NULL, &wn, &wt) ||
        lib_pairs(cp, key, part_budget(0, O.warmup), &scratch, NULL, NULL, &wn, &wt) ||
        raw_pairs(rc, key, 7, part_budget(0, O.warmup), &scratch, &wn, &wt))
        goto out;
    /* 0 TLS, 1 plaintext, 2 raw: each round a rotation, every other one
     * reversed, so that a drift of the machine weighs on all three. */
    for (int r = 0; r < O.rounds; r++) {
        double secs = O.duration_s / O.rounds;
        long cnt = O.count > 0 ? (O.count + O.rounds - 1) / O.rounds : 0;
        for (int k = 0; k < 3; k++) {
            int v = (r % 2 == 0) ? (r / 2 + k) % 3 : (r / 2 + 2 - k) % 3;
            budget b = part_budget(secs, cnt);
            int err = v == 2 ? raw_pairs(rc, key, 7, b, &lat[2], &n[2], &t[2])
                             : lib_pairs(v == 0 ? ct : cp, key, b, &lat[v], NULL, NULL,
                                         &n[v], &t[v]);
            if (err)
                goto out;
        }
    }
    double rate[3];
    for (int v = 0; v < 3; v++)
        rate[v] = n[v] / (t[v] / 1e9);
    add_row(7, "TLS: acquire+release pairs/s", "/s", rate[0], rate[2], "raw hiredis plain",
            ratio_of(rate[0], rate[2]), T_NONE, "", 0);
    add_row(7, "plaintext: acquire+release pairs/s", "/s", rate[1], rate[2],
            "raw hiredis plain", ratio_of(rate[1], rate[2]), T_NONE, "", 0);
    add_row(7, "TLS: pairs/s against plaintext", "/s", rate[0], rate[1], "libredlock plain",
            ratio_of(rate[0], rate[1]), T_NONE, "", 0);
    double p50[3], p99[3];
    for (int v = 0; v < 3; v++) {
        p50[v] = us(bn_percentile(&lat[v], 50));
        p99[v] = us(bn_percentile(&lat[v], 99));
    }
    add_row(7, "TLS: pair latency p50", "us", p50[0], p50[1], "libredlock plain",
            ratio_of(p50[0], p50[1]), T_NONE, "", 0);
    add_row(7, "TLS: pair latency p99", "us", p99[0], p99[1], "libredlock plain",
            ratio_of(p99[0], p99[1]), T_NONE, "", 0);

    /* New connections: fresh clients (a full handshake each: the library
     * keeps sessions per client, not per process), then reconnects of a
     * live client (resumed). */
    int nc = O.tiny ? S7_CLIENTS_TINY : S7_CLIENTS_FULL;
    if (s7_fresh(tls_url, &o, key, nc, &fresh[0]) || s7_fresh(plain_url, NULL, key, nc, &fresh[1]))
        goto out;
    double f_first[2] = {us(fresh[0].v[0]), us(fresh[1].v[0])};
    double f50[2] = {us(bn_percentile(&fresh[0], 50)), us(bn_percentile(&fresh[1], 50))};
    add_row(7, "new client: connect+pair, TLS, the first", "us", f_first[0], f_first[1],
            "the same, plain", ratio_of(f_first[0], f_first[1]), T_NONE, "", 0);
    add_row(7, "new client: connect+pair, TLS, p50", "us", f50[0], f50[1],
            "the same, plain", ratio_of(f50[0], f50[1]), T_NONE, "", 0);
    if (s7_reconnect(ct, rc, key, nc, &recon[0]) || s7_reconnect(cp, rc, key, nc, &recon[1]))
        goto out;
    double r50[2] = {us(bn_percentile(&recon[0], 50)), us(bn_percentile(&recon[1], 50))};
    add_row(7, "reconnect+pair, TLS (resumed session), p50", "us", r50[0], r50[1],
            "the same, plain", ratio_of(r50[0], r50[1]), T_NONE, "", 0);
    add_row(7, "TLS: reconnect (resumed) against new client", "us", r50[0], f50[0],
            "TLS new client", ratio_of(r50[0], f50[0]), T_NONE, "", 0);
    progress("  TLS %.0f pairs/s, plaintext %.0f, raw %.0f; new TLS client p50 %.0f us, "
             "reconnect p50 %.0f us", rate[0], rate[1], rate[2], f50[0], r50[0]);
    res = 0;
out:
    for (int v = 0; v < 3; v++)
        bn_samples_free(&lat[v]);
    for (int v = 0; v < 2; v++) {
        bn_samples_free(&fresh[v]);
        bn_samples_free(&recon[v]);
    }
    bn_samples_free(&scratch);
    if (rc)
        redisFree(rc);
    redlock_client_free(ct);
    redlock_client_free(cp);
    bn_server_stop(&s);
    return res;
}

/* ==== scenario 8: Redis Cluster ========================================================== */

#define S8_MIGRATIONS_FULL 200 /* slots migrated under the client [--migrations] */
#define S8_MIGRATIONS_TINY 5
#define S8_AFTER 10 /* pairs timed after each first-after-move pair */
#define S8_CTL 3    /* pairs on an unmoved key between a move and its MOVED */
#define S8_MASTER 0 /* the master of part (a)'s key */

/* CLUSTER SLOTS calls counted so far by the six nodes (INFO commandstats,
 * cmdstat_cluster|slots): the client's map reads, as long as nothing else
 * asks between two readings (the helper's waits do: read around the
 * client's pairs only).  -1 on failure. */
static double s8_map_reads(redisContext *const *info)
{
    double sum = 0;
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        double v = bn_info_number(info[i], "commandstats", "cmdstat_cluster|slots:calls");
        if (v < 0 && info[i]->err) {
            fprintf(stderr, "redlock-bench: INFO commandstats on node %d: %s\n", i,
                    info[i]->errstr);
            return -1;
        }
        if (v > 0)
            sum += v; /* absent: never called */
    }
    return sum;
}

/* total_commands_processed of one node (INFO stats); the INFO that reads
 * it is counted by the next reading.  -1 on failure. */
static double s8_commands(redisContext *c)
{
    return bn_info_number(c, "stats", "total_commands_processed");
}

/* CPU time of the whole process (every thread) in ns. */
static int64_t s8_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One acquire+release pair on key: its duration in ns, or -1. */
static int64_t s8_pair(redlock_client *c, const char *key)
{
    int64_t t0 = bn_now_ns();
    redlock_lock *l;
    redlock_status st = redlock_acquire(c, key, TTL_MS, 0, &l);
    if (st != REDLOCK_OK) {
        lib_fail("acquire", key, st);
        return -1;
    }
    st = redlock_release(l);
    if (st != REDLOCK_OK) {
        lib_fail("release", key, st);
        return -1;
    }
    return bn_now_ns() - t0;
}

/* A key "{<prefix><n>}" (the first n that fits) whose slot `master` serves
 * by owner[]: its own hash tag, so that the names a single-node client
 * derives from it (the queue "<key>:redlock:sq") share its slot, which a
 * cluster node wants of a script's keys.  The slot, or -1. */
static int s8_tagged_key(const short *owner, int master, const char *prefix, char *out,
                         size_t len)
{
    for (int n = 0; n < 1000000; n++) {
        int w = snprintf(out, len, "{%s%d}", prefix, n);
        if (w < 0 || (size_t)w >= len)
            break;
        int slot = rt_cluster_hash_slot(out, (size_t)w);
        if (owner[slot] == master)
            return slot;
    }
    fprintf(stderr, "redlock-bench: no key on master %d\n", master);
    return -1;
}

/* 1 when the node has the script `sha` in its cache, 0 not, -1 error. */
static int s8_script_exists(redisContext *c, const char *sha)
{
    redisReply *r = redisCommand(c, "SCRIPT EXISTS %s", sha);
    int res = -1;
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_INTEGER)
        res = r->element[0]->integer == 1;
    if (r)
        freeReplyObject(r);
    return res;
}

/* (a) Pairs/s on one key of master S8_MASTER: 0 the cluster URL, 1 a plain
 * redis:// URL to that master, 2 raw hiredis to it (the baseline: SET NX
 * PX, EVALSHA of the release script the library sends on a cluster URL),
 * in rounds rotating as in scenario 7.  The master's commands per pair
 * (INFO stats) say whether a client sends anything more.  The redis://
 * client uses the one-node queue (its release script names the queue key
 * and LPOPs it where the cluster client's asks PUBSUB NUMSUB): the same
 * number of commands. */
static int s8_steady(env *e, rt_cluster *k, redlock_client *cc, redisContext *const *info,
                     const short *owner)
{
    char pre[96], key[128];
    snprintf(pre, sizeof pre, "%s:s8:a", e->prefix);
    if (s8_tagged_key(owner, S8_MASTER, pre, key, sizeof key) < 0)
        return -1;
    const char *purl = k->srv[S8_MASTER].url;
    redisContext *mi = info[S8_MASTER], *rc = NULL;
    redlock_client *cp = NULL;
    bn_samples lat[3] = {{0}}, scratch = {0};
    long n[3] = {0}, wn = 0;
    int64_t t[3] = {0}, wt = 0;
    double cmds[3] = {0, 0, 0};
    int res = -1;
    /* The cluster client first: the master then caches its release script
     * (EVALSHA, NOSCRIPT, EVAL), which must be the baseline's. */
    if (lib_pairs(cc, key, part_budget(0, O.warmup), &scratch, NULL, NULL, &wn, &wt))
        goto out;
    int exists = s8_script_exists(mi, CLUSTER_RELEASE_SHA);
    if (exists != 1) {
        fprintf(stderr, "redlock-bench: %s: the library's release script is not the "
                        "baseline's (bench/redlock-bench.c CLUSTER_RELEASE_LUA is out of "
                        "date with src/scripts.c)\n",
                exists < 0 ? "SCRIPT EXISTS failed" : "no SCRIPT EXISTS " CLUSTER_RELEASE_SHA);
        goto out;
    }
    bn_url u;
    if ((cp = lib_connect(&purl, 1, NULL)) == NULL || bn_url_parse(purl, &u) != 0 ||
        (rc = bn_url_connect(&u, IO_TIMEOUT_MS)) == NULL ||
        bn_script_load(rc, CLUSTER_RELEASE_LUA, CLUSTER_RELEASE_SHA) != 0)
        goto out;
    if (lib_pairs(cp, key, part_budget(0, O.warmup), &scratch, NULL, NULL, &wn, &wt) ||
        raw_pairs_sha(rc, CLUSTER_RELEASE_SHA, key, 8, part_budget(0, O.warmup), &scratch,
                      &wn, &wt))
        goto out;
    double reads0 = s8_map_reads(info);
    for (int r = 0; r < O.rounds; r++) {
        double secs = O.duration_s / O.rounds;
        long cnt = O.count > 0 ? (O.count + O.rounds - 1) / O.rounds : 0;
        for (int q = 0; q < 3; q++) {
            int v = (r % 2 == 0) ? (r / 2 + q) % 3 : (r / 2 + 2 - q) % 3;
            double c0 = s8_commands(mi);
            budget b = part_budget(secs, cnt);
            int err = v == 2 ? raw_pairs_sha(rc, CLUSTER_RELEASE_SHA, key, 8, b, &lat[2],
                                             &n[2], &t[2])
                             : lib_pairs(v == 0 ? cc : cp, key, b, &lat[v], NULL, NULL,
                                         &n[v], &t[v]);
            double c1 = s8_commands(mi);
            if (err || c0 < 0 || c1 < 0)
                goto out;
            cmds[v] += c1 - c0 - 1; /* the INFO of c0 */
        }
    }
    double reads1 = s8_map_reads(info);
    if (reads0 < 0 || reads1 < 0)
        goto out;
    double rate[3], p50[3], p99[3], per[3];
    for (int v = 0; v < 3; v++) {
        rate[v] = n[v] / (t[v] / 1e9);
        p50[v] = us(bn_percentile(&lat[v], 50));
        p99[v] = us(bn_percentile(&lat[v], 99));
        per[v] = n[v] > 0 ? cmds[v] / n[v] : NAN;
    }
    const char *raw = "raw hiredis to the master";
    add_row(8, "cluster URL: acquire+release pairs/s", "/s", rate[0], rate[2], raw,
            ratio_of(rate[0], rate[2]), T_NONE, "", 0);
    add_row(8, "redis:// URL to the master: pairs/s", "/s", rate[1], rate[2], raw,
            ratio_of(rate[1], rate[2]), T_NONE, "", 0);
    add_row(8, "cluster URL: pairs/s against redis://", "/s", rate[0], rate[1],
            "libredlock redis://", ratio_of(rate[0], rate[1]), T_RATIO, ">=", 0.95);
    add_row(8, "cluster URL: pair latency p50", "us", p50[0], p50[1], "libredlock redis://",
            ratio_of(p50[0], p50[1]), T_NONE, "", 0);
    add_row(8, "cluster URL: pair latency p99", "us", p99[0], p99[1], "libredlock redis://",
            ratio_of(p99[0], p99[1]), T_NONE, "", 0);
    add_row(8, "redis:// URL: pair latency p50", "us", p50[1], p50[2], raw,
            ratio_of(p50[1], p50[2]), T_NONE, "", 0);
    add_row(8, "cluster URL: master's commands per pair", "", per[0], per[2], raw,
            ratio_of(per[0], per[2]), T_NONE, "", 0);
    add_row(8, "redis:// URL: master's commands per pair", "", per[1], per[2], raw,
            ratio_of(per[1], per[2]), T_NONE, "", 0);
    add_row(8, "cluster URL: map reads in these pairs", "", reads1 - reads0, NAN, "", NAN,
            T_VALUE, "<=", 0);
    progress("  cluster URL %.0f pairs/s, redis:// %.0f, raw hiredis %.0f (master %d, key %s)",
             rate[0], rate[1], rate[2], S8_MASTER, key);
    res = 0;
out:
    for (int v = 0; v < 3; v++)
        bn_samples_free(&lat[v]);
    bn_samples_free(&scratch);
    if (rc)
        redisFree(rc);
    redlock_client_free(cp);
    return res;
}

/* The slots part (b) migrates, and a key of each: in reshard order
 * (default), the O.migrations slots of master S8_MASTER just below a
 * boundary with another master, highest first, each to that master (whose
 * range so grows by one: the map keeps its number of ranges); with
 * --scattered, the slots of keys "<prefix><n>" as they come, each from its
 * master to the next (every move cuts a range: the map grows by up to two
 * ranges a move).  Fills slot[], from[], to[] and keys (128 bytes each).
 * 0 or -1. */
static int s8_plan(const short *owner, const char *prefix, int m, int *slot, int *from,
                   int *to, char (*keys)[128])
{
    int *want = NULL; /* slot -> index + 1 in slot[], reshard order */
    if (O.scattered) {
        for (int n = 0, i = 0; i < m; n++) {
            snprintf(keys[i], 128, "%s%d", prefix, n);
            int sl = rt_cluster_hash_slot(keys[i], strlen(keys[i]));
            int same = 0;
            for (int j = 0; j < i && !same; j++)
                same = slot[j] == sl;
            if (same)
                continue; /* a slot moves once: a MOVED each time */
            if (owner[sl] < 0 || owner[sl] >= RT_CLUSTER_MASTERS) {
                fprintf(stderr, "redlock-bench: slot %d has no master\n", sl);
                return -1;
            }
            slot[i] = sl;
            from[i] = owner[sl];
            to[i] = (owner[sl] + 1) % RT_CLUSTER_MASTERS;
            i++;
        }
        return 0;
    }
    int top = -1;
    for (int sl = 0; sl + 1 < RT_CLUSTER_SLOTS && top < 0; sl++)
        if (owner[sl] == S8_MASTER && owner[sl + 1] >= 0 && owner[sl + 1] != S8_MASTER)
            top = sl;
    int run = 0;
    while (top >= 0 && top - run >= 0 && owner[top - run] == S8_MASTER)
        run++;
    if (top < 0 || run < m) {
        fprintf(stderr, "redlock-bench: no %d contiguous slots on master %d to migrate "
                        "(--migrations fewer, or --scattered)\n", m, S8_MASTER);
        return -1;
    }
    want = calloc(RT_CLUSTER_SLOTS, sizeof *want);
    if (want == NULL)
        return -1;
    for (int i = 0; i < m; i++) {
        slot[i] = top - i;
        from[i] = S8_MASTER;
        to[i] = owner[top + 1];
        keys[i][0] = '\0';
        want[slot[i]] = i + 1;
    }
    /* a key for each: names tried in turn, about 16384 * ln(m) of them */
    for (int n = 0, left = m; left > 0; n++) {
        char key[128];
        snprintf(key, sizeof key, "%s%d", prefix, n);
        int w = want[rt_cluster_hash_slot(key, strlen(key))];
        if (w > 0 && keys[w - 1][0] == '\0') {
            memcpy(keys[w - 1], key, sizeof key);
            left--;
        }
    }
    free(want);
    return 0;
}

/* A key "<prefix><n>" on master S8_MASTER whose slot is none of slot[0..m):
 * it never moves.  The slot, or -1. */
static int s8_control_key(const short *owner, const char *prefix, const int *slot, int m,
                          char *out, size_t len)
{
    for (int n = 0; n < 1000000; n++) {
        int w = snprintf(out, len, "%s%d", prefix, n);
        if (w < 0 || (size_t)w >= len)
            break;
        int sl = rt_cluster_hash_slot(out, (size_t)w), planned = 0;
        for (int i = 0; i < m && !planned; i++)
            planned = slot[i] == sl;
        if (owner[sl] == S8_MASTER && !planned)
            return sl;
    }
    fprintf(stderr, "redlock-bench: no control key on master %d\n", S8_MASTER);
    return -1;
}

/* (b) The cost of a MOVED.  O.migrations times (slots from s8_plan): the
 * slot is migrated (rt_cluster_migrate: SETSLOT IMPORTING/MIGRATING,
 * MIGRATE of its keys, SETSLOT NODE on every master, then a wait until
 * every node's CLUSTER SLOTS agrees), the client having done nothing
 * meanwhile; then S8_CTL pairs on a control key whose slot did not move
 * (the first and the last timed: the first pays what the helper's work left
 * behind, the nodes' gossip and cold caches; the last is the warm state the
 * MOVED meets), the first pair on the moved key (pays the MOVED; its
 * process CPU time too), and S8_AFTER pairs on it (pay none).  Map reads
 * are counted around each; then a raw CLUSTER SLOTS round trip is timed on
 * the new owner (the read a MOVED brings along), outside those counts. */
static int s8_moves(env *e, rt_cluster *k, redlock_client *cc, redisContext *const *info,
                    short *owner)
{
    int m = O.migrations;
    bn_samples ctl = {0}, ctl_last = {0}, first = {0}, after = {0}, slots_rt = {0};
    bn_samples first_cpu = {0}, after_cpu = {0}, scratch = {0};
    int *slot = calloc((size_t)m, sizeof *slot), *from = calloc((size_t)m, sizeof *from),
        *to = calloc((size_t)m, sizeof *to);
    char(*keys)[128] = calloc((size_t)m, sizeof *keys);
    double reads_ctl = 0, reads_first = 0, reads_after = 0;
    long wn = 0, ranges = 0;
    int64_t wt = 0, t_begin = bn_now_ns();
    int res = -1, done = 0;
    char pre[96], ckey[128];
    if (slot == NULL || from == NULL || to == NULL || keys == NULL)
        goto out;
    /* every master once: its connection open, the scripts in its cache */
    for (int i = 0; i < RT_CLUSTER_MASTERS; i++) {
        char key[128];
        snprintf(pre, sizeof pre, "%s:s8:w%d:", e->prefix, i);
        if (rt_cluster_key_on(k, i, pre, key, sizeof key) < 0 ||
            lib_pairs(cc, key, part_budget(0, O.warmup), &scratch, NULL, NULL, &wn, &wt))
            goto out;
    }
    snprintf(pre, sizeof pre, "%s:s8:mv:", e->prefix);
    if (s8_plan(owner, pre, m, slot, from, to, keys) != 0)
        goto out;
    snprintf(pre, sizeof pre, "%s:s8:ctl", e->prefix);
    if (s8_control_key(owner, pre, slot, m, ckey, sizeof ckey) < 0)
        goto out;
    for (int i = 0; i < m; i++) {
        if (rt_cluster_migrate(k, slot[i], from[i], to[i]) != 0)
            goto out;
        owner[slot[i]] = (short)to[i];
        double m0 = s8_map_reads(info);
        for (int q = 0; q < S8_CTL; q++) {
            int64_t ns = s8_pair(cc, ckey);
            if (ns < 0)
                goto out;
            if (q == 0)
                bn_samples_push(&ctl, ns);
            if (q == S8_CTL - 1)
                bn_samples_push(&ctl_last, ns);
        }
        double m1 = s8_map_reads(info);
        int64_t cpu = s8_cpu_ns(), f_ns = s8_pair(cc, keys[i]);
        int64_t f_cpu = s8_cpu_ns() - cpu;
        double m2 = s8_map_reads(info);
        if (m0 < 0 || m1 < 0 || m2 < 0 || f_ns < 0)
            goto out;
        bn_samples_push(&first, f_ns);
        bn_samples_push(&first_cpu, f_cpu);
        for (int a = 0; a < S8_AFTER; a++) {
            cpu = s8_cpu_ns();
            int64_t ns = s8_pair(cc, keys[i]);
            if (ns < 0)
                goto out;
            bn_samples_push(&after, ns);
            bn_samples_push(&after_cpu, s8_cpu_ns() - cpu);
        }
        double m3 = s8_map_reads(info);
        if (m3 < 0)
            goto out;
        reads_ctl += m1 - m0;
        reads_first += m2 - m1;
        reads_after += m3 - m2;
        int64_t t0 = bn_now_ns();
        redisReply *r = redisCommand(info[to[i]], "CLUSTER SLOTS");
        int64_t t1 = bn_now_ns();
        if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "redlock-bench: CLUSTER SLOTS on node %d failed\n", to[i]);
            if (r)
                freeReplyObject(r);
            goto out;
        }
        ranges = (long)r->elements;
        freeReplyObject(r);
        bn_samples_push(&slots_rt, t1 - t0);
        done++;
    }
    double f50 = us(bn_percentile(&first, 50)), f99 = us(bn_percentile(&first, 99));
    double a50 = us(bn_percentile(&after, 50)), a99 = us(bn_percentile(&after, 99));
    double c50 = us(bn_percentile(&ctl, 50)), s50 = us(bn_percentile(&slots_rt, 50));
    double l50 = us(bn_percentile(&ctl_last, 50));
    double fc50 = us(bn_percentile(&first_cpu, 50)), ac50 = us(bn_percentile(&after_cpu, 50));
    const char *st = "pairs after it";
    char fig[96];
    add_row(8, "MOVED: first pair after a move p50", "us", f50, a50, st, ratio_of(f50, a50),
            T_NONE, "", 0);
    add_row(8, "MOVED: first pair after a move p99", "us", f99, a99, st, ratio_of(f99, a99),
            T_NONE, "", 0);
    add_row(8, "MOVED: its extra time, p50", "us", f50 - a50, a50 / 2,
            "a round trip (pair p50 / 2)", ratio_of(f50 - a50, a50 / 2), T_NONE, "", 0);
    snprintf(fig, sizeof fig, "raw CLUSTER SLOTS round trip p50 (%ld ranges at the end)",
             ranges);
    add_row(8, fig, "us", s50, a50 / 2, "a round trip (pair p50 / 2)", ratio_of(s50, a50 / 2),
            T_NONE, "", 0);
    add_row(8, "MOVED: client CPU of the first pair p50", "us", fc50, ac50, st,
            ratio_of(fc50, ac50), T_NONE, "", 0);
    add_row(8, "unmoved key, first pair after a move p50", "us", c50, a50, st,
            ratio_of(c50, a50), T_NONE, "", 0);
    snprintf(fig, sizeof fig, "unmoved key, pair %d after a move p50 (then the MOVED)",
             S8_CTL);
    add_row(8, fig, "us", l50, a50, st, ratio_of(l50, a50), T_NONE, "", 0);
    snprintf(fig, sizeof fig, "map reads per MOVED (%d moves, %s)", done,
             O.scattered ? "scattered" : "reshard order");
    add_row(8, fig, "", done ? reads_first / done : NAN, NAN, "", NAN, T_VALUE, "<=", 1);
    snprintf(fig, sizeof fig, "map reads in the %d pairs after the MOVEDs", done * S8_AFTER);
    add_row(8, fig, "", reads_after, NAN, "", NAN, T_VALUE, "<=", 0);
    snprintf(fig, sizeof fig, "map reads in the %d unmoved-key pairs", done * S8_CTL);
    add_row(8, fig, "", reads_ctl, NAN, "", NAN, T_VALUE, "<=", 0);
    progress("  %d slots migrated (%s) in %.1f s: first pair after a move p50 %.0f us, "
             "after it %.0f us; %.0f map reads in the first pairs, %.0f after; %ld ranges",
             done, O.scattered ? "scattered" : "reshard order",
             (double)(bn_now_ns() - t_begin) / 1e9, f50, a50, reads_first, reads_after,
             ranges);
    res = 0;
out:
    bn_samples_free(&ctl);
    bn_samples_free(&ctl_last);
    bn_samples_free(&first);
    bn_samples_free(&after);
    bn_samples_free(&first_cpu);
    bn_samples_free(&after_cpu);
    bn_samples_free(&slots_rt);
    bn_samples_free(&scratch);
    free(slot);
    free(from);
    free(to);
    free(keys);
    return res;
}

static int scenario8(env *e)
{
    char load[32];
    bn_loadavg(load, sizeof load);
    progress("scenario 8 (cluster): 3 masters + 3 replicas; pairs/s against redis:// and raw "
             "hiredis, then %d slots migrated under the client (load %s)",
             O.migrations, load);
    if (O.nurls > 0)
        progress("  --url is not used: this scenario starts its own cluster");
    /* Every node (and redis-cli) inherits the CPU of the thread that forks
     * it: all six on the servers' CPU, then the benchmark back on its own. */
    rt_cluster k;
    int started = bn_pin_self(e->server_cpu) == 0 && rt_cluster_start(&k) == 0;
    if (bn_pin_self(e->bench_cpu) != 0 || !started) {
        if (started)
            rt_cluster_stop(&k);
        return -1;
    }
    redisContext *info[RT_CLUSTER_NODES] = {NULL};
    redlock_client *cc = NULL;
    short *owner = malloc(RT_CLUSTER_SLOTS * sizeof *owner);
    int res = -1;
    if (owner == NULL || rt_cluster_slot_map(&k, S8_MASTER, owner) != 0) {
        fprintf(stderr, "redlock-bench: cannot read the cluster's slot map\n");
        goto out;
    }
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        bn_url u;
        if (bn_url_parse(k.srv[i].url, &u) != 0 ||
            (info[i] = bn_url_connect(&u, IO_TIMEOUT_MS)) == NULL)
            goto out;
    }
    const char *curl = k.url;
    if ((cc = lib_connect(&curl, 1, NULL)) == NULL)
        goto out;
    if (s8_steady(e, &k, cc, info, owner) != 0 || s8_moves(e, &k, cc, info, owner) != 0)
        goto out;
    res = 0;
out:
    free(owner);
    redlock_client_free(cc);
    for (int i = 0; i < RT_CLUSTER_NODES; i++)
        if (info[i])
            redisFree(info[i]);
    rt_cluster_stop(&k); /* every node killed by its pid, its directory removed */
    bn_loadavg(load, sizeof load);
    progress("  scenario 8 done (load %s)", load);
    return res;
}

/* ---- output --------------------------------------------------------------------------- */

static void fmt_num(char *buf, size_t len, double v)
{
    if (isnan(v) || isinf(v))
        snprintf(buf, len, "-");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, len, "%.0f", v);
    else if (fabs(v) >= 1000)
        snprintf(buf, len, "%.0f", v);
    else if (fabs(v) >= 100)
        snprintf(buf, len, "%.1f", v);
    else
        snprintf(buf, len, "%.3g", v);
    /* a value that is not whole must not look whole (8.0004 is not 8) */
    if (v != floor(v) && strchr(buf, '.') == NULL && strchr(buf, 'e') == NULL &&
        fabs(v) < 100) {
        snprintf(buf, len, "%.2f", v);
        if (strstr(buf, ".00") != NULL)
            snprintf(buf, len, "%.6g", v);
    }
}

static char cpu_model[128] = "unknown";
static char redis_version[32] = "unknown";
static char date_utc[32];
static struct utsname uts;

static const char *sanitizers(void)
{
#if defined(__SANITIZE_THREAD__)
    return "thread";
#elif defined(__SANITIZE_ADDRESS__)
    return "address";
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    return "thread";
#elif __has_feature(address_sanitizer)
    return "address";
#else
    return "none";
#endif
#else
    return "none";
#endif
}

static void machine_info(void)
{
    uname(&uts);
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *p = strchr(line, ':');
                if (p) {
                    p++;
                    while (*p == ' ')
                        p++;
                    p[strcspn(p, "\n")] = '\0';
                    snprintf(cpu_model, sizeof cpu_model, "%s", p);
                }
                break;
            }
        }
        fclose(f);
    }
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date_utc, sizeof date_utc, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void print_table(void)
{
    int first = 0, second = 0;
    int allowed = bn_cpus_allowed(&first, &second);
    printf("redlock-bench: libredlock %s%s%s, %s UTC\n", redlock_version(),
           O.label ? ", " : "", O.label ? O.label : "", date_utc);
    printf("machine: %s %s %s, %s, %ld CPUs online, %d allowed\n", uts.sysname, uts.release,
           uts.machine, cpu_model, sysconf(_SC_NPROCESSORS_ONLN), allowed);
    printf("redis-server %s, hiredis %d.%d.%d, compiler %s, build %s, sanitizers %s\n",
           redis_version, HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH, __VERSION__,
           BENCH_BUILD_TYPE[0] ? BENCH_BUILD_TYPE : "?", sanitizers());
    for (int i = 0; i < O.nplacements; i++) {
        int p = O.placements[i];
        if (p == PL_PINNED)
            printf("placement pinned: benchmark and redis-server(s) on CPU %d\n", O.pin_cpu);
        else if (p == PL_SPLIT)
            printf("placement split: redis-server(s) on CPU %d, benchmark on CPU %d\n",
                   O.pin_cpu, O.split_cpu);
        else
            printf("placement none: nothing pinned\n");
    }
    if (O.count > 0)
        printf("count %ld per part", O.count);
    else
        printf("duration %.2f s per part", O.duration_s);
    printf(", %d threads, %d locks, proxy delay %lld us%s\n", O.threads, O.locks,
           (long long)O.delay_us, O.tiny ? ", TINY (smoke run, figures meaningless)" : "");
    if (O.scenarios & (1u << 6)) {
        printf("scenario 6: waiters");
        for (int i = 0; i < O.nwsizes; i++)
            printf("%s%d", i ? "," : " ", O.wsizes[i]);
        printf(", %.3g s per run, %d us section, %g %% killed\n", O.wduration_s,
               O.section_us, O.kill_pct);
    }
    if (O.scenarios & (1u << 8))
        printf("scenario 8: a cluster of 3 masters + 3 replicas, every node where the\n"
               "redis-servers are placed; %d slots migrated (%s), %d pairs timed after\n"
               "each\n",
               O.migrations, O.scattered ? "scattered" : "reshard order", S8_AFTER);
    printf("load average (1, 5, 15 min): %s at the start, %s at the end\n\n", load_start,
           load_end);

    int wf = (int)strlen("figure"), wb = (int)strlen("baseline is");
    for (int i = 0; i < nrows; i++) {
        int l = (int)strlen(rows[i].figure);
        if (l > wf)
            wf = l;
        l = (int)strlen(rows[i].baseline_is);
        if (l > wb)
            wb = l;
    }
    printf("%-7s %-2s  %-*s  %10s %-3s  %10s  %-*s  %7s  %-15s %s\n", "place", "sc", wf,
           "figure", "value", "", "baseline", wb, "baseline is", "ratio", "target", "meets");
    for (int i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        char v[32], b[32], q[32];
        fmt_num(v, sizeof v, r->value);
        fmt_num(b, sizeof b, r->baseline);
        if (isnan(r->ratio))
            snprintf(q, sizeof q, "-");
        else
            snprintf(q, sizeof q, "%.3f", r->ratio);
        printf("%-7s %-2d  %-*s  %10s %-3s  %10s  %-*s  %7s  %-15s %s\n", r->placement,
               r->scenario, wf, r->figure, v, r->unit, b, wb,
               r->baseline_is[0] ? r->baseline_is : "-", q, r->target[0] ? r->target : "-",
               r->meets < 0 ? "-" : r->meets ? "yes" : "NO");
    }
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void json_num(double v)
{
    if (isnan(v) || isinf(v))
        printf("null");
    else
        printf("%.6g", v);
}

static void print_json(void)
{
    int allowed = bn_cpus_allowed(NULL, NULL);
    printf("{\"benchmark\":\"redlock-bench\",\"library_version\":");
    json_str(redlock_version());
    printf(",\"label\":");
    if (O.label)
        json_str(O.label);
    else
        printf("null");
    printf(",\"date\":");
    json_str(date_utc);
    printf(",\"machine\":{\"kernel\":");
    json_str(uts.release);
    printf(",\"arch\":");
    json_str(uts.machine);
    printf(",\"cpu_model\":");
    json_str(cpu_model);
    printf(",\"cpus_online\":%ld,\"cpus_allowed\":%d}", sysconf(_SC_NPROCESSORS_ONLN),
           allowed);
    printf(",\"redis_version\":");
    json_str(redis_version);
    printf(",\"hiredis_version\":\"%d.%d.%d\",\"compiler\":", HIREDIS_MAJOR, HIREDIS_MINOR,
           HIREDIS_PATCH);
    json_str(__VERSION__);
    printf(",\"build_type\":");
    json_str(BENCH_BUILD_TYPE);
    printf(",\"sanitizers\":");
    json_str(sanitizers());
    printf(",\"options\":{\"duration_s\":");
    json_num(O.duration_s);
    printf(",\"count\":%ld,\"threads\":%d,\"locks\":%d,\"delay_us\":%lld,\"tiny\":%s,"
           "\"short_ttl_ms\":%d,\"short_floor_ms\":%d,\"window_s\":",
           O.count, O.threads, O.locks, (long long)O.delay_us, O.tiny ? "true" : "false",
           O.short_ttl_ms, O.short_floor_ms);
    json_num(O.window_s);
    printf(",\"short_window_s\":");
    json_num(O.short_window_s);
    printf(",\"waiters\":[");
    for (int i = 0; i < O.nwsizes; i++)
        printf("%s%d", i ? "," : "", O.wsizes[i]);
    printf("],\"waiter_duration_s\":");
    json_num(O.wduration_s);
    printf(",\"section_us\":%d,\"kill_percent\":", O.section_us);
    json_num(O.kill_pct);
    printf(",\"migrations\":%d,\"scattered\":%s", O.migrations,
           O.scattered ? "true" : "false");
    printf(",\"external_urls\":%s}", O.nurls > 0 ? "true" : "false");
    printf(",\"command\":");
    json_str(cmdline);
    printf(",\"loadavg_start\":");
    json_str(load_start);
    printf(",\"loadavg_end\":");
    json_str(load_end);
    printf(",\"placements\":[");
    for (int i = 0; i < O.nplacements; i++) {
        int p = O.placements[i];
        printf("%s{\"name\":\"%s\",\"bench_cpu\":%d,\"server_cpu\":%d}", i ? "," : "",
               placement_names[p], p == PL_PINNED ? O.pin_cpu : p == PL_SPLIT ? O.split_cpu : -1,
               p == PL_NONE ? -1 : O.pin_cpu);
    }
    printf("],\"results\":[");
    for (int i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        printf("%s\n{\"placement\":\"%s\",\"scenario\":%d,\"figure\":", i ? "," : "",
               r->placement, r->scenario);
        json_str(r->figure);
        printf(",\"unit\":");
        json_str(r->unit);
        printf(",\"value\":");
        json_num(r->value);
        printf(",\"baseline\":");
        json_num(r->baseline);
        printf(",\"baseline_is\":");
        json_str(r->baseline_is);
        printf(",\"ratio\":");
        json_num(r->ratio);
        printf(",\"target\":");
        if (r->target[0])
            json_str(r->target);
        else
            printf("null");
        printf(",\"meets\":%s}", r->meets < 0 ? "null" : r->meets ? "true" : "false");
    }
    printf("\n],\"errors\":%d}\n", g_errors);
}

/* ==== scenario 6: waiter scaling ======================================================= */

#define S6_TTL_MS 10000   /* ttl of every lock of scenario 6 */
#define S6_WAIT_MS 30000  /* wait of one libredlock acquire in scenario 6 */

/* The markdown of scenario 6 (one block per placement), printed after the
 * table. */
static char *md_buf;
static size_t md_len;
static FILE *md;

static const char *fmt_ms(char *buf, size_t len, int64_t ns)
{
    double ms = (double)ns / 1e6;
    snprintf(buf, len, ms >= 100 ? "%.0f" : ms >= 10 ? "%.1f" : "%.2f", ms);
    return buf;
}

static const char *fmt_v(char *buf, size_t len, double v)
{
    if (isnan(v) || isinf(v) || v < 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.2f", v);
    return buf;
}

typedef struct {
    int ok; /* the run completed */
    bn_w_result r;
} s6_run;

static long s6_unsafe; /* overlaps and early acquires, every run */

static void s6_one(env *e, s6_run *run, const char *what, int kind, int W, int64_t poll_ms,
                   int kill)
{
    char key[160];
    snprintf(key, sizeof key, "%s:s6:%s:%d%s", e->prefix,
             kind == BN_W_LIB ? "lib" : "poll", W, kill ? ":killed" : "");
    if (kind == BN_W_POLL) {
        size_t l = strlen(key);
        snprintf(key + l, sizeof key - l, ":%lldms", (long long)poll_ms);
    }
    bn_w_config c;
    memset(&c, 0, sizeof c);
    c.url = e->urls[0];
    c.key = key;
    c.kind = kind;
    c.waiters = W;
    c.poll_ns = poll_ms * 1000000;
    c.section_ns = (int64_t)O.section_us * 1000;
    c.ttl_ms = S6_TTL_MS;
    c.wait_ms = S6_WAIT_MS;
    c.duration_s = O.wduration_s;
    c.warmup_s = O.wduration_s / 10 < 1 ? O.wduration_s / 10 : 1;
    c.kill = kill;
    c.kill_at_s = O.wduration_s / 10;
    if (kill)
        progress("scenario 6: %d %s, %d of them killed mid-wait, %.3g s", W, what, kill,
                 O.wduration_s);
    else
        progress("scenario 6: %d %s, %.3g s", W, what, O.wduration_s);
    bn_w_result *r = &run->r;
    int rc = bn_w_run(&c, r);
    run->ok = rc == 0;
    if (rc != 0 || r->errors > 0 || r->stragglers > 0) {
        fprintf(stderr, "redlock-bench: [%s] scenario 6, %d %s: %s%s\n", cur_placement, W,
                what, r->error[0] ? r->error : "the run failed",
                r->errors > 1 ? " (and more waiters failed)" : "");
        g_errors++;
    }
    if (r->overlaps > 0 || r->early > 0) {
        fprintf(stderr,
                "redlock-bench: [%s] scenario 6, %d %s: MUTUAL EXCLUSION VIOLATED: %ld "
                "overlapping sections, %ld acquires returned before the holder called "
                "release%s%s\n",
                cur_placement, W, what, r->overlaps, r->early,
                r->overlap_detail[0] ? "; first: " : "", r->overlap_detail);
        s6_unsafe += r->overlaps + r->early;
        g_errors++;
    }
    if (!run->ok)
        return;
    if (r->sections == 0) {
        fprintf(stderr, "redlock-bench: [%s] scenario 6, %d %s: no section in the %.3g s "
                        "window (%ld waits ran out)\n",
                cur_placement, W, what, r->window_s, r->timeouts);
        g_errors++;
    }
    progress("  %ld sections, %.1f/s; server CPU %.1f us, %.3f commands per section; "
             "idle gap p50/p99/max %.0f/%.0f/%.0f us (%ld); per waiter %ld..%ld, %d with "
             "none; %ld waits ran out%s; load %s -> %s",
             r->sections, r->rate, r->server_cpu_us, r->commands, us(r->gap_p50),
             us(r->gap_p99), us(r->gap_max), r->gaps, r->min_w, r->max_w, r->zero_w,
             r->timeouts, r->dropped ? " (records dropped)" : "", r->load_before,
             r->load_after);
}

static double s6_rate(const s6_run *x)
{
    return x->ok ? x->r.rate : NAN;
}

static double s6_val(const s6_run *x, double v)
{
    return x->ok && v >= 0 ? v : NAN;
}

static double s6_gap(const s6_run *x, int64_t ns)
{
    return x->ok && x->r.gaps > 0 ? us(ns) : NAN;
}

static const char *yes_no(double v, const char *op, double t)
{
    return isnan(v) ? "-" : meets(v, op, t) ? "yes" : "**NO**";
}

/* One row of scenario 6: libredlock's figure v at W waiters beside the
 * 0.1 s poller's w (their ratio when `ratio`). */
static void s6_row(int W, const char *what, const char *unit, double v, double w, int ratio,
                   int tkind, const char *op, double t)
{
    char fig[96];
    snprintf(fig, sizeof fig, "%d waiters: %s", W, what);
    add_row(6, fig, unit, v, w, "0.1 s poller", ratio ? ratio_of(v, w) : NAN, tkind, op, t);
}

/* A markdown target row with a figure at every size ("8 / 64 / 256"),
 * judged on the worst of them (on none when one is missing). */
static void md_sizes_row(const char *what, const double *v, int n, const char *op, double t,
                         int decimals)
{
    char b[32];
    double worst = NAN;
    int missing = 0;
    fprintf(md, "| %s, ", what);
    for (int i = 0; i < n; i++)
        fprintf(md, "%s%d", i ? " / " : "", O.wsizes[i]);
    fprintf(md, " | ");
    for (int i = 0; i < n; i++) {
        if (isnan(v[i]))
            missing = 1;
        else if (isnan(worst) || !meets(v[i], op, worst))
            worst = v[i];
        if (decimals > 0 && !isnan(v[i]))
            snprintf(b, sizeof b, "%.*f", decimals, v[i]);
        else
            fmt_v(b, sizeof b, v[i]);
        fprintf(md, "%s%s", i ? " / " : "", b);
    }
    fprintf(md, " | %s %g | %s |\n", op, t, yes_no(missing ? NAN : worst, op, t));
}

static int scenario6(env *e)
{
    int n = O.nwsizes;
    int lo = O.wsizes[0], hi = O.wsizes[n - 1];
    int kill_i = n / 2, kill_w = O.wsizes[kill_i];
    int kill = (int)(kill_w * O.kill_pct / 100.0 + 0.5);
    if (kill < 1 && O.kill_pct > 0)
        kill = 1;
    s6_run lib[S6_MAX_SIZES], p100[S6_MAX_SIZES], p10, p1, killed;
    memset(lib, 0, sizeof lib);
    memset(p100, 0, sizeof p100);
    memset(&p10, 0, sizeof p10);
    memset(&p1, 0, sizeof p1);
    memset(&killed, 0, sizeof killed);
    char load0[32], load1[32];
    bn_loadavg(load0, sizeof load0);
    long unsafe0 = s6_unsafe;
    int errors0 = g_errors;

    for (int i = 0; i < n; i++) {
        s6_one(e, &lib[i], "libredlock waiters", BN_W_LIB, O.wsizes[i], 0, 0);
        s6_one(e, &p100[i], "0.1 s pollers", BN_W_POLL, O.wsizes[i], 100, 0);
    }
    s6_one(e, &p10, "10 ms pollers", BN_W_POLL, lo, 10, 0);
    s6_one(e, &p1, "1 ms pollers", BN_W_POLL, lo, 1, 0);
    if (kill > 0)
        s6_one(e, &killed, "libredlock waiters", BN_W_LIB, kill_w, 0, kill);
    bn_loadavg(load1, sizeof load1);

    /* ---- rows ---- */
    char fig[96];
    for (int i = 0; i < n; i++) {
        int W = O.wsizes[i], last = i == n - 1;
        const s6_run *a = &lib[i], *b = &p100[i];
        const bn_w_result *x = &a->r, *y = &b->r;
        s6_row(W, "sections/s", "/s", s6_rate(a), s6_rate(b), 1, T_RATIO, ">=", 1);
        s6_row(W, "server CPU per handoff", "us", s6_val(a, x->server_cpu_us),
               s6_val(b, y->server_cpu_us), 1, T_NONE, "", 0);
        s6_row(W, "commands per section", "", s6_val(a, x->commands), s6_val(b, y->commands),
               1, T_VALUE, "<=", 8);
        s6_row(W, "idle gap p50", "us", s6_gap(a, x->gap_p50), s6_gap(b, y->gap_p50), 1,
               T_NONE, "", 0);
        s6_row(W, "idle gap p99", "us", s6_gap(a, x->gap_p99), s6_gap(b, y->gap_p99), 1,
               i == 0 || last ? T_VALUE : T_NONE, "<=", i == 0 ? 1000 : 2000);
        s6_row(W, "idle gap max", "us", s6_gap(a, x->gap_max), s6_gap(b, y->gap_max), 1,
               T_NONE, "", 0);
        s6_row(W, "fairness (fewest/most sections)", "", s6_val(a, x->fairness),
               s6_val(b, y->fairness), 1, i == 0 ? T_VALUE : T_NONE, ">=", 0.8);
        s6_row(W, "waiters with no section", "", s6_val(a, x->zero_w), s6_val(b, y->zero_w),
               0, last ? T_VALUE : T_NONE, "<=", 0);
        s6_row(W, "client CPU per section (all waiters)", "us", s6_val(a, x->client_cpu_us),
               s6_val(b, y->client_cpu_us), 1, T_NONE, "", 0);
        if (x->timeouts > 0) {
            char what[48];
            snprintf(what, sizeof what, "waits that ran out (%d s)", S6_WAIT_MS / 1000);
            s6_row(W, what, "", (double)x->timeouts, (double)y->timeouts, 0, T_NONE, "", 0);
        }
        s6_row(W, "overlapping sections (safety)", "", (double)(x->overlaps + x->early),
               (double)(y->overlaps + y->early), 0, T_VALUE, "<=", 0);
    }
    double cpu_lo = s6_val(&lib[0], lib[0].r.server_cpu_us);
    double cpu_hi = s6_val(&lib[n - 1], lib[n - 1].r.server_cpu_us);
    double cpu_scale = ratio_of(cpu_hi, cpu_lo);
    if (n > 1) {
        snprintf(fig, sizeof fig, "server CPU per handoff, %d / %d waiters", hi, lo);
        add_row(6, fig, "x", cpu_scale, NAN, "", NAN, T_VALUE, "<=", 2);
    }
    const s6_run *polls[3] = {&p100[0], &p10, &p1};
    const char *poll_names[3] = {"0.1 s", "10 ms", "1 ms"};
    int best = -1;
    for (int k = 0; k < 3; k++)
        if (polls[k]->ok && (best < 0 || polls[k]->r.rate > polls[best]->r.rate))
            best = k;
    double best_rate = best >= 0 ? polls[best]->r.rate : NAN;
    double vs_best = ratio_of(s6_rate(&lib[0]), best_rate);
    char bname[40];
    snprintf(bname, sizeof bname, "best poller (%s)", best >= 0 ? poll_names[best] : "-");
    for (int k = 1; k < 3; k++) {
        snprintf(fig, sizeof fig, "%d waiters: sections/s vs the %s poller", lo, poll_names[k]);
        char base[40];
        snprintf(base, sizeof base, "%s poller", poll_names[k]);
        add_row(6, fig, "/s", s6_rate(&lib[0]), s6_rate(polls[k]), base,
                ratio_of(s6_rate(&lib[0]), s6_rate(polls[k])), T_NONE, "", 0);
    }
    snprintf(fig, sizeof fig, "%d waiters: sections/s vs the best poller", lo);
    add_row(6, fig, "/s", s6_rate(&lib[0]), best_rate, bname, vs_best, T_RATIO, ">=", 0.8);
    const s6_run *ref = &lib[kill_i];
    if (kill > 0) {
        const char *kf[3] = {"sections/s", "idle gap p99", "idle gap max"};
        double kv[3] = {s6_rate(&killed), s6_gap(&killed, killed.r.gap_p99),
                        s6_gap(&killed, killed.r.gap_max)};
        double kb[3] = {s6_rate(ref), s6_gap(ref, ref->r.gap_p99),
                        s6_gap(ref, ref->r.gap_max)};
        for (int k = 0; k < 3; k++) {
            snprintf(fig, sizeof fig, "%d waiters, %d killed mid-wait: %s", kill_w,
                     killed.r.killed, kf[k]);
            add_row(6, fig, k ? "us" : "/s", kv[k], kb[k], "no kills", ratio_of(kv[k], kb[k]),
                    T_NONE, "", 0);
        }
        if (killed.r.granted_dying > 0) {
            snprintf(fig, sizeof fig, "%d waiters: granted the lock while being killed",
                     kill_w);
            add_row(6, fig, "", (double)killed.r.granted_dying, NAN, "", NAN, T_NONE, "", 0);
        }
    }

    /* ---- the markdown block ---- */
    if (md == NULL && (md = open_memstream(&md_buf, &md_len)) == NULL)
        return g_errors > errors0 ? -1 : 0;
    char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32];
    fprintf(md, "\n#### Waiter scaling (scenario 6), placement %s\n\n", cur_placement);
    fprintf(md, "`%s`: libredlock %s%s%s, redis-server %s; ", cmdline, redlock_version(),
            O.label ? ", " : "", O.label ? O.label : "", redis_version);
    if (e->placement == PL_PINNED)
        fprintf(md, "redis-server and every waiter process on CPU %d; ", e->server_cpu);
    else if (e->placement == PL_SPLIT)
        fprintf(md, "redis-server on CPU %d, the waiters on CPU %d; ", e->server_cpu,
                e->bench_cpu);
    else
        fprintf(md, "nothing pinned; ");
    fprintf(md, "%.3g s per run (after %.2g s of warm-up), a %s ms section (a sleep), "
                "ttl %d s, libredlock waits of %d s; load average %s before, %s after.\n\n",
            O.wduration_s, O.wduration_s / 10 < 1 ? O.wduration_s / 10 : 1,
            fmt_v(b1, sizeof b1, O.section_us / 1000.0), S6_TTL_MS / 1000, S6_WAIT_MS / 1000,
            load0, load1);
    fprintf(md, "| waiters | libredlock sections/s | server CPU per handoff | commands per "
                "section | idle gap p50/p99 | fairness | 0.1 s poller sections/s |\n");
    fprintf(md, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int i = 0; i < n; i++) {
        const s6_run *a = &lib[i];
        fprintf(md, "| %d | ", O.wsizes[i]);
        if (a->ok) {
            fprintf(md, "%s | %s µs | %.3f | ", fmt_v(b1, sizeof b1, a->r.rate),
                    fmt_v(b2, sizeof b2, a->r.server_cpu_us), a->r.commands);
            if (a->r.gaps > 0)
                fprintf(md, "%s / %s ms | ", fmt_ms(b1, sizeof b1, a->r.gap_p50),
                        fmt_ms(b2, sizeof b2, a->r.gap_p99));
            else
                fprintf(md, "- | ");
            fprintf(md, "%s (%ld/%ld), %d with none | ", fmt_v(b4, sizeof b4, a->r.fairness),
                    a->r.min_w, a->r.max_w, a->r.zero_w);
        } else {
            fprintf(md, "failed | - | - | - | - | ");
        }
        fprintf(md, "%s |\n", p100[i].ok ? fmt_v(b1, sizeof b1, p100[i].r.rate) : "failed");
    }
    fprintf(md, "\nPollers (SET NX PX, then sleep; release: EVALSHA of a token-checked "
                "delete), %d waiters: ", lo);
    for (int k = 0; k < 3; k++)
        fprintf(md, "%s %s sections/s%s", poll_names[k],
                polls[k]->ok ? fmt_v(b1, sizeof b1, polls[k]->r.rate) : "failed",
                k < 2 ? ", " : "");
    fprintf(md, "; the 0.1 s poller's server CPU per section: ");
    for (int i = 0; i < n; i++)
        fprintf(md, "%s%s µs at %d", i ? ", " : "",
                fmt_v(b1, sizeof b1, s6_val(&p100[i], p100[i].r.server_cpu_us)), O.wsizes[i]);
    fprintf(md, ".\n");
    if (kill > 0) {
        fprintf(md, "Killed: %d libredlock waiters, %d of them SIGKILLed while blocked in "
                    "acquire %.2g s into the run: ",
                kill_w, killed.r.killed, O.wduration_s / 10);
        if (killed.ok && ref->ok)
            fprintf(md, "%s sections/s (%s without kills), idle gap max %s ms (%s ms), "
                        "p99 %s ms (%s ms)",
                    fmt_v(b1, sizeof b1, killed.r.rate), fmt_v(b2, sizeof b2, ref->r.rate),
                    fmt_ms(b3, sizeof b3, killed.r.gap_max),
                    fmt_ms(b4, sizeof b4, ref->r.gap_max), fmt_ms(b5, sizeof b5, killed.r.gap_p99),
                    fmt_ms(b6, sizeof b6, ref->r.gap_p99));
        else
            fprintf(md, "failed");
        if (killed.r.granted_dying > 0)
            fprintf(md, "; %ld granted the lock while being killed", killed.r.granted_dying);
        fprintf(md, ".\n");
    }
    long timeouts = 0;
    for (int i = 0; i < n; i++)
        timeouts += lib[i].r.timeouts;
    timeouts += killed.r.timeouts;
    fprintf(md, "Waits that ran out (%d s): %ld.\n\n", S6_WAIT_MS / 1000, timeouts);

    fprintf(md, "| target | measured | wanted | met |\n| --- | ---: | ---: | :---: |\n");
    if (n > 1)
        fprintf(md, "| server CPU per handoff, %d / %d waiters | %s | <= 2 | %s |\n", hi, lo,
                fmt_v(b1, sizeof b1, cpu_scale), yes_no(cpu_scale, "<=", 2));
    double v[S6_MAX_SIZES] = {0};
    for (int i = 0; i < n; i++)
        v[i] = s6_val(&lib[i], lib[i].r.commands);
    md_sizes_row("commands per section", v, n, "<=", 8, 3);
    for (int i = 0; i < n; i++)
        v[i] = ratio_of(s6_rate(&lib[i]), s6_rate(&p100[i]));
    md_sizes_row("libredlock / 0.1 s poller sections/s", v, n, ">=", 1, 0);
    fprintf(md, "| libredlock / %s sections/s at %d | %s | >= 0.8 | %s |\n", bname, lo,
            fmt_v(b1, sizeof b1, vs_best), yes_no(vs_best, ">=", 0.8));
    double g_lo = s6_gap(&lib[0], lib[0].r.gap_p99) / 1000;
    double g_hi = s6_gap(&lib[n - 1], lib[n - 1].r.gap_p99) / 1000;
    fprintf(md, "| idle gap p99 at %d | %s ms | <= 1 ms | %s |\n", lo,
            fmt_v(b1, sizeof b1, g_lo), yes_no(g_lo, "<=", 1));
    if (n > 1)
        fprintf(md, "| idle gap p99 at %d | %s ms | <= 2 ms | %s |\n", hi,
                fmt_v(b1, sizeof b1, g_hi), yes_no(g_hi, "<=", 2));
    double f_lo = s6_val(&lib[0], lib[0].r.fairness);
    fprintf(md, "| fairness (fewest/most sections) at %d | %s | >= 0.8 | %s |\n", lo,
            fmt_v(b1, sizeof b1, f_lo), yes_no(f_lo, ">=", 0.8));
    double z_hi = s6_val(&lib[n - 1], lib[n - 1].r.zero_w);
    fprintf(md, "| waiters with no section at %d | %s | 0 | %s |\n", hi,
            isnan(z_hi) ? "-" : (snprintf(b1, sizeof b1, "%.0f", z_hi), b1),
            yes_no(z_hi, "<=", 0));
    long unsafe = s6_unsafe - unsafe0;
    fprintf(md, "| overlapping sections, every run | %ld | 0 | %s |\n", unsafe,
            unsafe == 0 ? "yes" : "**NO**");
    fflush(md);
    return g_errors > errors0 ? -1 : 0;
}

/* ---- main ------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: redlock-bench [options]\n"
            "  --scenario N     run scenario N (1..8, a comma list, or all); repeatable [all]\n"
            "                   1 uncontended  2 shared client  3 contended handoff\n"
            "                   4 watchdog scale  5 Redlock N=1,3,5  6 (or waiters) waiter\n"
            "                   scaling: processes, libredlock and pollers (minutes)\n"
            "                   7 (or tls): TLS against plaintext and raw hiredis, and new\n"
            "                   connections (full and resumed handshakes); needs --certs;\n"
            "                   not part of all\n"
            "                   8 (or cluster): a Redis Cluster (3 masters, 3 replicas,\n"
            "                   started with redis-cli): pairs/s on a cluster URL against\n"
            "                   redis:// and raw hiredis to the key's master, then the\n"
            "                   cost of a MOVED and the map reads; not part of all\n"
            "  --migrations N   scenario 8: slots migrated under the client [200; --tiny 5]\n"
            "  --scattered      scenario 8: migrate the slots of keys as they come, each to\n"
            "                   the next master (the map fragments), not contiguous slots\n"
            "                   to a neighbouring master as a reshard does\n"
            "  --certs DIR      scenario 7: certificates from tests/support/make_certs.sh\n"
            "                   [$REDLOCK_BENCH_CERTS]\n"
            "  --duration S     seconds per measured part [2]\n"
            "  --count N        operations per part instead of a duration\n"
            "  --threads N      threads of scenarios 2 and 3 [8]\n"
            "  --locks N        kept-alive locks of scenario 4 [10000]\n"
            "  --window S       scenario 4 measuring window, ttl 30 s [10]\n"
            "  --short-window S scenario 4 measuring window, short variant [3]\n"
            "  --short-ttl MS   --short-floor MS  the short variant's ttl and\n"
            "                   renew_floor_ms [300, 100: renewed every 100 ms]\n"
            "  --delay-us US    delay of the scenario 5 proxy, each way [1000]\n"
            "  --rounds N       alternating library/baseline rounds, scenarios 1-2 [4]\n"
            "  --waiters LIST   scenario 6: waiter processes per run, ascending [8,64,256];\n"
            "                   the killed run uses the middle one\n"
            "  --waiter-duration S  scenario 6: seconds per run [10; --tiny 0.3]\n"
            "  --section-us US  scenario 6: the critical section (a sleep) [1000]\n"
            "  --kill-percent P scenario 6: waiters SIGKILLed mid-wait in the killed run\n"
            "                   [10; 0: no killed run]\n"
            "  --placement P    pinned | split | both | none [both with 2+ CPUs]\n"
            "                   pinned: benchmark and servers on the --pin CPU;\n"
            "                   split: servers on the --pin CPU, benchmark on --split-cpu\n"
            "  --pin CPU        [the first allowed CPU]\n"
            "  --split-cpu CPU  [the second allowed CPU]\n"
            "  --url URL        use this Redis instead of starting servers; repeat for\n"
            "                   scenario 5 (5 URLs).  redis://[user:pass@]host:port[/db]\n"
            "                   (no percent-decoding in the baselines) or unix://path\n"
            "  --redis-server P the redis-server binary [$REDLOCK_BENCH_REDIS_SERVER,\n"
            "                   else redis-server from $PATH]\n"
            "  --json           one JSON object on stdout instead of the table\n"
            "  --label TEXT     recorded in the output (e.g. the git commit)\n"
            "  --tiny           smoke run: tiny counts, a few seconds, placement none\n"
            "Exits 0 when every scenario ran (targets missed or not), 1 on errors\n"
            "(overlapping critical sections included), 64 on bad usage.\n");
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

#define NUM_OPT(var, lo, hi, cast)                                                  \
    do {                                                                            \
        double v_;                                                                  \
        if (parse_num(optarg, lo, hi, &v_) != 0) {                                  \
            fprintf(stderr, "redlock-bench: bad value for --%s: %s\n",              \
                    longopts[idx].name, optarg);                                    \
            return 64;                                                              \
        }                                                                           \
        var = (cast)v_;                                                             \
    } while (0)

int main(int argc, char **argv)
{
    enum {
        OPT_SCENARIO = 1000, OPT_DURATION, OPT_COUNT, OPT_THREADS, OPT_LOCKS, OPT_WINDOW,
        OPT_SHORT_WINDOW, OPT_SHORT_TTL, OPT_SHORT_FLOOR, OPT_DELAY, OPT_ROUNDS,
        OPT_PLACEMENT, OPT_PIN, OPT_SPLIT, OPT_URL, OPT_REDIS, OPT_JSON, OPT_TINY, OPT_HELP,
        OPT_LABEL, OPT_WAITERS, OPT_WDURATION, OPT_SECTION, OPT_KILL, OPT_CERTS,
        OPT_MIGRATIONS, OPT_SCATTERED
    };
    static const struct option longopts[] = {
        {"scenario", required_argument, NULL, OPT_SCENARIO},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"count", required_argument, NULL, OPT_COUNT},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"locks", required_argument, NULL, OPT_LOCKS},
        {"window", required_argument, NULL, OPT_WINDOW},
        {"short-window", required_argument, NULL, OPT_SHORT_WINDOW},
        {"short-ttl", required_argument, NULL, OPT_SHORT_TTL},
        {"short-floor", required_argument, NULL, OPT_SHORT_FLOOR},
        {"delay-us", required_argument, NULL, OPT_DELAY},
        {"rounds", required_argument, NULL, OPT_ROUNDS},
        {"placement", required_argument, NULL, OPT_PLACEMENT},
        {"pin", required_argument, NULL, OPT_PIN},
        {"split-cpu", required_argument, NULL, OPT_SPLIT},
        {"url", required_argument, NULL, OPT_URL},
        {"redis-server", required_argument, NULL, OPT_REDIS},
        {"json", no_argument, NULL, OPT_JSON},
        {"tiny", no_argument, NULL, OPT_TINY},
        {"help", no_argument, NULL, OPT_HELP},
        {"label", required_argument, NULL, OPT_LABEL},
        {"waiters", required_argument, NULL, OPT_WAITERS},
        {"waiter-duration", required_argument, NULL, OPT_WDURATION},
        {"section-us", required_argument, NULL, OPT_SECTION},
        {"kill-percent", required_argument, NULL, OPT_KILL},
        {"certs", required_argument, NULL, OPT_CERTS},
        {"migrations", required_argument, NULL, OPT_MIGRATIONS},
        {"scattered", no_argument, NULL, OPT_SCATTERED},
        {NULL, 0, NULL, 0}};

    bn_affinity_init();
    bn_loadavg(load_start, sizeof load_start);
    {
        size_t len = 0;
        for (int i = 0; i < argc && len + 1 < sizeof cmdline; i++) {
            const char *a = i == 0 ? "redlock-bench" : argv[i];
            int n = snprintf(cmdline + len, sizeof cmdline - len, "%s%s", i ? " " : "", a);
            if (n < 0)
                break;
            len += (size_t)n;
        }
        if (len >= sizeof cmdline)
            len = sizeof cmdline - 1;
        cmdline[len] = '\0';
    }
    O.duration_s = -1;
    O.wduration_s = -1;
    O.section_us = 1000;
    O.kill_pct = 10;
    O.threads = 8;
    O.locks = -1;
    O.window_s = -1;
    O.short_window_s = -1;
    O.short_ttl_ms = 300;
    O.short_floor_ms = 100;
    O.delay_us = 1000;
    O.rounds = -1;
    O.migrations = -1;
    O.pin_cpu = O.split_cpu = -1;
    const char *placement = NULL;
    int opt, idx = 0;
    while ((opt = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
        switch (opt) {
        case OPT_SCENARIO: {
            if (strcmp(optarg, "all") == 0) {
                O.scenarios |= SC_ALL;
                break;
            }
            char buf[64];
            snprintf(buf, sizeof buf, "%s", optarg);
            for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                if (strcmp(t, "waiters") == 0)
                    t = "6";
                if (strcmp(t, "tls") == 0)
                    t = "7";
                if (strcmp(t, "cluster") == 0)
                    t = "8";
                if (strlen(t) != 1 || t[0] < '1' || t[0] > '8') {
                    fprintf(stderr, "redlock-bench: no scenario %s (1..8, waiters, tls, "
                                    "cluster or all)\n",
                            t);
                    return 64;
                }
                O.scenarios |= 1u << (t[0] - '0');
            }
            break;
        }
        case OPT_DURATION: NUM_OPT(O.duration_s, 0.001, 3600, double); break;
        case OPT_COUNT: NUM_OPT(O.count, 1, 1e9, long); break;
        case OPT_THREADS: NUM_OPT(O.threads, 1, MAX_THREADS, int); break;
        case OPT_LOCKS: NUM_OPT(O.locks, 1, 1e7, int); break;
        case OPT_WINDOW: NUM_OPT(O.window_s, 0.01, 3600, double); break;
        case OPT_SHORT_WINDOW: NUM_OPT(O.short_window_s, 0.01, 3600, double); break;
        case OPT_SHORT_TTL: NUM_OPT(O.short_ttl_ms, 2, 1e9, int); break;
        case OPT_SHORT_FLOOR: NUM_OPT(O.short_floor_ms, 1, 1e9, int); break;
        case OPT_DELAY: NUM_OPT(O.delay_us, 0, 1e7, int64_t); break;
        case OPT_ROUNDS: NUM_OPT(O.rounds, 1, 1000, int); break;
        case OPT_PLACEMENT: placement = optarg; break;
        case OPT_PIN: NUM_OPT(O.pin_cpu, 0, 4095, int); break;
        case OPT_SPLIT: NUM_OPT(O.split_cpu, 0, 4095, int); break;
        case OPT_URL:
            if (O.nurls == REDLOCK_MAX_NODES) {
                fprintf(stderr, "redlock-bench: at most %d --url\n", REDLOCK_MAX_NODES);
                return 64;
            }
            O.urls[O.nurls++] = optarg;
            break;
        case OPT_REDIS: O.redis_path = optarg; break;
        case OPT_JSON: O.json = 1; break;
        case OPT_LABEL: O.label = optarg; break;
        case OPT_WAITERS: {
            char buf[128];
            snprintf(buf, sizeof buf, "%s", optarg);
            O.nwsizes = 0;
            for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                double v;
                if (O.nwsizes == S6_MAX_SIZES || parse_num(t, 1, S6_MAX_WAITERS, &v) != 0 ||
                    v != floor(v) || (O.nwsizes > 0 && v <= O.wsizes[O.nwsizes - 1])) {
                    fprintf(stderr, "redlock-bench: --waiters: up to %d ascending whole "
                                    "numbers, 1..%d\n",
                            S6_MAX_SIZES, S6_MAX_WAITERS);
                    return 64;
                }
                O.wsizes[O.nwsizes++] = (int)v;
            }
            if (O.nwsizes == 0) {
                fprintf(stderr, "redlock-bench: --waiters: an empty list\n");
                return 64;
            }
            break;
        }
        case OPT_WDURATION: NUM_OPT(O.wduration_s, 0.01, 3600, double); break;
        case OPT_SECTION: NUM_OPT(O.section_us, 0, 1e6, int); break;
        case OPT_KILL: NUM_OPT(O.kill_pct, 0, 90, double); break;
        case OPT_CERTS: O.certdir = optarg; break;
        case OPT_MIGRATIONS: NUM_OPT(O.migrations, 1, 5000, int); break;
        case OPT_SCATTERED: O.scattered = 1; break;
        case OPT_TINY: O.tiny = 1; break;
        case 'h':
        case OPT_HELP: usage(stdout); return 0;
        default: usage(stderr); return 64;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "redlock-bench: unexpected argument %s\n", argv[optind]);
        usage(stderr);
        return 64;
    }
    if (O.scenarios == 0)
        O.scenarios = SC_ALL;
    if (O.redis_path == NULL) {
        const char *env = getenv("REDLOCK_BENCH_REDIS_SERVER");
        if (env && env[0])
            O.redis_path = env;
    }
    if (O.certdir == NULL) {
        const char *env = getenv("REDLOCK_BENCH_CERTS");
        if (env && env[0])
            O.certdir = env;
    }
    if ((O.scenarios & (1u << 7)) && O.certdir == NULL) {
        fprintf(stderr, "redlock-bench: scenario tls needs --certs DIR (made by "
                        "tests/support/make_certs.sh; bench/run.sh does it)\n");
        return 64;
    }
    /* redis-server runs in a directory of its own: relative paths break. */
    static char certdir_abs[PATH_MAX];
    if (O.certdir != NULL) {
        if (realpath(O.certdir, certdir_abs) == NULL) {
            fprintf(stderr, "redlock-bench: --certs %s: %s\n", O.certdir, strerror(errno));
            return 64;
        }
        O.certdir = certdir_abs;
    }
    if (O.duration_s < 0)
        O.duration_s = O.tiny ? 0.1 : 2;
    if (O.locks < 0)
        O.locks = O.tiny ? 200 : 10000;
    if (O.window_s < 0)
        O.window_s = O.tiny ? 0.3 : 10;
    if (O.short_window_s < 0)
        O.short_window_s = O.tiny ? 0.3 : 3;
    if (O.rounds < 0)
        O.rounds = O.tiny ? 2 : 4;
    O.warmup = O.tiny ? 5 : 200;
    if (O.wduration_s < 0)
        O.wduration_s = O.tiny ? 0.3 : 10;
    if (O.migrations < 0)
        O.migrations = O.tiny ? S8_MIGRATIONS_TINY : S8_MIGRATIONS_FULL;
    if (O.nwsizes == 0) {
        static const int tiny[] = {2, 4, 8}, full[] = {8, 64, 256};
        for (int i = 0; i < 3; i++)
            O.wsizes[O.nwsizes++] = O.tiny ? tiny[i] : full[i];
    }

    /* placements */
    int first, second;
    int ncpu = bn_cpus_allowed(&first, &second);
    if (O.pin_cpu < 0)
        O.pin_cpu = first >= 0 ? first : 0;
    if (O.split_cpu < 0)
        O.split_cpu = second >= 0 && second != O.pin_cpu ? second
                      : first != O.pin_cpu             ? first
                                                       : -1;
    if (placement == NULL)
        placement = O.tiny || ncpu < 2 ? "none" : "both";
    if (strcmp(placement, "both") == 0) {
        O.placements[O.nplacements++] = PL_PINNED;
        O.placements[O.nplacements++] = PL_SPLIT;
    } else if (strcmp(placement, "pinned") == 0) {
        O.placements[O.nplacements++] = PL_PINNED;
    } else if (strcmp(placement, "split") == 0) {
        O.placements[O.nplacements++] = PL_SPLIT;
    } else if (strcmp(placement, "none") == 0) {
        O.placements[O.nplacements++] = PL_NONE;
    } else {
        fprintf(stderr, "redlock-bench: --placement pinned|split|both|none\n");
        return 64;
    }
    for (int i = 0; i < O.nplacements; i++) {
        if (O.placements[i] == PL_NONE)
            continue;
        if (!bn_cpu_allowed(O.pin_cpu)) {
            fprintf(stderr, "redlock-bench: CPU %d is not available\n", O.pin_cpu);
            return 64;
        }
        if (O.placements[i] == PL_SPLIT &&
            (O.split_cpu < 0 || O.split_cpu == O.pin_cpu || !bn_cpu_allowed(O.split_cpu))) {
            fprintf(stderr, "redlock-bench: split placement needs a second CPU "
                            "(--split-cpu; %d allowed)\n",
                    ncpu);
            return 64;
        }
    }
    if (O.nurls > 0 && O.nplacements > 0 && O.placements[0] != PL_NONE)
        fprintf(stderr, "redlock-bench: --url: only the benchmark is pinned, not the "
                        "servers behind the URLs\n");

    /* The benchmark is the host program: it may ignore SIGPIPE (hiredis
     * writes with write()). */
    signal(SIGPIPE, SIG_IGN);
    bn_servers_install_cleanup();
    if (O.scenarios & (1u << 8)) {
        /* Scenario 8's cluster helper (tests/support) reads these; no
         * thread runs yet, so the environment may change.  Its baselines
         * speak plaintext: the helper's TLS mode is not for them. */
        if (O.redis_path != NULL)
            setenv("REDLOCK_TEST_REDIS_SERVER", O.redis_path, 1);
        const char *tls = getenv("REDLOCK_TEST_TLS");
        if (tls != NULL && tls[0] != '\0') {
            fprintf(stderr, "redlock-bench: scenario 8 ignores REDLOCK_TEST_TLS (a "
                            "plaintext cluster)\n");
            unsetenv("REDLOCK_TEST_TLS");
        }
    }
    machine_info();

    int nodes = (O.scenarios & (1u << 5)) ? S5_NODES : 1;
    for (int i = 0; i < O.nplacements; i++) {
        env e;
        if (env_open(&e, O.placements[i], nodes) != 0) {
            g_errors++;
            env_close(&e);
            continue;
        }
        if (strcmp(redis_version, "unknown") == 0) {
            bn_url u;
            if (bn_url_parse(e.urls[0], &u) == 0) {
                redisContext *c = bn_url_connect(&u, IO_TIMEOUT_MS);
                if (c) {
                    redisReply *r = redisCommand(c, "INFO server");
                    if (r && r->type == REDIS_REPLY_STRING) {
                        const char *p = strstr(r->str, "redis_version:");
                        if (p)
                            sscanf(p + 14, "%31[^\r\n]", redis_version);
                    }
                    if (r)
                        freeReplyObject(r);
                    redisFree(c);
                }
            }
        }
        int (*const fns[])(env *) = {NULL,      scenario1, scenario2, scenario3, scenario4,
                                     scenario5, scenario6, scenario7, scenario8};
        for (int sc = 1; sc <= 8; sc++) {
            if (!(O.scenarios & (1u << sc)))
                continue;
            if (fns[sc](&e) != 0) {
                fprintf(stderr, "redlock-bench: [%s] scenario %d failed\n", cur_placement,
                        sc);
                g_errors++;
            }
        }
        env_close(&e);
    }

    bn_loadavg(load_end, sizeof load_end);
    if (O.json) {
        print_json();
    } else {
        print_table();
        if (md != NULL) {
            fclose(md);
            md = NULL;
            fwrite(md_buf, 1, md_len, stdout);
        }
    }
    fflush(stdout);
    if (md != NULL)
        fclose(md);
    free(md_buf);
    free(rows);
    return g_errors ? 1 : 0;
}
