/*
 * Integration: bad input and hostile servers.  One table, one row per bad
 * input or misbehaving server, each with the status it must get and a
 * piece of the message that must explain it; README.md ("Bad input and
 * hostile servers") shows the same table.  After every row: the status is
 * the expected one and is a known status, a failure left a message
 * (never a password), the call returned within its timeouts plus a
 * margin, the process did not grow by more than RSS_LIMIT_MB while it
 * ran, and nothing is left locked: no "h:*" key on any real server, and
 * on the fake server a key that may have been placed was deleted (at once
 * or, as a ghost, on the next contact).  Leaks are the asan stage's to
 * find.
 *
 * Servers: real redis-server processes (plain, with a password, a master
 * and its replica, one full under maxmemory 1mb + noeviction), started
 * when a row first needs them; and tests/support/fake_server for what no
 * real server does on demand (wrong reply types, silence, a close in the
 * middle of a reply, replies larger than memory should hold).
 *
 * REDLOCK_HOSTILE_TABLE=<file> writes the table, with the messages this
 * run got, as Markdown (for README.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_server.h"
#include "redis_server.h"
#include "redlock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Short timeouts, so that silence costs little. */
#define CONNECT_MS 300
#define IO_MS 300
/* Slack for a noisy shared machine and sanitizers. */
#define MARGIN_MS 1500
/* A row may not grow the process by more than this. */
#define RSS_LIMIT_MB 64
/* A password no message may show. */
#define SECRET "s3cret-Pw"
/* The lock key of most rows; every key a row uses begins with "h:". */
#define KEY "h:key"
/* A status-less row (void functions, accessors). */
#define NO_STATUS (-1)

/* ---- servers ------------------------------------------------------------ */

static rt_server plain, authsrv, master, replica, oomsrv;
static int plain_up, auth_up, master_up, replica_up, oom_up;
static fs_server *fake;

static rt_server *need_plain(void)
{
    if (!plain_up)
        assert_int_equal(rt_server_start(&plain, NULL), 0);
    plain_up = 1;
    return &plain;
}

static rt_server *need_auth(void)
{
    if (!auth_up)
        assert_int_equal(rt_server_start(&authsrv,
                                         (const char *const[]){
                                             "--requirepass", SECRET, NULL}),
                         0);
    auth_up = 1;
    return &authsrv;
}

static int replica_linked(void)
{
    redisReply *r = rt_cmd(&replica, "INFO replication");
    int up = r && r->type == REDIS_REPLY_STRING &&
             strstr(r->str, "master_link_status:up") != NULL;
    freeReplyObject(r);
    return up;
}

static rt_server *need_replica(void)
{
    if (!replica_up) {
        assert_int_equal(rt_server_start(&master, NULL), 0);
        master_up = 1;
        char port[16];
        snprintf(port, sizeof port, "%d", master.port);
        assert_int_equal(
            rt_server_start(&replica, (const char *const[]){
                                          "--replicaof", "127.0.0.1", port,
                                          NULL}),
            0);
        replica_up = 1;
        int64_t until = rt_now_ms() + 10000;
        while (!replica_linked() && rt_now_ms() < until)
            rt_sleep_ms(50);
        assert_true(replica_linked());
    }
    return &replica;
}

/* Full: maxmemory 1mb, noeviction, and filled until writes are refused. */
static rt_server *need_oom(void)
{
    if (oom_up)
        return &oomsrv;
    assert_int_equal(rt_server_start(&oomsrv,
                                     (const char *const[]){
                                         "--maxmemory", "1mb",
                                         "--maxmemory-policy", "noeviction",
                                         NULL}),
                     0);
    oom_up = 1;
    char value[4096];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    int full = 0;
    for (int i = 0; i < 100000 && !full; i++) {
        redisReply *r = rt_cmd(&oomsrv, "SET fill:%d %s", i, value);
        assert_non_null(r);
        full = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "OOM", 3) == 0;
        freeReplyObject(r);
    }
    assert_true(full);
    return &oomsrv;
}

static const char *fake_url(void)
{
    if (!fake)
        assert_non_null(fake = fs_start());
    return fs_url(fake);
}

/* The number of "h:*" keys on s. */
static size_t lock_keys(rt_server *s)
{
    redisReply *r = rt_cmd(s, "KEYS h:*");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    size_t n = r->elements;
    freeReplyObject(r);
    return n;
}

/* Nothing left locked on any real server (a last release may leave a
 * 50 ms handoff reservation: let it expire). */
static void assert_nothing_locked(void)
{
    rt_server *all[] = {plain_up ? &plain : NULL, auth_up ? &authsrv : NULL,
                        master_up ? &master : NULL,
                        replica_up ? &replica : NULL,
                        oom_up ? &oomsrv : NULL};
    for (size_t i = 0; i < COUNT(all); i++) {
        if (!all[i])
            continue;
        int64_t until = rt_now_ms() + 500;
        while (lock_keys(all[i]) > 0 && rt_now_ms() < until)
            rt_sleep_ms(20);
        if (lock_keys(all[i]) > 0)
            fail_msg("a lock key is left on %s", all[i]->url);
    }
}

static redlock_options fast_options(void)
{
    redlock_options o;
    redlock_options_init(&o);
    o.connect_timeout_ms = CONNECT_MS;
    o.io_timeout_ms = IO_MS;
    o.retry_delay_ms = 20;
    return o;
}

static redlock_client *connect_ok(const char *url, const redlock_options *o)
{
    redlock_status st = REDLOCK_INVALID;
    redlock_client *c = redlock_connect((const char *[]){url}, 1, o, &st);
    if (!c)
        fail_msg("redlock_connect(%s): %s: %s", url, redlock_strerror(st),
                 redlock_last_error());
    return c;
}

/* ---- rows --------------------------------------------------------------- */

typedef enum on_kind {
    ON_NONE,    /* no server */
    ON_REDIS,   /* x->c: a client of the plain server */
    ON_LOCKED,  /* x->c, and x->l holding KEY on it */
    ON_FAKE     /* x->c: a client of the fake server, which obeys rule */
} on_kind;

/* What the fake server does to the command of kind `on` (every one, or
 * only the nth when nth > 0: 1 is the first). */
typedef struct rule {
    fs_kind on;
    int nth;
    const char *reply;
    fs_action action;
    const char *flood;
    size_t flood_limit;
} rule;

typedef struct ctx ctx;

typedef struct row {
    const char *input;  /* the README's first column */
    int expect;         /* a redlock_status, or NO_STATUS */
    const char *needle; /* in redlock_last_error(), or NULL */
    const char *shows;  /* what a status-less row gives, for the README */
    on_kind on;
    rt_server *(*server)(void); /* started before the row is timed */
    redlock_status (*fn)(ctx *x);
    rule rule;
    rule rule2, rule3; /* more, for other kinds of command */
    int undo;   /* fake: a key may have been placed: it must be deleted */
    int max_ms; /* bound on fn's time; 0: IO_MS + MARGIN_MS */
    /* this run's result, for the table */
    int ran, got;
    char message[512];
} row;

struct ctx {
    const row *r;
    redlock_client *c;
    redlock_lock *l;
    char url[256];
    char msg[512]; /* the row's message, when calls came after its own */
};

/* Keep the message of the call the row is about, before cleaning up. */
static redlock_status keep(ctx *x, redlock_status st)
{
    snprintf(x->msg, sizeof x->msg, "%s", redlock_last_error());
    return st;
}

/* ---- the fake server's handler ------------------------------------------ */

typedef struct fake_state {
    rule rules[3];
} fake_state;

static void obey(void *arg, const fs_command *cmd, fs_reply *out)
{
    fake_state *f = arg;
    for (int i = 0; i < 3; i++) {
        const rule *r = &f->rules[i];
        if (r->on == FS_OTHER || cmd->kind != r->on ||
            (r->nth > 0 && cmd->nth + 1 != r->nth))
            continue;
        out->data = r->reply ? r->reply : "";
        out->len = strlen(out->data);
        out->action = r->action;
        if (r->flood) {
            out->flood = r->flood;
            out->flood_len = strlen(r->flood);
            out->flood_limit = r->flood_limit;
        }
        return;
    }
}

