/*
 * libFuzzer target: how the library takes what a server answers.
 *
 * A fake server (tests/support/fake_server.c) on 127.0.0.1 answers every
 * command the client sends, in arrival order across all its connections,
 * with the next response taken from the input; when they run out it
 * closes the connection.  The client, with 50 ms timeouts, connects
 * (SCRIPT LOAD of its scripts, AUTH and SELECT when the URL asks), then
 * acquires, and as the input's flags say inspects, extends, keeps the lock
 * alive through the watchdog, adopts, releases or detaches, and is freed.
 *
 * Input format (text, so that seeds are readable):
 *
 *     FLAGS\n                      first line: letters, see below
 *     RESPONSE\n---\n              responses, each ended by a line "---"
 *     RESPONSE\n---\n              (the last one may end the input)
 *
 * A response is sent as it is, "\n" before the "---" included, unless it
 * begins with
 *     !c   send the rest, then close the connection
 *     !r   send the rest, then reset it (RST)
 *     !h   send the rest, then never answer on it again
 *     !s   send the rest in two parts, 2 ms apart
 *
 * Flags: p password in the URL (AUTH pw), u user and password (AUTH u pw),
 * d db 3 (SELECT 3), 3 three nodes (one fake server behind three URLs),
 * f fencing, r min_replicas 1 (WAIT), w wait 80 ms to acquire (waiters,
 * notifier), a acquire_as a fixed token, e a second acquire of the same
 * key, i inspect, b inspect into an 8-byte buffer, x extend, k keepalive
 * (ttl 60 ms, renewed every 20 ms, for about 50 ms), o adopt the fixed
 * token, D detach instead of release, n leave the lock to
 * redlock_client_free().
 *
 * Invariants: no crash, overflow, undefined behaviour or leak (ASan,
 * UBSan, LeakSanitizer); every status is one of the enum's, and a failure
 * leaves a message; a lock handle reports sane values; the whole run ends
 * within HANG_MS (every call is bounded by the 50 ms timeouts).  A broken
 * invariant is reported with __builtin_trap().
 */
#include "fake_server.h"
#include "redlock.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIMEOUT_MS 50
/* Far above what the timeouts allow, below libFuzzer's -timeout. */
#define HANG_MS 5000
#define MAX_RESPONSES 256
#define TOKEN "fz-token"

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_reply: %s: ", #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            __builtin_trap();                                                  \
        }                                                                      \
    } while (0)

typedef struct response {
    const char *data;
    size_t len;
    fs_action action;
    int split;
} response;

typedef struct script {
    response r[MAX_RESPONSES];
    int n;
    int next; /* read and written on the server's thread only */
} script;

static fs_server *server;

static void answer(void *arg, const fs_command *cmd, fs_reply *out)
{
    (void)cmd;
    script *s = arg;
    if (s->next >= s->n) {
        out->data = "";
        out->len = 0;
        out->action = FS_CLOSE;
        return;
    }
    const response *r = &s->r[s->next++];
    out->data = r->data;
    out->len = r->len;
    out->action = r->action;
    out->split = r->split ? r->len / 2 : 0;
}

/* Split data (after the flags line) into responses. */
static void parse_script(const char *p, const char *end, script *s)
{
    s->n = 0;
    s->next = 0;
    while (p < end && s->n < MAX_RESPONSES) {
        /* the response runs to the next "---\n" at a line start */
        const char *q = p, *stop = end, *resume = end;
        for (;;) {
            if ((size_t)(end - q) >= 4 && memcmp(q, "---\n", 4) == 0 &&
                (q == p || q[-1] == '\n')) {
                stop = q;
                resume = q + 4;
                break;
            }
            const char *nl = memchr(q, '\n', (size_t)(end - q));
            if (!nl)
                break;
            q = nl + 1;
        }
        response *r = &s->r[s->n++];
        r->data = p;
        r->len = (size_t)(stop - p);
        r->action = FS_SEND;
        r->split = 0;
        if (r->len >= 2 && r->data[0] == '!') {
            switch (r->data[1]) {
            case 'c':
                r->action = FS_CLOSE;
                break;
            case 'r':
                r->action = FS_RESET;
                break;
            case 'h':
                r->action = FS_HANG;
                break;
            case 's':
                r->split = 1;
                break;
            default:
                break;
            }
            r->data += 2;
            r->len -= 2;
        }
        p = resume;
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static redlock_status checked(redlock_status st, const char *what)
{
    /* A status of the header's table (REDLOCK_STATUS_MAP), whichever. */
    CHECK(strcmp(redlock_strerror(st), "unknown status") != 0,
          "%s: status %d", what, (int)st);
    if (st != REDLOCK_OK)
        CHECK(redlock_last_error()[0] != '\0', "%s: %s without a message",
              what, redlock_strerror(st));
    return st;
}

static void check_lock(const redlock_lock *l, int as_token)
{
    CHECK(redlock_held(l) == 0 || redlock_held(l) == 1, "held %d",
          redlock_held(l));
    CHECK(redlock_validity_ms(l) >= 0, "validity %lld",
          (long long)redlock_validity_ms(l));
    CHECK(strcmp(redlock_key(l), "fz") == 0, "key %s", redlock_key(l));
    CHECK(redlock_token(l) && redlock_token(l)[0], "no token");
    if (as_token)
        CHECK(strcmp(redlock_token(l), TOKEN) == 0, "token %s",
              redlock_token(l));
}

static int has(const char *flags, char f) { return strchr(flags, f) != NULL; }

static void run(const char *flags)
{
    char url[96];
    const char *cred = has(flags, 'u')   ? "fz-user:fz-pw@"
                       : has(flags, 'p') ? ":fz-pw@"
                                         : "";
    snprintf(url, sizeof url, "redis://%s127.0.0.1:%d%s", cred,
             fs_port(server), has(flags, 'd') ? "/3" : "");
    const char *urls[3] = {url, url, url};
    size_t n = has(flags, '3') ? 3 : 1;

    redlock_options o;
    redlock_options_init(&o);
    o.connect_timeout_ms = TIMEOUT_MS;
    o.io_timeout_ms = TIMEOUT_MS;
    o.retry_delay_ms = 10;
    o.renew_floor_ms = 0;
    o.fencing = has(flags, 'f') && n == 1;
    o.min_replicas = has(flags, 'r') ? 1 : 0;

    redlock_status st = REDLOCK_IO;
    redlock_client *c = redlock_connect(urls, n, &o, &st);
    checked(st, "connect");
    CHECK((c != NULL) == (st == REDLOCK_OK), "client %p, status %d",
          (void *)c, (int)st);
    if (!c)
        return;

    int keep = has(flags, 'k');
    int64_t ttl = keep ? 60 : 10000;
    int64_t wait = has(flags, 'w') ? 80 : 0;
    int as = has(flags, 'a');
    redlock_lock *l = NULL, *l2 = NULL;
    st = as ? redlock_acquire_as(c, "fz", TOKEN, ttl, wait, &l)
            : redlock_acquire(c, "fz", ttl, wait, &l);
    checked(st, "acquire");
    CHECK((l != NULL) == (st == REDLOCK_OK), "lock %p, status %d", (void *)l,
          (int)st);
    if (l)
        check_lock(l, as);

    if (has(flags, 'e')) {
        st = redlock_acquire(c, "fz", ttl, 0, &l2);
        checked(st, "second acquire");
        CHECK((l2 != NULL) == (st == REDLOCK_OK), "second lock");
    }
    if (has(flags, 'i') || has(flags, 'b')) {
        char buf[64];
        size_t len = has(flags, 'b') ? 8 : sizeof buf;
        int64_t pttl = -7;
        memset(buf, 0x5a, sizeof buf);
        st = checked(redlock_inspect(c, "fz", buf, len, &pttl), "inspect");
        if (st == REDLOCK_OK)
            CHECK(memchr(buf, '\0', len) != NULL, "inspect: no NUL");
        for (size_t i = len; i < sizeof buf; i++)
            CHECK((unsigned char)buf[i] == 0x5a, "inspect wrote past %zu",
                  len);
        checked(redlock_inspect(c, "fz", NULL, 0, NULL), "inspect (no buf)");
    }
    if (l && has(flags, 'x')) {
        checked(redlock_extend(l, ttl), "extend");
        check_lock(l, as);
    }
    if (l && keep) {
        st = checked(redlock_keepalive(l), "keepalive");
        sleep_ms(50);
        check_lock(l, as);
    }
    if (has(flags, 'o')) {
        redlock_lock *a = NULL;
        st = checked(redlock_adopt(c, "fz", TOKEN, &a), "adopt");
        CHECK((a != NULL) == (st == REDLOCK_OK), "adopted lock");
        if (a) {
            check_lock(a, 1);
            checked(redlock_release(a), "release (adopted)");
        }
    }
    if (l2)
        checked(redlock_release(l2), "release (second)");
    if (l && !has(flags, 'n')) {
        if (has(flags, 'D'))
            redlock_detach(l);
        else
            checked(redlock_release(l), "release");
    }
    redlock_client_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!server) {
        server = fs_start();
        CHECK(server != NULL, "no fake server");
    }
    /* A copy the responses point into, NUL-terminated for the flags. */
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    char *nl = memchr(copy, '\n', size);
    char *body = nl ? nl + 1 : copy + size;
    char flags[33];
    size_t flen = (size_t)((nl ? nl : copy + size) - copy);
    if (flen > sizeof flags - 1)
        flen = sizeof flags - 1;
    memcpy(flags, copy, flen);
    flags[flen] = '\0'; /* and cut at a NUL inside, if any */

    static script s;
    parse_script(body, copy + size, &s);
    fs_set(server, answer, &s);

    int64_t t0 = now_ms();
    run(flags);
    int64_t took = now_ms() - t0;
    fs_set(server, NULL, NULL); /* drop every connection, forget s */
    free(copy);
    CHECK(took < HANG_MS, "the run took %lld ms (timeouts %d ms)",
          (long long)took, TIMEOUT_MS);
    return 0;
}