/* ---- resident memory while a row runs ----------------------------------- */

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Under ASan, freed blocks wait in a quarantine (256 MB by default) before
 * their memory is reused: a reply buffer that grows by realloc to its
 * 16 MiB cap would leave ~140 MB there and fail the RSS check for no fault
 * of the library.  Keep the quarantine small in this test. */
#if defined(__SANITIZE_ADDRESS__)
#define HOSTILE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HOSTILE_ASAN 1
#endif
#endif
#ifdef HOSTILE_ASAN
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "quarantine_size_mb=8"; }
#endif

static atomic_long rss_peak;
static atomic_int rss_stop;

static void *rss_sampler(void *arg)
{
    (void)arg;
    while (!atomic_load(&rss_stop)) {
        long kb = rss_kb();
        if (kb > atomic_load(&rss_peak))
            atomic_store(&rss_peak, kb);
        rt_sleep_ms(2);
    }
    return NULL;
}

/* ---- row functions: NULL and empty arguments ---------------------------- */

static const char *const one_url[] = {"redis://127.0.0.1:6379"};

static redlock_status connect_status(const char *const *urls, size_t n,
                                     const redlock_options *o)
{
    redlock_status st = REDLOCK_OK;
    redlock_client *c = redlock_connect(urls, n, o, &st);
    if (c) {
        redlock_client_free(c);
        return REDLOCK_OK;
    }
    return st;
}

static redlock_status connect_null_urls(ctx *x)
{
    (void)x;
    return connect_status(NULL, 1, NULL);
}

static redlock_status connect_zero_nodes(ctx *x)
{
    (void)x;
    return connect_status(one_url, 0, NULL);
}

static redlock_status connect_too_many(ctx *x)
{
    (void)x;
    const char *urls[REDLOCK_MAX_NODES + 1];
    for (size_t i = 0; i < COUNT(urls); i++)
        urls[i] = one_url[0];
    return connect_status(urls, COUNT(urls), NULL);
}

static redlock_status connect_null_url(ctx *x)
{
    (void)x;
    return connect_status((const char *const[]){NULL}, 1, NULL);
}

static redlock_status connect_empty_url(ctx *x)
{
    (void)x;
    return connect_status((const char *const[]){""}, 1, NULL);
}

static redlock_status connect_null_status(ctx *x)
{
    (void)x;
    redlock_client *c =
        redlock_connect((const char *const[]){"bad"}, 1, NULL, NULL);
    return c ? REDLOCK_OK : REDLOCK_INVALID;
}

static redlock_status options_init_null(ctx *x)
{
    (void)x;
    redlock_options_init(NULL);
    return (redlock_status)NO_STATUS;
}

static redlock_status client_free_null(ctx *x)
{
    (void)x;
    redlock_client_free(NULL);
    return (redlock_status)NO_STATUS;
}

static redlock_status acquire_null_client(ctx *x)
{
    redlock_lock *l = (redlock_lock *)&x; /* must be set to NULL */
    redlock_status st = redlock_acquire(NULL, KEY, 1000, 0, &l);
    return l ? (redlock_status)99 : st;
}

static redlock_status acquire_null_key(ctx *x)
{
    redlock_lock *l;
    return redlock_acquire(x->c, NULL, 1000, 0, &l);
}

static redlock_status acquire_empty_key(ctx *x)
{
    redlock_lock *l;
    return redlock_acquire(x->c, "", 1000, 0, &l);
}

static redlock_status acquire_null_out(ctx *x)
{
    return redlock_acquire(x->c, KEY, 1000, 0, NULL);
}

static redlock_status acquire_as_null_client(ctx *x)
{
    (void)x;
    redlock_lock *l;
    return redlock_acquire_as(NULL, KEY, "tok", 1000, 0, &l);
}

static redlock_status acquire_as_null_token(ctx *x)
{
    redlock_lock *l;
    return redlock_acquire_as(x->c, KEY, NULL, 1000, 0, &l);
}

static redlock_status acquire_as_empty_token(ctx *x)
{
    redlock_lock *l;
    return redlock_acquire_as(x->c, KEY, "", 1000, 0, &l);
}

static redlock_status acquire_as_handoff_token(ctx *x)
{
    redlock_lock *l;
    return redlock_acquire_as(x->c, KEY, "redlock:handoff", 1000, 0, &l);
}

static redlock_status adopt_null_client(ctx *x)
{
    (void)x;
    redlock_lock *l;
    return redlock_adopt(NULL, KEY, "tok", &l);
}

static redlock_status adopt_null_key(ctx *x)
{
    redlock_lock *l;
    return redlock_adopt(x->c, NULL, "tok", &l);
}

static redlock_status adopt_empty_key(ctx *x)
{
    redlock_lock *l;
    return redlock_adopt(x->c, "", "tok", &l);
}

static redlock_status adopt_null_token(ctx *x)
{
    redlock_lock *l;
    return redlock_adopt(x->c, KEY, NULL, &l);
}

static redlock_status adopt_empty_token(ctx *x)
{
    redlock_lock *l;
    return redlock_adopt(x->c, KEY, "", &l);
}

static redlock_status adopt_null_out(ctx *x)
{
    return redlock_adopt(x->c, KEY, "tok", NULL);
}

static redlock_status inspect_null_client(ctx *x)
{
    (void)x;
    return redlock_inspect(NULL, KEY, NULL, 0, NULL);
}

static redlock_status inspect_null_key(ctx *x)
{
    return redlock_inspect(x->c, NULL, NULL, 0, NULL);
}

static redlock_status inspect_empty_key(ctx *x)
{
    return redlock_inspect(x->c, "", NULL, 0, NULL);
}

static redlock_status inspect_null_buf(ctx *x)
{
    return redlock_inspect(x->c, KEY, NULL, 8, NULL);
}

static redlock_status inspect_small_buf(ctx *x)
{
    char buf[4] = "xyz";
    redlock_status st = redlock_inspect(x->c, KEY, buf, sizeof buf, NULL);
    return strcmp(buf, "xyz") == 0 ? st : (redlock_status)99;
}

static redlock_status keepalive_null(ctx *x)
{
    (void)x;
    return redlock_keepalive(NULL);
}

static redlock_status extend_null(ctx *x)
{
    (void)x;
    return redlock_extend(NULL, 1000);
}

static redlock_status release_null(ctx *x)
{
    (void)x;
    return redlock_release(NULL);
}

static redlock_status detach_null(ctx *x)
{
    (void)x;
    redlock_detach(NULL);
    return (redlock_status)NO_STATUS;
}

static redlock_status accessors_null(ctx *x)
{
    (void)x;
    int ok = redlock_held(NULL) == 0 && redlock_validity_ms(NULL) == 0 &&
             redlock_token(NULL) == NULL && redlock_key(NULL) == NULL &&
             redlock_fence(NULL) == 0;
    return ok ? (redlock_status)NO_STATUS : (redlock_status)99;
}

static redlock_status strerror_unknown(ctx *x)
{
    (void)x;
    int ok = strcmp(redlock_strerror((redlock_status)-1), "unknown status") ==
                 0 &&
             strcmp(redlock_strerror((redlock_status)99), "unknown status") ==
                 0;
    return ok ? (redlock_status)NO_STATUS : (redlock_status)99;
}

/* ---- options ------------------------------------------------------------ */

static redlock_status connect_with(void (*set)(redlock_options *o))
{
    redlock_options o;
    redlock_options_init(&o);
    set(&o);
    return connect_status(one_url, 1, &o);
}

#define OPTION_ROW(name, assignment)                                           \
    static void set_##name(redlock_options *o) { assignment; }                 \
    static redlock_status opt_##name(ctx *x)                                   \
    {                                                                          \
        (void)x;                                                               \
        return connect_with(set_##name);                                       \
    }

OPTION_ROW(connect0, o->connect_timeout_ms = 0)
OPTION_ROW(io_neg, o->io_timeout_ms = -1)
OPTION_ROW(node_neg, o->node_timeout_ms = -1)
OPTION_ROW(retry0, o->retry_delay_ms = 0)
OPTION_ROW(drift_half, o->drift_factor = 0.5)
OPTION_ROW(drift_nan, o->drift_factor = NAN)
OPTION_ROW(floor_neg, o->renew_floor_ms = -1)
OPTION_ROW(hold_neg, o->max_hold_ms = -1)
OPTION_ROW(replicas_neg, o->min_replicas = -1)

static redlock_status fencing_three_nodes(ctx *x)
{
    (void)x;
    redlock_options o;
    redlock_options_init(&o);
    o.fencing = 1;
    return connect_status((const char *const[]){one_url[0], one_url[0],
                                                 one_url[0]},
                          3, &o);
}

/* ---- durations ---------------------------------------------------------- */

static redlock_status acquire_ttl(ctx *x, int64_t ttl)
{
    redlock_lock *l = NULL;
    redlock_status st = keep(x, redlock_acquire(x->c, KEY, ttl, 0, &l));
    if (l)
        redlock_release(l);
    return st;
}

static redlock_status ttl_zero(ctx *x) { return acquire_ttl(x, 0); }
static redlock_status ttl_minus_one(ctx *x) { return acquire_ttl(x, -1); }
static redlock_status ttl_over_max(ctx *x)
{
    return acquire_ttl(x, REDLOCK_TTL_MAX + 1);
}
static redlock_status ttl_int64_max(ctx *x) { return acquire_ttl(x, INT64_MAX); }
static redlock_status ttl_int64_min(ctx *x) { return acquire_ttl(x, INT64_MIN); }
static redlock_status ttl_one(ctx *x) { return acquire_ttl(x, 1); }

static redlock_status ttl_max(ctx *x)
{
    redlock_lock *l = NULL;
    redlock_status st = redlock_acquire(x->c, KEY, REDLOCK_TTL_MAX, 0, &l);
    if (st == REDLOCK_OK) {
        assert_true(rt_pttl(&plain, KEY) > REDLOCK_TTL_MAX - 60000);
        assert_int_equal(redlock_release(l), REDLOCK_OK);
    }
    return st;
}

static redlock_status acquire_wait(ctx *x, int64_t wait)
{
    redlock_lock *l = NULL;
    redlock_status st = keep(x, redlock_acquire(x->c, KEY, 1000, wait, &l));
    if (l)
        redlock_release(l);
    return st;
}

static redlock_status wait_minus_two(ctx *x) { return acquire_wait(x, -2); }
static redlock_status wait_int64_min(ctx *x)
{
    return acquire_wait(x, INT64_MIN);
}
static redlock_status wait_int64_max(ctx *x)
{
    return acquire_wait(x, INT64_MAX);
}

/* extend rows: x->l is held; a refused extend must leave it held. */
static redlock_status extend_ttl(ctx *x, int64_t ttl)
{
    redlock_status st = redlock_extend(x->l, ttl);
    assert_int_equal(redlock_held(x->l), 1);
    return st;
}

static redlock_status extend_zero(ctx *x) { return extend_ttl(x, 0); }
static redlock_status extend_over_max(ctx *x)
{
    return extend_ttl(x, REDLOCK_TTL_MAX + 1);
}
static redlock_status extend_int64_min(ctx *x)
{
    return extend_ttl(x, INT64_MIN);
}

/* ---- keys and tokens ---------------------------------------------------- */

/* Acquire key (keylen bytes, no NUL inside), check that Redis holds our
 * token under exactly that key, release, check it is gone. */
static redlock_status lock_key(ctx *x, const char *key, size_t keylen)
{
    redlock_lock *l = NULL;
    redlock_status st = redlock_acquire(x->c, key, 10000, 0, &l);
    if (st != REDLOCK_OK)
        return st;
    assert_memory_equal(redlock_key(l), key, keylen + 1);
    redisReply *r = rt_cmd(&plain, "GET %b", key, keylen);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, redlock_token(l));
    freeReplyObject(r);
    st = redlock_release(l);
    r = rt_cmd(&plain, "EXISTS %b", key, keylen);
    assert_non_null(r);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    return st;
}

static redlock_status key_all_bytes(ctx *x)
{
    char key[2 + 255 + 1] = "h:";
    for (int b = 1; b <= 255; b++)
        key[1 + b] = (char)b;
    key[sizeof key - 1] = '\0';
    return lock_key(x, key, sizeof key - 1);
}

static redlock_status key_crlf(ctx *x)
{
    return lock_key(x, "h:\r\n", 4);
}

static redlock_status key_format(ctx *x)
{
    return lock_key(x, "h:%s%n%x", 8);
}

static redlock_status key_resp(ctx *x)
{
    const char *k = "h:\r\n*1\r\n$8\r\nFLUSHALL\r\n";
    return lock_key(x, k, strlen(k));
}

static redlock_status key_one_mib(ctx *x)
{
    size_t n = (size_t)1 << 20;
    char *key = malloc(n + 1);
    assert_non_null(key);
    memset(key, 'k', n);
    memcpy(key, "h:", 2);
    key[n] = '\0';
    redlock_status st = lock_key(x, key, n);
    free(key);
    return st;
}

static redlock_status token_all_bytes(ctx *x)
{
    char token[255 + 1];
    for (int b = 1; b <= 255; b++)
        token[b - 1] = (char)b;
    token[255] = '\0';
    redlock_lock *l = NULL;
    redlock_status st = redlock_acquire_as(x->c, KEY, token, 10000, 0, &l);
    if (st != REDLOCK_OK)
        return st;
    char back[300];
    assert_int_equal(redlock_inspect(x->c, KEY, back, sizeof back, NULL),
                     REDLOCK_OK);
    assert_string_equal(back, token);
    return redlock_release(l);
}

/* ---- URLs --------------------------------------------------------------- */

static redlock_status connect_url(const char *url)
{
    redlock_options o = fast_options();
    return connect_status((const char *const[]){url}, 1, &o);
}

static redlock_status url_fixed(ctx *x)
{
    /* the row's input is the URL, in backquotes */
    const char *s = strchr(x->r->input, '`') + 1;
    snprintf(x->url, sizeof x->url, "%.*s", (int)(strchr(s, '`') - s), s);
    return connect_url(x->url);
}

static redlock_status url_long_unix(ctx *x)
{
    char url[320] = "unix:///";
    memset(url + 8, 'a', 200);
    url[208] = '\0';
    (void)x;
    return connect_url(url);
}

static redlock_status url_refused(ctx *x)
{
    snprintf(x->url, sizeof x->url, "redis://127.0.0.1:%d", rt_free_port());
    return connect_url(x->url);
}

/* A peer on a free port that waits for the client's first bytes, answers
 * with its own, and holds the connection until the client closes it. */
typedef struct peer {
    int lfd;
    const char *bytes;
    size_t len;
    pthread_t t;
} peer;

static void *peer_main(void *arg)
{
    peer *p = arg;
    struct timeval tv = {5, 0};
    int fd = accept(p->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    if (recv(fd, buf, sizeof buf, 0) > 0 &&
        send(fd, p->bytes, p->len, MSG_NOSIGNAL) == (ssize_t)p->len)
        while (recv(fd, buf, sizeof buf, 0) > 0) {
        }
    close(fd);
    return NULL;
}

static int peer_start(peer *p, const char *bytes, size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    p->bytes = bytes;
    p->len = len;
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(p->lfd >= 0);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(p->lfd, 4), 0);
    assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&sa, &sl), 0);
    assert_int_equal(pthread_create(&p->t, NULL, peer_main, p), 0);
    return ntohs(sa.sin_port);
}

static void peer_stop(peer *p)
{
    shutdown(p->lfd, SHUT_RDWR); /* wakes an accept() still waiting */
    pthread_join(p->t, NULL);
    close(p->lfd);
}

/* TLS rows need a build with TLS (REDLOCK_WITH_TLS=ON). */
/* Whether this build has TLS, asked once before the timed rows: the
 * first TLS connect of a process also initialises OpenSSL and reads the
 * system's CA store, seconds under valgrind, which is no call's I/O. */
static int tls_built = -1;

static void probe_tls_build(void)
{
    redlock_options o = fast_options();
    tls_built = !(connect_status((const char *const[]){"rediss://127.0.0.1:1"},
                                 1, &o) == REDLOCK_INVALID &&
                  strstr(redlock_last_error(), "not in this build"));
}

static void need_tls_build(void)
{
    if (!tls_built)
        skip();
}

static redlock_status tls_url_garbage_peer(ctx *x)
{
    need_tls_build();
    static const char http[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    peer p;
    snprintf(x->url, sizeof x->url, "rediss://127.0.0.1:%d",
             peer_start(&p, http, sizeof http - 1));
    redlock_options o = fast_options();
    o.tls_insecure = 1;
    redlock_status st =
        keep(x, connect_status((const char *const[]){x->url}, 1, &o));
    peer_stop(&p);
    return st;
}

static redlock_status plain_url_tls_peer(ctx *x)
{
    /* A fatal handshake_failure alert, as a TLS server may send. */
    static const char alert[] = "\x15\x03\x03\x00\x02\x02\x28";
    peer p;
    snprintf(x->url, sizeof x->url, "redis://127.0.0.1:%d",
             peer_start(&p, alert, sizeof alert - 1));
    redlock_status st = keep(x, connect_url(x->url));
    peer_stop(&p);
    return st;
}

/* ---- real servers ------------------------------------------------------- */

static redlock_status auth_wrong(ctx *x)
{
    snprintf(x->url, sizeof x->url, "redis://:wrong-%s@127.0.0.1:%d", SECRET,
             need_auth()->port);
    return connect_url(x->url);
}

static redlock_status auth_missing(ctx *x)
{
    (void)x;
    return connect_url(need_auth()->url);
}

static redlock_status auth_unknown_user(ctx *x)
{
    snprintf(x->url, sizeof x->url, "redis://nobody:%s@127.0.0.1:%d", SECRET,
             need_auth()->port);
    return connect_url(x->url);
}

static redlock_status auth_not_configured(ctx *x)
{
    snprintf(x->url, sizeof x->url, "redis://:%s@127.0.0.1:%d", SECRET,
             need_plain()->port);
    return connect_url(x->url);
}

static redlock_status select_out_of_range(ctx *x)
{
    snprintf(x->url, sizeof x->url, "redis://127.0.0.1:%d/99",
             need_plain()->port);
    return connect_url(x->url);
}

static redlock_status readonly_replica(ctx *x)
{
    redlock_options o = fast_options();
    redlock_client *c = connect_ok(need_replica()->url, &o);
    redlock_lock *l = NULL;
    redlock_status st = keep(x, redlock_acquire(c, KEY, 10000, 0, &l));
    if (l)
        redlock_release(l);
    redlock_client_free(c);
    return st;
}

static redlock_status oom_acquire(ctx *x)
{
    redlock_options o = fast_options();
    redlock_client *c = connect_ok(need_oom()->url, &o);
    redlock_lock *l = NULL;
    redlock_status st = keep(x, redlock_acquire(c, KEY, 10000, 0, &l));
    if (l)
        redlock_release(l);
    redlock_client_free(c);
    return st;
}

/* ---- fake server -------------------------------------------------------- */

static redlock_status fake_connect(ctx *x)
{
    (void)x;
    return connect_url(fake_url());
}

static redlock_status fake_acquire(ctx *x)
{
    redlock_lock *l = NULL;
    redlock_status st = keep(x, redlock_acquire(x->c, KEY, 10000, 0, &l));
    if (l)
        redlock_release(l);
    return st;
}

static redlock_status fake_extend(ctx *x)
{
    redlock_lock *l = NULL;
    assert_int_equal(redlock_acquire(x->c, KEY, 10000, 0, &l), REDLOCK_OK);
    redlock_status st = keep(x, redlock_extend(l, 5000));
    /* the handle stays usable whatever the extend said */
    (void)redlock_held(l);
    (void)redlock_validity_ms(l);
    redlock_status rel = redlock_release(l);
    assert_string_not_equal(redlock_strerror(rel), "unknown status");
    return st;
}

static redlock_status fake_release(ctx *x)
{
    redlock_lock *l = NULL;
    assert_int_equal(redlock_acquire(x->c, KEY, 10000, 0, &l), REDLOCK_OK);
    return redlock_release(l);
}

static redlock_status fake_inspect(ctx *x)
{
    char buf[64];
    int64_t pttl = 0;
    return redlock_inspect(x->c, KEY, buf, sizeof buf, &pttl);
}

static redlock_status fake_adopt(ctx *x)
{
    redlock_lock *l = NULL;
    redlock_status st = keep(x, redlock_adopt(x->c, KEY, "tok", &l));
    if (l)
        redlock_release(l);
    return st;
}

static atomic_int lost_calls;

static void on_lost(const redlock_lock *l, void *arg)
{
    (void)l;
    (void)arg;
    atomic_fetch_add(&lost_calls, 1);
}

/* Kept alive with a 300 ms ttl (renewed every 100 ms), the lock must be
 * found lost within ttl + margin, on_lost called once. */
static redlock_status fake_watchdog(ctx *x)
{
    (void)x;
    redlock_options o = fast_options();
    o.renew_floor_ms = 0;
    o.on_lost = on_lost;
    atomic_store(&lost_calls, 0);
    redlock_client *c = connect_ok(fake_url(), &o);
    redlock_lock *l = NULL;
    assert_int_equal(redlock_acquire(c, KEY, 300, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK);
    int64_t until = rt_now_ms() + 300 + MARGIN_MS;
    while (redlock_held(l) && rt_now_ms() < until)
        rt_sleep_ms(10);
    int held = redlock_held(l);
    int64_t validity = redlock_validity_ms(l);
    rt_sleep_ms(50);
    int calls = atomic_load(&lost_calls);
    redlock_release(l);
    redlock_client_free(c);
    if (held)
        fail_msg("still held %d ms after its validity ended", MARGIN_MS);
    if (validity != 0 || calls != 1)
        fail_msg("lost, but validity %lld ms and %d on_lost calls",
                 (long long)validity, calls);
    return (redlock_status)NO_STATUS;
}

/* A SET that timed out may have been applied: freeing the client at once
 * must still try to delete it (the client's last contact). */
static redlock_status fake_acquire_then_free(ctx *x)
{
    redlock_lock *l = NULL;
    redlock_status st = keep(x, redlock_acquire(x->c, KEY, 10000, 0, &l));
    if (l)
        redlock_release(l);
    fs_set(fake, NULL, NULL); /* answers again, like a server back */
    redlock_client_free(x->c);
    x->c = NULL;
    return st;
}

/* A client of the fake server with options of its own. */
static redlock_client *fake_client(int fencing, int min_replicas)
{
    redlock_options o = fast_options();
    o.fencing = fencing;
    o.min_replicas = min_replicas;
    return connect_ok(fake_url(), &o);
}

static redlock_status fake_acquire_with(ctx *x, int fencing, int replicas,
                                        int64_t wait)
{
    x->c = fake_client(fencing, replicas);
    redlock_lock *l = NULL;
    redlock_status st = keep(x, redlock_acquire(x->c, KEY, 10000, wait, &l));
    if (l)
        redlock_release(l);
    return st;
}

static redlock_status fake_acquire_fenced(ctx *x)
{
    return fake_acquire_with(x, 1, 0, 0);
}

static redlock_status fake_acquire_replicas(ctx *x)
{
    return fake_acquire_with(x, 0, 1, 0);
}

static redlock_status fake_acquire_wait(ctx *x)
{
    redlock_status st = fake_acquire_with(x, 0, 0, 300);
    assert_true(fs_count(fake, FS_SUBSCRIBE) > 0); /* the notifier tried */
    return st;
}

/* ---- the table ---------------------------------------------------------- */

#define BIG_BULK "$9999999999\r\n"
static const char flood_x[] =
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";


/* A row; ROWX takes designators for the other fields. */
#define ROW(in_, st_, nd_, on_, fn_)                                           \
    {.input = in_, .expect = st_, .needle = nd_, .on = on_, .fn = fn_}
#define ROWX(in_, st_, nd_, on_, fn_, ...)                                     \
    {.input = in_, .expect = st_, .needle = nd_, .on = on_, .fn = fn_,         \
     __VA_ARGS__}
/* A status-less row: what it gives, in words. */
#define VOID_ROW(in_, shows_, fn_)                                             \
    {.input = in_, .expect = NO_STATUS, .shows = shows_, .on = ON_NONE,        \
     .fn = fn_}
/* A fake-server row: the command of kind k gets bytes, then act. */
#define FAKE_ROW(in_, st_, nd_, on_, fn_, k_, bytes_, act_, undo_)             \
    {.input = in_, .expect = st_, .needle = nd_, .on = on_, .fn = fn_,         \
     .rule = {k_, 0, bytes_, act_, NULL, 0}, .undo = undo_}
#define URL_ROW(url_, st_, nd_)                                                \
    ROW("URL `" url_ "`", st_, nd_, ON_NONE, url_fixed)

static row rows[] = {
    /* NULL and empty arguments */
    ROW("`redlock_connect(NULL, 1, ...)`", REDLOCK_INVALID, "NULL", ON_NONE,
        connect_null_urls),
    ROW("`redlock_connect(urls, 0, ...)`", REDLOCK_INVALID, "need 1..32",
        ON_NONE, connect_zero_nodes),
    ROW("`redlock_connect(urls, 33, ...)`", REDLOCK_INVALID, "got 33",
        ON_NONE, connect_too_many),
    ROW("`redlock_connect({NULL}, 1, ...)`", REDLOCK_INVALID, "URL 0 is NULL",
        ON_NONE, connect_null_url),
    ROW("`redlock_connect({\"\"}, 1, ...)`", REDLOCK_INVALID, "URL is empty",
        ON_NONE, connect_empty_url),
    ROW("`redlock_connect(..., NULL)` (no status pointer), bad URL",
        REDLOCK_INVALID, "invalid URL", ON_NONE, connect_null_status),
    VOID_ROW("`redlock_options_init(NULL)`", "no-op", options_init_null),
    VOID_ROW("`redlock_client_free(NULL)`", "no-op", client_free_null),
    ROW("`redlock_acquire(NULL, ...)`", REDLOCK_INVALID, "client is NULL",
        ON_NONE, acquire_null_client),
    ROW("`redlock_acquire(c, NULL, ...)`", REDLOCK_INVALID, "key is NULL",
        ON_REDIS, acquire_null_key),
    ROW("`redlock_acquire(c, \"\", ...)`", REDLOCK_INVALID, "key is empty",
        ON_REDIS, acquire_empty_key),
    ROW("`redlock_acquire(c, k, ttl, wait, NULL)`", REDLOCK_INVALID,
        "lock out-pointer is NULL", ON_REDIS, acquire_null_out),
    ROW("`redlock_acquire_as(NULL, ...)`", REDLOCK_INVALID, "client is NULL",
        ON_NONE, acquire_as_null_client),
    ROW("`redlock_acquire_as(c, k, NULL, ...)`", REDLOCK_INVALID,
        "token is NULL", ON_REDIS, acquire_as_null_token),
    ROW("`redlock_acquire_as(c, k, \"\", ...)`", REDLOCK_INVALID,
        "token is empty", ON_REDIS, acquire_as_empty_token),
    ROW("`redlock_acquire_as(c, k, \"redlock:handoff\", ...)`",
        REDLOCK_INVALID, "reserved", ON_REDIS, acquire_as_handoff_token),
    ROW("`redlock_adopt(NULL, ...)`", REDLOCK_INVALID, "client is NULL",
        ON_NONE, adopt_null_client),
    ROW("`redlock_adopt(c, NULL, ...)`", REDLOCK_INVALID, "key is NULL",
        ON_REDIS, adopt_null_key),
    ROW("`redlock_adopt(c, \"\", ...)`", REDLOCK_INVALID, "key is empty",
        ON_REDIS, adopt_empty_key),
    ROW("`redlock_adopt(c, k, NULL, ...)`", REDLOCK_INVALID, "token is NULL",
        ON_REDIS, adopt_null_token),
    ROW("`redlock_adopt(c, k, \"\", ...)`", REDLOCK_INVALID, "token is empty",
        ON_REDIS, adopt_empty_token),
    ROW("`redlock_adopt(c, k, t, NULL)`", REDLOCK_INVALID,
        "lock out-pointer is NULL", ON_REDIS, adopt_null_out),
    ROW("`redlock_inspect(NULL, ...)`", REDLOCK_INVALID, "client is NULL",
        ON_NONE, inspect_null_client),
    ROW("`redlock_inspect(c, NULL, ...)`", REDLOCK_INVALID, "key is NULL",
        ON_REDIS, inspect_null_key),
    ROW("`redlock_inspect(c, \"\", ...)`", REDLOCK_INVALID, "key is empty",
        ON_REDIS, inspect_empty_key),
    ROW("`redlock_inspect(c, k, NULL, 8, ...)`", REDLOCK_INVALID,
        "buf is NULL but len is 8", ON_REDIS, inspect_null_buf),
    ROW("`redlock_inspect()` into a 4-byte buffer (the token needs 37)",
        REDLOCK_INVALID, "too small", ON_LOCKED, inspect_small_buf),
    ROW("`redlock_keepalive(NULL)`", REDLOCK_INVALID, "lock is NULL", ON_NONE,
        keepalive_null),
    ROW("`redlock_extend(NULL, ...)`", REDLOCK_INVALID, "lock is NULL",
        ON_NONE, extend_null),
    ROW("`redlock_release(NULL)`", REDLOCK_INVALID, "lock is NULL", ON_NONE,
        release_null),
    VOID_ROW("`redlock_detach(NULL)`", "no-op", detach_null),
    VOID_ROW("`redlock_held`, `_validity_ms`, `_token`, `_key`, `_fence` "
             "of NULL",
             "0, 0, NULL, NULL, 0", accessors_null),
    VOID_ROW("`redlock_strerror(-1)`, `redlock_strerror(99)`",
             "\"unknown status\"", strerror_unknown),

    /* options */
    ROW("option `connect_timeout_ms = 0`", REDLOCK_INVALID,
        "connect_timeout_ms must be > 0", ON_NONE, opt_connect0),
    ROW("option `io_timeout_ms = -1`", REDLOCK_INVALID,
        "io_timeout_ms must be > 0", ON_NONE, opt_io_neg),
    ROW("option `node_timeout_ms = -1`", REDLOCK_INVALID, "node_timeout_ms",
        ON_NONE, opt_node_neg),
    ROW("option `retry_delay_ms = 0`", REDLOCK_INVALID, "retry_delay_ms",
        ON_NONE, opt_retry0),
    ROW("option `drift_factor = 0.5`", REDLOCK_INVALID, "drift_factor",
        ON_NONE, opt_drift_half),
    ROW("option `drift_factor = NAN`", REDLOCK_INVALID, "drift_factor",
        ON_NONE, opt_drift_nan),
    ROW("option `renew_floor_ms = -1`", REDLOCK_INVALID, "renew_floor_ms",
        ON_NONE, opt_floor_neg),
    ROW("option `max_hold_ms = -1`", REDLOCK_INVALID, "max_hold_ms", ON_NONE,
        opt_hold_neg),
    ROW("option `min_replicas = -1`", REDLOCK_INVALID, "min_replicas",
        ON_NONE, opt_replicas_neg),
    ROW("option `fencing = 1` with 3 nodes", REDLOCK_INVALID,
        "fencing needs a single node", ON_NONE, fencing_three_nodes),

    /* durations */
    ROW("acquire, ttl 0", REDLOCK_INVALID, "ttl_ms 0 is outside", ON_REDIS,
        ttl_zero),
    ROW("acquire, ttl -1", REDLOCK_INVALID, "ttl_ms -1 is outside", ON_REDIS,
        ttl_minus_one),
    ROW("acquire, ttl `REDLOCK_TTL_MAX + 1`", REDLOCK_INVALID,
        "ttl_ms 1099511627777 is outside", ON_REDIS, ttl_over_max),
    ROW("acquire, ttl `INT64_MAX`", REDLOCK_INVALID, "is outside 1..",
        ON_REDIS, ttl_int64_max),
    ROW("acquire, ttl `INT64_MIN`", REDLOCK_INVALID, "is outside 1..",
        ON_REDIS, ttl_int64_min),
    ROW("acquire, ttl 1 (eaten by the drift allowance; no key left)",
        REDLOCK_INVALID, "leaves no validity", ON_REDIS, ttl_one),
    ROW("acquire, ttl `REDLOCK_TTL_MAX` (34 years)", REDLOCK_OK, NULL,
        ON_REDIS, ttl_max),
    ROW("acquire, wait -2", REDLOCK_INVALID, "wait_ms -2 is negative",
        ON_REDIS, wait_minus_two),
    ROW("acquire, wait `INT64_MIN`", REDLOCK_INVALID, "is negative", ON_REDIS,
        wait_int64_min),
    ROW("acquire, wait `INT64_MAX` on a free key", REDLOCK_OK, NULL,
        ON_REDIS, wait_int64_max),
    ROW("extend, ttl 0 (the lock stays held)", REDLOCK_INVALID,
        "ttl_ms 0 is outside", ON_LOCKED, extend_zero),
    ROW("extend, ttl `REDLOCK_TTL_MAX + 1`", REDLOCK_INVALID,
        "is outside 1..", ON_LOCKED, extend_over_max),
    ROW("extend, ttl `INT64_MIN`", REDLOCK_INVALID, "is outside 1..",
        ON_LOCKED, extend_int64_min),

    /* keys and tokens */
    ROW("key of every byte 0x01..0xff", REDLOCK_OK, NULL, ON_REDIS,
        key_all_bytes),
    ROW("key `\"h:\\r\\n\"`", REDLOCK_OK, NULL, ON_REDIS, key_crlf),
    ROW("key `\"h:%s%n%x\"`", REDLOCK_OK, NULL, ON_REDIS, key_format),
    ROW("key holding a RESP command (`\\r\\n*1\\r\\n$8\\r\\nFLUSHALL\\r\\n`)",
        REDLOCK_OK, NULL, ON_REDIS, key_resp),
    ROWX("a 1 MiB key (acquire, then release)", REDLOCK_OK, NULL, ON_REDIS,
         key_one_mib, .max_ms = 5000),
    ROW("`acquire_as` token of every byte 0x01..0xff (inspect gives it back)",
        REDLOCK_OK, NULL, ON_REDIS, token_all_bytes),

    /* URLs */
    URL_ROW("redis://h:0", REDLOCK_INVALID, "outside 1..65535"),
    URL_ROW("redis://h:65536", REDLOCK_INVALID, "outside 1..65535"),
    URL_ROW("redis://h:-1", REDLOCK_INVALID, "not a number"),
    URL_ROW("redis://[::1", REDLOCK_INVALID, "closing"),
    URL_ROW("redis://::1:6379", REDLOCK_INVALID, "brackets"),
    URL_ROW("redis://h/x", REDLOCK_INVALID, "db \"x\" is not a number"),
    URL_ROW("redis://h/99999999999", REDLOCK_INVALID, "outside 0.."),
    URL_ROW("redis://h?db=1", REDLOCK_INVALID, "no query"),
    URL_ROW("http://h", REDLOCK_INVALID, "unsupported scheme"),
    URL_ROW("rediss://h:0", REDLOCK_INVALID, "outside 1..65535"),
    URL_ROW("localhost:6379", REDLOCK_INVALID, "scheme"),
    URL_ROW("redis://a,b", REDLOCK_INVALID, "may hold only"),
    URL_ROW("redis://u:p%zz@h", REDLOCK_INVALID, "malformed percent escape"),
    URL_ROW("redis://u:%00@h", REDLOCK_INVALID, "NUL"),
    URL_ROW("redis://:" SECRET "@h:0", REDLOCK_INVALID, "redis://:***@h:0"),
    URL_ROW("unix://tmp/redis.sock", REDLOCK_INVALID, "absolute"),
    ROW("URL `unix:///aaa...` (a 200-byte path)", REDLOCK_INVALID,
        "the limit is", ON_NONE, url_long_unix),
    URL_ROW("unix:///s?db=1&db=2", REDLOCK_INVALID, "twice"),
    URL_ROW("unix:///nonexistent/redis.sock", REDLOCK_IO, "cannot connect"),
    ROWX("URL `redis://no-such-host.invalid`", REDLOCK_IO, "cannot connect",
         ON_NONE, url_fixed, .max_ms = 5000),
    ROW("a port nothing listens on", REDLOCK_IO, "cannot connect", ON_NONE,
        url_refused),
    ROWX("a `rediss://` URL on a peer that answers the handshake with "
         "non-TLS bytes", REDLOCK_TLS, "does not speak TLS", ON_NONE,
         tls_url_garbage_peer, .max_ms = CONNECT_MS + MARGIN_MS),
    ROWX("a `redis://` URL on a peer that answers with a TLS alert",
         REDLOCK_TLS, "speaks TLS", ON_NONE, plain_url_tls_peer,
         .max_ms = CONNECT_MS + MARGIN_MS),

    /* real servers that refuse */
    ROWX("wrong password (server has `requirepass`)", REDLOCK_AUTH,
         "AUTH refused", ON_NONE, auth_wrong, .server = need_auth),
    ROWX("no password (server has `requirepass`)", REDLOCK_AUTH, "NOAUTH",
         ON_NONE, auth_missing, .server = need_auth),
    ROWX("unknown ACL user", REDLOCK_AUTH, "AUTH as user nobody refused",
         ON_NONE, auth_unknown_user, .server = need_auth),
    ROWX("a password the server does not have", REDLOCK_AUTH, "AUTH refused",
         ON_NONE, auth_not_configured, .server = need_plain),
    ROWX("db 99 of 16", REDLOCK_SERVER, "SELECT 99 refused", ON_NONE,
         select_out_of_range, .server = need_plain),
    ROWX("acquire on a replica (`READONLY`)", REDLOCK_SERVER, "READONLY",
         ON_NONE, readonly_replica, .server = need_replica),
    ROWX("acquire on a full server (`maxmemory 1mb`, `noeviction`: `OOM`)",
         REDLOCK_SERVER, "OOM", ON_NONE, oom_acquire, .server = need_oom),

    /* the fake server: connect */
    FAKE_ROW("`SCRIPT LOAD` answered `-ERR unknown command`", REDLOCK_SERVER,
             "SCRIPT LOAD refused", ON_NONE, fake_connect, FS_SCRIPT_LOAD,
             "-ERR unknown command 'SCRIPT'\r\n", FS_SEND, 0),
    FAKE_ROW("`SCRIPT LOAD` answered `-NOAUTH`", REDLOCK_AUTH, "NOAUTH",
             ON_NONE, fake_connect, FS_SCRIPT_LOAD,
             "-NOAUTH Authentication required.\r\n", FS_SEND, 0),
    ROWX("server accepts, never answers (connect)", REDLOCK_IO, "timed out",
         ON_NONE, fake_connect, .rule = {FS_SCRIPT_LOAD, 0, "", FS_HANG, NULL, 0},
         .max_ms = CONNECT_MS + IO_MS + MARGIN_MS),
    FAKE_ROW("server closes at once (connect)", REDLOCK_IO,
             "connection closed by the server", ON_NONE, fake_connect,
             FS_SCRIPT_LOAD, "", FS_CLOSE, 0),

    /* the fake server: acquire (SET) */
    FAKE_ROW("`SET` answered with an array (`*2 :1 :2`)", REDLOCK_SERVER,
             "unexpected reply type", ON_FAKE, fake_acquire, FS_SET,
             "*2\r\n:1\r\n:2\r\n", FS_SEND, 1),
    FAKE_ROW("`SET` answered with a bulk string", REDLOCK_SERVER,
             "unexpected reply type", ON_FAKE, fake_acquire, FS_SET,
             "$3\r\nabc\r\n", FS_SEND, 1),
    FAKE_ROW("`SET` answered with an integer (`:1`)", REDLOCK_SERVER,
             "unexpected reply", ON_FAKE, fake_acquire, FS_SET, ":1\r\n",
             FS_SEND, 1),
    FAKE_ROW("`SET` answered `+QUEUED` (a status, but not OK)",
             REDLOCK_SERVER, "unexpected reply", ON_FAKE, fake_acquire,
             FS_SET, "+QUEUED\r\n", FS_SEND, 1),
    FAKE_ROW("fenced acquire script answered `+OK` (no fence number)",
             REDLOCK_SERVER, "unexpected reply", ON_NONE, fake_acquire_fenced,
             FS_ACQUIRE_SCRIPT, "+OK\r\n", FS_SEND, 1),
    FAKE_ROW("`WAIT` (`min_replicas` 1) answered `:0`", REDLOCK_IO,
             "0 of 1 replicas acknowledged", ON_NONE, fake_acquire_replicas,
             FS_WAIT, ":0\r\n", FS_SEND, 1),
    FAKE_ROW("`WAIT` answered with a bulk string", REDLOCK_IO,
             "replicas acknowledged", ON_NONE, fake_acquire_replicas, FS_WAIT,
             "$1\r\n1\r\n", FS_SEND, 1),
    ROWX("held elsewhere, `SUBSCRIBE` answered garbage (wait 300 ms)",
         REDLOCK_BUSY, "after waiting 300 ms", ON_NONE, fake_acquire_wait,
         .rule = {FS_SET, 0, "$-1\r\n", FS_SEND, NULL, 0},
         .rule2 = {FS_ACQUIRE_SCRIPT, 0, ":0\r\n", FS_SEND, NULL, 0},
         .rule3 = {FS_SUBSCRIBE, 0, "hello\r\n", FS_SEND, NULL, 0},
         .max_ms = 300 + IO_MS + MARGIN_MS),
    FAKE_ROW("`SET` answered `-OOM ...`", REDLOCK_SERVER, "OOM", ON_FAKE,
             fake_acquire, FS_SET,
             "-OOM command not allowed when used memory > 'maxmemory'.\r\n",
             FS_SEND, 0),
    FAKE_ROW("`SET` answered `-READONLY ...`", REDLOCK_SERVER, "READONLY",
             ON_FAKE, fake_acquire, FS_SET,
             "-READONLY You can't write against a read only replica.\r\n",
             FS_SEND, 0),
    FAKE_ROW("`SET` answered `-NOAUTH ...`", REDLOCK_AUTH, "NOAUTH", ON_FAKE,
             fake_acquire, FS_SET, "-NOAUTH Authentication required.\r\n",
             FS_SEND, 0),
    FAKE_ROW("`SET` never answered (deleted on the next contact)", REDLOCK_IO,
             "timed out", ON_FAKE, fake_acquire, FS_SET, "", FS_HANG, 1),
    FAKE_ROW("`SET` never answered, the client freed at once", REDLOCK_IO,
             "timed out", ON_FAKE, fake_acquire_then_free, FS_SET, "",
             FS_HANG, 1),
    FAKE_ROW("`SET`: the server closes mid-reply (`$10\\r\\nabc`)",
             REDLOCK_IO, "connection closed by the server", ON_FAKE,
             fake_acquire, FS_SET, "$10\r\nabc", FS_CLOSE, 1),
    FAKE_ROW("`SET`: the server resets the connection", REDLOCK_IO,
             "Connection reset", ON_FAKE, fake_acquire, FS_SET, "", FS_RESET,
             1),
    FAKE_ROW("`SET` answered garbage (`hello`)", REDLOCK_IO, "Protocol error",
             ON_FAKE, fake_acquire, FS_SET, "hello\r\n", FS_SEND, 1),
    FAKE_ROW("`SET` answered `$-5` (a negative length)", REDLOCK_IO,
             "out of range", ON_FAKE, fake_acquire, FS_SET, "$-5\r\n",
             FS_SEND, 1),
    FAKE_ROW("`SET` answered arrays nested 9 deep", REDLOCK_IO, "nested",
             ON_FAKE, fake_acquire, FS_SET,
             "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
             FS_SEND, 1),
    ROWX("`SET` answered `$9999999999` and 256 MiB that never end it "
         "(larger than memory should hold)",
         REDLOCK_IO, "", ON_FAKE, fake_acquire,
         .rule = {FS_SET, 0, BIG_BULK, FS_FLOOD, flood_x, (size_t)256 << 20},
         .undo = 1),
    FAKE_ROW("`SET` answered `*1000000000` (a billion elements announced)",
             REDLOCK_IO, "", ON_FAKE, fake_acquire, FS_SET,
             "*1000000000\r\n", FS_HANG, 1),

    /* the fake server: extend, release, inspect, adopt */
    FAKE_ROW("extend answered with a bulk string", REDLOCK_SERVER,
             "unexpected reply type", ON_FAKE, fake_extend, FS_EXTEND,
             "$3\r\nabc\r\n", FS_SEND, 0),
    FAKE_ROW("extend answered `:0` (token gone)", REDLOCK_NOT_HELD,
             "our token does not hold it", ON_FAKE, fake_extend, FS_EXTEND,
             ":0\r\n", FS_SEND, 0),
    FAKE_ROW("extend answered `:2` (the key was gone: put back)",
             REDLOCK_NOT_HELD, "our token does not hold it", ON_FAKE,
             fake_extend, FS_EXTEND, ":2\r\n", FS_SEND, 0),
    FAKE_ROW("extend answered `:3`", REDLOCK_SERVER, "unexpected reply",
             ON_FAKE, fake_extend, FS_EXTEND, ":3\r\n", FS_SEND, 0),
    FAKE_ROW("extend never answered", REDLOCK_IO, "timed out", ON_FAKE,
             fake_extend, FS_EXTEND, "", FS_HANG, 0),
    FAKE_ROW("release answered with a bulk string", REDLOCK_SERVER,
             "unexpected reply type", ON_FAKE, fake_release, FS_RELEASE,
             "$3\r\nabc\r\n", FS_SEND, 0),
    FAKE_ROW("release answered `:0` (token gone)", REDLOCK_NOT_HELD,
             "our token does not hold it", ON_FAKE, fake_release, FS_RELEASE,
             ":0\r\n", FS_SEND, 0),
    FAKE_ROW("release answered `:-1`", REDLOCK_SERVER, "unexpected reply",
             ON_FAKE, fake_release, FS_RELEASE, ":-1\r\n", FS_SEND, 0),
    ROWX("release never answered (deleted on the next contact)", REDLOCK_IO,
         "timed out", ON_FAKE, fake_release,
         .rule = {FS_RELEASE, 1, "", FS_HANG, NULL, 0}, .undo = 1),
    ROWX("release: the server closes mid-reply", REDLOCK_IO,
         "connection closed by the server", ON_FAKE, fake_release,
         .rule = {FS_RELEASE, 1, ":", FS_CLOSE, NULL, 0}, .undo = 1),
    FAKE_ROW("inspect answered `+OK`", REDLOCK_SERVER,
             "unexpected reply to inspect", ON_FAKE, fake_inspect, FS_INSPECT,
             "+OK\r\n", FS_SEND, 0),
    FAKE_ROW("inspect answered a 3-element array", REDLOCK_SERVER,
             "unexpected reply to inspect", ON_FAKE, fake_inspect, FS_INSPECT,
             "*3\r\n$1\r\na\r\n:1\r\n:2\r\n", FS_SEND, 0),
    FAKE_ROW("inspect answered `*2 $3 abc $3 xyz` (ttl not a number)",
             REDLOCK_SERVER, "unexpected reply to inspect", ON_FAKE,
             fake_inspect, FS_INSPECT, "*2\r\n$3\r\nabc\r\n$3\r\nxyz\r\n",
             FS_SEND, 0),
    FAKE_ROW("inspect answered `*2 :1 :2` (holder not a string)",
             REDLOCK_SERVER, "unexpected reply to inspect", ON_FAKE, fake_inspect,
             FS_INSPECT, "*2\r\n:1\r\n:2\r\n", FS_SEND, 0),
    FAKE_ROW("inspect answered a 100-byte token (64-byte buffer)",
             REDLOCK_INVALID, "too small", ON_FAKE, fake_inspect, FS_INSPECT,
             "*2\r\n$100\r\n"
             "0123456789012345678901234567890123456789012345678901234567890123"
             "456789012345678901234567890123456789\r\n:5000\r\n",
             FS_SEND, 0),
    FAKE_ROW("adopt: inspect answered `*0`", REDLOCK_SERVER,
             "unexpected reply to inspect", ON_FAKE, fake_adopt, FS_INSPECT,
             "*0\r\n", FS_SEND, 0),

    /* the fake server: the watchdog (ttl 300 ms, renewed every 100 ms) */
    {.input = "watchdog renewals answered with a bulk string",
     .expect = NO_STATUS,
     .shows = "`redlock_held()` 0 once the validity ends; `on_lost` once",
     .on = ON_NONE, .fn = fake_watchdog,
     .rule = {FS_EXTEND, 0, "$3\r\nabc\r\n", FS_SEND, NULL, 0},
     .max_ms = 300 + 2 * MARGIN_MS},
    {.input = "watchdog renewals never answered", .expect = NO_STATUS,
     .shows = "`redlock_held()` 0 once the validity ends; `on_lost` once",
     .on = ON_NONE, .fn = fake_watchdog,
     .rule = {FS_EXTEND, 0, "", FS_HANG, NULL, 0},
     .max_ms = 300 + 2 * MARGIN_MS},
    {.input = "watchdog renewal answered `:0`", .expect = NO_STATUS,
     .shows = "`redlock_held()` 0 at once; `on_lost` once", .on = ON_NONE,
     .fn = fake_watchdog, .rule = {FS_EXTEND, 0, ":0\r\n", FS_SEND, NULL, 0},
     .max_ms = 300 + 2 * MARGIN_MS},
};

/* ---- running a row ------------------------------------------------------ */

static fake_state fake_rule; /* static: outlives a failed row */

static void test_row(void **state)
{
    row *r = *state;
    ctx x;
    memset(&x, 0, sizeof x);
    x.r = r;
    redlock_options o = fast_options();

    if (r->rule.on != FS_OTHER) {
        fake_url();
        fake_rule.rules[0] = r->rule;
        fake_rule.rules[1] = r->rule2;
        fake_rule.rules[2] = r->rule3;
        fs_set(fake, obey, &fake_rule);
    } else if (fake) {
        fs_set(fake, NULL, NULL);
    }
    if (r->on == ON_REDIS || r->on == ON_LOCKED)
        x.c = connect_ok(need_plain()->url, &o);
    if (r->on == ON_LOCKED)
        assert_int_equal(redlock_acquire(x.c, KEY, 10000, 0, &x.l),
                         REDLOCK_OK);
    if (r->on == ON_FAKE)
        x.c = connect_ok(fake_url(), &o);
    if (r->server)
        r->server();

    long base = rss_kb();
    atomic_store(&rss_peak, base);
    int64_t t0 = rt_now_ms();
    int got = (int)r->fn(&x);
    int64_t ms = rt_now_ms() - t0;
    long grew_mb = (atomic_load(&rss_peak) - base) / 1024;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", x.msg[0] ? x.msg : redlock_last_error());
    r->ran = 1;
    r->got = got;
    snprintf(r->message, sizeof r->message, "%s", msg);

    /* A key the fake server may have set must have been deleted: now, or
     * on the next contact (an inspect, on a fresh connection). */
    int deleted = 1;
    if (r->undo) {
        deleted = fs_saw_arg(fake, FS_RELEASE, KEY);
        if (!deleted && x.c) {
            fs_set(fake, NULL, NULL);
            (void)redlock_inspect(x.c, KEY, NULL, 0, NULL);
            deleted = fs_saw_arg(fake, FS_RELEASE, KEY);
        }
    }
    if (x.l) {
        assert_int_equal(redlock_held(x.l), 1);
        assert_int_equal(redlock_release(x.l), REDLOCK_OK);
    }
    redlock_client_free(x.c);
    if (fake)
        fs_set(fake, NULL, NULL);

    if (r->expect == NO_STATUS) {
        if (got != NO_STATUS)
            fail_msg("%s: not as documented (%s)", r->input, r->shows);
    } else {
        if (got < REDLOCK_OK || got > REDLOCK_TLS)
            fail_msg("%s: status %d is outside the enum", r->input, got);
        if (got != r->expect)
            fail_msg("%s: got %s (%s), expected %s", r->input,
                     redlock_strerror((redlock_status)got), msg,
                     redlock_strerror((redlock_status)r->expect));
        if (got != REDLOCK_OK && msg[0] == '\0')
            fail_msg("%s: %s without a message", r->input,
                     redlock_strerror((redlock_status)got));
        if (r->needle && !strstr(msg, r->needle))
            fail_msg("%s: message \"%s\" lacks \"%s\"", r->input, msg,
                     r->needle);
    }
    if (strstr(msg, SECRET))
        fail_msg("%s: the message shows the password: %s", r->input, msg);
    int64_t bound = r->max_ms ? r->max_ms : IO_MS + MARGIN_MS;
    if (ms > bound)
        fail_msg("%s: took %lld ms (bound %lld ms; timeouts %d ms)", r->input,
                 (long long)ms, (long long)bound, IO_MS);
    if (grew_mb > RSS_LIMIT_MB)
        fail_msg("%s: the process grew by %ld MB while it ran (limit %d MB)",
                 r->input, grew_mb, RSS_LIMIT_MB);
    if (!deleted)
        fail_msg("%s: the key it may have set was never deleted", r->input);
    assert_nothing_locked();
}

/* ---- the table as Markdown ---------------------------------------------- */

/* Ports and temporary paths vary from run to run: show fixed ones. */
static void fputs_sanitized(const char *s, FILE *f)
{
    while (*s) {
        if (strncmp(s, "127.0.0.1:", 10) == 0) {
            fputs("127.0.0.1:6379", f);
            s += 10;
            while (*s >= '0' && *s <= '9')
                s++;
            continue;
        }
        if (*s == '|')
            fputs("\\|", f);
        else if (*s == '`')
            fputc('\'', f);
        else
            fputc(*s, f);
        s++;
    }
}

static void write_table(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "test_hostile: cannot write %s: %s\n", path,
                strerror(errno));
        return;
    }
    fputs("| Input | Status | Message (example) |\n| --- | --- | --- |\n", f);
    for (size_t i = 0; i < COUNT(rows); i++) {
        const row *r = &rows[i];
        fprintf(f, "| %s | ", r->input);
        if (r->expect == NO_STATUS) {
            fprintf(f, "— | %s |\n", r->shows);
            continue;
        }
        /* Names from the header's own table: a new status is named. */
        static const char *const names[] = {
#define STATUS_NAME_(name, value, msg) [value] = #name,
            REDLOCK_STATUS_MAP(STATUS_NAME_)
#undef STATUS_NAME_
        };
        fprintf(f, "`REDLOCK_%s` | ", names[r->expect]);
        if (r->expect == REDLOCK_OK)
            fputs("", f);
        else if (r->ran && r->got == r->expect && r->message[0])
            fputs_sanitized(r->message, f);
        else
            fprintf(f, "(this run: %s)",
                    r->ran ? redlock_strerror((redlock_status)r->got)
                           : "not run");
        fputs(" |\n", f);
    }
    fclose(f);
}

/* ---- main --------------------------------------------------------------- */

static pthread_t sampler;

static int group_teardown(void **state)
{
    (void)state;
    fs_stop(fake);
    fake = NULL;
    rt_server_stop(&replica);
    rt_server_stop(&master);
    rt_server_stop(&plain);
    rt_server_stop(&authsrv);
    rt_server_stop(&oomsrv);
    plain_up = auth_up = master_up = replica_up = oom_up = 0;
    return 0;
}

int main(void)
{
    struct CMUnitTest tests[COUNT(rows)];
    for (size_t i = 0; i < COUNT(rows); i++) {
        struct CMUnitTest t = {rows[i].input, test_row, NULL, NULL, &rows[i]};
        tests[i] = t;
    }
    /* REDLOCK_HOSTILE_FILTER: run only the rows matching this pattern
     * (cmocka's: '*' and '?' wildcards). */
    const char *filter = getenv("REDLOCK_HOSTILE_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    probe_tls_build();
    pthread_create(&sampler, NULL, rss_sampler, NULL);
    int failed = cmocka_run_group_tests(tests, NULL, group_teardown);
    atomic_store(&rss_stop, 1);
    pthread_join(sampler, NULL);
    const char *table = getenv("REDLOCK_HOSTILE_TABLE");
    if (table && *table)
        write_table(table);
    return failed;
}
