/*
 * TLS (rediss://) against real TLS-only redis-server processes, with the
 * certificates of tests/support/make_certs.sh in $REDLOCK_TEST_CERTS:
 * locking over TLS, every certificate and protocol failure with its status,
 * message and a bounded return time, mutual TLS, bad files, a stalled
 * handshake, a server killed mid-session or mid-write (no SIGPIPE: this
 * process keeps SIGPIPE's default action), a wait ended by REDLOCK_TLS,
 * and session resumption.  Internal: it reads the nodes' handshake
 * counters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "redis_server.h"
#include "redlock.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_MS 800
#define IO_MS 800
/* Slack for a noisy shared machine, sanitizers and valgrind. */
#define MARGIN_MS 1500

static const char *certs;
static char path_buf[16][512];
static int path_next;

static const char *cert(const char *name)
{
    char *p = path_buf[path_next++ % 16];
    snprintf(p, sizeof path_buf[0], "%s/%s", certs, name);
    return p;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static redlock_options opts(void)
{
    redlock_options o;
    redlock_options_init(&o);
    o.connect_timeout_ms = CONNECT_MS;
    o.io_timeout_ms = IO_MS;
    o.retry_delay_ms = 20;
    o.tls_cacert = cert("ca.crt");
    return o;
}

/* A TLS server with extra arguments (NULL-terminated), or a fail. */
static void start_tls(rt_server *s, const char *const *extra)
{
    assert_int_equal(rt_server_start_tls(s, certs, extra), 0);
}

/* redlock_connect that must fail with st and a message holding needle,
 * within bound_ms. */
static void connect_fails(const char *url, const redlock_options *o,
                          redlock_status want, const char *needle,
                          int64_t bound_ms)
{
    redlock_status st = REDLOCK_OK;
    int64_t t0 = now_ms();
    redlock_client *c = redlock_connect((const char *[]){url}, 1, o, &st);
    int64_t took = now_ms() - t0;
    if (c)
        redlock_client_free(c);
    if (st != want || !strstr(redlock_last_error(), needle) || took > bound_ms)
        fail_msg("%s: got %s (%s) in %lld ms; want %s with \"%s\" within "
                 "%lld ms",
                 url, redlock_strerror(st), redlock_last_error(),
                 (long long)took, redlock_strerror(want), needle,
                 (long long)bound_ms);
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

/* ---- locking over TLS ---------------------------------------------------- */

static void lock_cycle(redlock_client *c, rt_server *s, const char *key)
{
    redlock_lock *l = NULL;
    assert_int_equal(redlock_acquire(c, key, 5000, 0, &l), REDLOCK_OK);
    char *v = rt_get(s, key);
    assert_non_null(v);
    assert_string_equal(v, redlock_token(l));
    free(v);
    assert_int_equal(redlock_extend(l, 20000), REDLOCK_OK);
    assert_true(rt_pttl(s, key) > 10000);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    assert_int_equal(rt_pttl(s, key), -2);
}

static void test_lock_over_tls(void **state)
{
    (void)state;
    rt_server s;
    start_tls(&s, NULL);
    redlock_options o = opts();
    redlock_client *c = connect_ok(s.url, &o);
    lock_cycle(c, &s, "tls:a");
    redlock_client_free(c);

    /* The CA as a hashed directory; and the host's name checked as a DNS
     * name (localhost) rather than an IP address. */
    o.tls_cacert = NULL;
    o.tls_cacertdir = cert("cadir");
    char url[128];
    snprintf(url, sizeof url, "rediss://localhost:%d", s.port);
    c = connect_ok(url, &o);
    lock_cycle(c, &s, "tls:b");
    redlock_client_free(c);

    /* redis:// with the tls option. */
    o = opts();
    o.tls = 1;
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", s.port);
    c = connect_ok(url, &o);
    lock_cycle(c, &s, "tls:c");
    redlock_client_free(c);
    rt_server_stop(&s);
}

/* Replies of many TLS records in one exchange (SCAN pages of long keys):
 * each must be read although poll() cannot see what OpenSSL holds. */
static int count_holder(const redlock_holder *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
    return 0;
}

static void test_many_records(void **state)
{
    (void)state;
    rt_server s;
    start_tls(&s, NULL);
    char key[600];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    for (int i = 0; i < 400; i++) {
        snprintf(key, 16, "tls:%05d", i);
        key[9] = 'k';
        redisReply *r = rt_cmd(&s, "SET %s v PX 60000", key);
        assert_non_null(r);
        freeReplyObject(r);
    }
    redlock_options o = opts();
    redlock_client *c = connect_ok(s.url, &o);
    int n = 0;
    assert_int_equal(redlock_list(c, "tls:*", REDLOCK_LIST_ALL, count_holder,
                                  &n),
                     REDLOCK_OK);
    assert_int_equal(n, 400);
    redlock_client_free(c);
    rt_server_stop(&s);
}

/* ---- certificate failures ------------------------------------------------ */

static void test_unknown_ca(void **state)
{
    (void)state;
    rt_server s, u;
    start_tls(&s, NULL);
    redlock_options o = opts();
    o.tls_cacert = NULL; /* the system's store: no test CA there */
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
    connect_fails(s.url, &o, REDLOCK_TLS, "unknown CA", CONNECT_MS + MARGIN_MS);
    assert_non_null(strstr(redlock_last_error(), "tls_cacert"));

    /* A server certificate signed by another CA than ours. */
    start_tls(&u, (const char *const[]){"--tls-cert-file", cert("unknown.crt"),
                                        "--tls-key-file", cert("unknown.key"),
                                        NULL});
    o = opts();
    connect_fails(u.url, &o, REDLOCK_TLS, "unknown CA", CONNECT_MS + MARGIN_MS);
    rt_server_stop(&u);
    rt_server_stop(&s);
}

static void test_wrong_name(void **state)
{
    (void)state;
    rt_server s;
    start_tls(&s, (const char *const[]){"--tls-cert-file", cert("wrongname.crt"),
                                        "--tls-key-file", cert("wrongname.key"),
                                        NULL});
    redlock_options o = opts();
    connect_fails(s.url, &o, REDLOCK_TLS, "not for \"127.0.0.1\"",
                  CONNECT_MS + MARGIN_MS);
    char url[128];
    snprintf(url, sizeof url, "rediss://localhost:%d", s.port);
    connect_fails(url, &o, REDLOCK_TLS, "not for \"localhost\"",
                  CONNECT_MS + MARGIN_MS);

    /* tls_sni names what the certificate carries: accepted. */
    o.tls_sni = "other.example";
    redlock_client *c = connect_ok(s.url, &o);
    lock_cycle(c, &s, "tls:sni");
    redlock_client_free(c);

    /* tls_insecure takes it without any check. */
    o = opts();
    o.tls_cacert = NULL;
    o.tls_insecure = 1;
    c = connect_ok(s.url, &o);
    lock_cycle(c, &s, "tls:insecure");
    redlock_client_free(c);
    rt_server_stop(&s);
}

static void test_expired(void **state)
{
    (void)state;
    rt_server s;
    start_tls(&s, (const char *const[]){"--tls-cert-file", cert("expired.crt"),
                                        "--tls-key-file", cert("expired.key"),
                                        NULL});
    redlock_options o = opts();
    connect_fails(s.url, &o, REDLOCK_TLS, "expired", CONNECT_MS + MARGIN_MS);
    rt_server_stop(&s);
}

/* ---- mutual TLS ---------------------------------------------------------- */

static void test_client_certificates(void **state)
{
    (void)state;
    rt_server s;
    start_tls(&s, (const char *const[]){"--tls-auth-clients", "yes", NULL});
    redlock_options o = opts();
    connect_fails(s.url, &o, REDLOCK_TLS, "wants a client certificate",
                  CONNECT_MS + MARGIN_MS);

    o.tls_cert = cert("other-client.crt");
    o.tls_key = cert("other-client.key");
    connect_fails(s.url, &o, REDLOCK_TLS, "refused our client certificate",
                  CONNECT_MS + MARGIN_MS);

    o.tls_cert = cert("client.crt");
    o.tls_key = cert("client.key");
    redlock_client *c = connect_ok(s.url, &o);
    lock_cycle(c, &s, "tls:mtls");
    redlock_client_free(c);
    rt_server_stop(&s);
}

/* ---- bad files: REDLOCK_INVALID naming the option, never the content --- */

static void invalid(redlock_options *o, const char *needle)
{
    /* No server needed: files are checked before any connection. */
    connect_fails("rediss://127.0.0.1:1", o, REDLOCK_INVALID, needle, 2000);
    assert_null(strstr(redlock_last_error(), "PRIVATE KEY"));
    assert_null(strstr(redlock_last_error(), "BEGIN"));
}

static void test_bad_files(void **state)
{
    (void)state;
    char garbage[] = "/tmp/redlock-tls-garbage-XXXXXX";
    int fd = mkstemp(garbage);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a pem file\n", 15), 15);
    close(fd);

    redlock_options o = opts();
    o.tls_cacert = "/nonexistent/ca.crt";
    invalid(&o, "tls_cacert \"/nonexistent/ca.crt\": cannot read");

    o = opts();
    o.tls_cacert = garbage;
    invalid(&o, "tls_cacert");

    o = opts();
    o.tls_cacertdir = "/nonexistent-dir";
    invalid(&o, "tls_cacertdir");

    o = opts();
    o.tls_cert = cert("client.crt");
    invalid(&o, "tls_cert given without tls_key");
    o = opts();
    o.tls_key = cert("client.key");
    invalid(&o, "tls_key given without tls_cert");

    o = opts();
    o.tls_cert = garbage;
    o.tls_key = cert("client.key");
    invalid(&o, "tls_cert");

    o = opts();
    o.tls_cert = cert("client.crt");
    o.tls_key = garbage;
    invalid(&o, "tls_key");

    /* A key that is not the certificate's. */
    o = opts();
    o.tls_cert = cert("client.crt");
    o.tls_key = cert("server.key");
    invalid(&o, "does not match");

    /* The key file given as the certificate: the message names the path
     * and says what is wrong, and shows none of the key. */
    o = opts();
    o.tls_cert = cert("client.key");
    o.tls_key = cert("client.key");
    invalid(&o, "tls_cert");

    /* Unreadable (when not root, whom permissions do not stop). */
    if (geteuid() != 0) {
        assert_int_equal(chmod(garbage, 0), 0);
        o = opts();
        o.tls_cacert = garbage;
        invalid(&o, "cannot read");
    }
    unlink(garbage);
}

/* ---- the wrong protocol on a port ---------------------------------------- */

static void test_plaintext_server_on_tls_url(void **state)
{
    (void)state;
    rt_server s;
    assert_int_equal(rt_server_start_plain(&s, NULL), 0);
    char url[128];
    snprintf(url, sizeof url, "rediss://127.0.0.1:%d", s.port);
    redlock_options o = opts();
    /* Redis waits for the end of a line that the ClientHello never has. */
    connect_fails(url, &o, REDLOCK_IO, "does that port speak TLS",
                  CONNECT_MS + MARGIN_MS);
    rt_server_stop(&s);
}

static void test_tls_server_on_plain_url(void **state)
{
    (void)state;
    rt_server s;
    start_tls(&s, NULL);
    char url[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", s.port);
    redlock_options o = opts();
    /* Redis's TLS port resets a plaintext connection without an alert. */
    connect_fails(url, &o, REDLOCK_IO, "use rediss://", CONNECT_MS + MARGIN_MS);
    rt_server_stop(&s);
}

/* ---- stalls, kills, SIGPIPE ---------------------------------------------- */

static void test_stalled_handshake(void **state)
{
    (void)state;
    rt_server s;
    start_tls(&s, NULL);
    assert_int_equal(rt_server_pause(&s), 0); /* TCP accepted, no answer */
    redlock_options o = opts();
    connect_fails(s.url, &o, REDLOCK_IO, "timed out in the TLS handshake",
                  CONNECT_MS + MARGIN_MS);
    assert_int_equal(rt_server_resume(&s), 0);
    rt_server_stop(&s);
}

static void test_server_restarted(void **state)
{
    (void)state;
    rt_server s;
    start_tls(&s, NULL);
    redlock_options o = opts();
    redlock_client *c = connect_ok(s.url, &o);
    lock_cycle(c, &s, "tls:r1");
    assert_int_equal(rt_server_restart(&s), 0);
    /* The pooled connection is dead: found out, replaced, locking again. */
    redlock_lock *l = NULL;
    redlock_status st = REDLOCK_IO;
    int64_t until = now_ms() + 5000;
    while (st != REDLOCK_OK && now_ms() < until) {
        int64_t t0 = now_ms();
        st = redlock_acquire(c, "tls:r2", 5000, 0, &l);
        assert_true(now_ms() - t0 < CONNECT_MS + IO_MS + MARGIN_MS);
        assert_true(st == REDLOCK_OK || st == REDLOCK_IO);
        if (st != REDLOCK_OK)
            sleep_ms(50);
    }
    assert_int_equal(st, REDLOCK_OK);
    assert_int_equal(redlock_release(l), REDLOCK_OK);

    /* Killed mid-session, while the client is idle: IO, then back. */
    rt_server_kill(&s);
    int64_t t0 = now_ms();
    st = redlock_acquire(c, "tls:r3", 5000, 0, &l);
    assert_int_equal(st, REDLOCK_IO);
    assert_true(now_ms() - t0 < CONNECT_MS + IO_MS + MARGIN_MS);
    assert_int_equal(rt_server_restart(&s), 0);
    until = now_ms() + 5000;
    while ((st = redlock_acquire(c, "tls:r3", 5000, 0, &l)) != REDLOCK_OK &&
           now_ms() < until)
        sleep_ms(50);
    assert_int_equal(st, REDLOCK_OK);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    redlock_client_free(c);
    rt_server_stop(&s);
}

typedef struct killer {
    rt_server *s;
    long after_ms;
} killer;

static void *kill_later(void *arg)
{
    killer *k = arg;
    sleep_ms(k->after_ms);
    kill(k->s->pid, SIGKILL); /* the harness reaps it in rt_server_stop */
    return NULL;
}

/* The server dies while our big request is still being written: the
 * next write meets a reset socket.  SIGPIPE keeps its default action in
 * this process, so a write that raised it would end the test. */
static void test_no_sigpipe(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_DFL);
    rt_server s;
    start_tls(&s, NULL);
    redlock_options o = opts();
    o.io_timeout_ms = 3000;
    redlock_client *c = connect_ok(s.url, &o);
    size_t len = 8u << 20; /* more than the socket buffers hold */
    char *key = malloc(len + 1);
    assert_non_null(key);
    memset(key, 'p', len);
    key[len] = '\0';
    memcpy(key, "tls:", 4);
    assert_int_equal(rt_server_pause(&s), 0);
    pthread_t t;
    killer k = {&s, 300};
    assert_int_equal(pthread_create(&t, NULL, kill_later, &k), 0);
    redlock_lock *l = NULL;
    int64_t t0 = now_ms();
    redlock_status st = redlock_acquire(c, key, 5000, 0, &l);
    pthread_join(t, NULL);
    assert_int_equal(st, REDLOCK_IO);
    assert_true(now_ms() - t0 < o.io_timeout_ms + MARGIN_MS);
    free(key);
    redlock_client_free(c);
    rt_server_stop(&s);
}

/* ---- a wait ends on REDLOCK_TLS ------------------------------------------ */

static void test_wait_ends_on_tls_error(void **state)
{
    (void)state;
    rt_server s;
    start_tls(&s, NULL);
    redlock_options o = opts();
    redlock_client *a = connect_ok(s.url, &o), *b = connect_ok(s.url, &o);
    redlock_lock *la = NULL, *lb = NULL;
    assert_int_equal(redlock_acquire(a, "tls:w", 30000, 0, &la), REDLOCK_OK);
    /* From now on new connections get an expired certificate, and b's
     * are cut: its next try must reconnect, and fail for good. */
    assert_true(rt_cmd_ok(&s, "CONFIG SET tls-cert-file %s tls-key-file %s",
                          cert("expired.crt"), cert("expired.key")));
    redisReply *r = rt_cmd(&s, "CLIENT KILL TYPE normal");
    freeReplyObject(r);
    int64_t t0 = now_ms();
    redlock_status st = redlock_acquire(b, "tls:w", 30000, 20000, &lb);
    int64_t took = now_ms() - t0;
    if (st != REDLOCK_TLS || took > CONNECT_MS + IO_MS + MARGIN_MS)
        fail_msg("wait: %s (%s) after %lld ms; want %s at once",
                 redlock_strerror(st), redlock_last_error(), (long long)took,
                 redlock_strerror(REDLOCK_TLS));
    assert_non_null(strstr(redlock_last_error(), "expired"));
    assert_true(rt_cmd_ok(&s, "CONFIG SET tls-cert-file %s tls-key-file %s",
                          cert("server.crt"), cert("server.key")));
    redlock_release(la);
    redlock_client_free(b);
    redlock_client_free(a);
    rt_server_stop(&s);
}

/* ---- sessions ------------------------------------------------------------ */

static void test_session_resumed(void **state)
{
    (void)state;
    rt_server s;
    start_tls(&s, NULL);
    redlock_options o = opts();
    redlock_client *c = connect_ok(s.url, &o);
    redlock__node *n = &c->nodes[0];
    lock_cycle(c, &s, "tls:s0"); /* reads the session tickets */
    assert_int_equal(atomic_load(&n->tls_handshakes), 1);
    assert_int_equal(atomic_load(&n->tls_resumed), 0);

    enum { ROUNDS = 20 };
    int64_t t0 = now_ms();
    for (int i = 0; i < ROUNDS; i++) {
        redisReply *r = rt_cmd(&s, "CLIENT KILL TYPE normal");
        freeReplyObject(r);
        lock_cycle(c, &s, "tls:s1");
    }
    int64_t resumed_ms = now_ms() - t0;
    long hs = atomic_load(&n->tls_handshakes);
    long res = atomic_load(&n->tls_resumed);
    redlock_client_free(c);
    assert_true(hs >= 1 + ROUNDS);
    if (res < ROUNDS)
        fail_msg("%ld of %ld handshakes resumed, want >= %d", res, hs, ROUNDS);

    /* For comparison (printed, not asserted): a full handshake each time
     * (a new client has no session). */
    t0 = now_ms();
    for (int i = 0; i < ROUNDS; i++) {
        c = connect_ok(s.url, &o);
        lock_cycle(c, &s, "tls:s2");
        redlock_client_free(c);
    }
    int64_t full_ms = now_ms() - t0;
    print_message("%d reconnects with resumption: %lld ms; %d new clients "
                  "(full handshake): %lld ms\n",
                  ROUNDS, (long long)resumed_ms, ROUNDS, (long long)full_ms);
    rt_server_stop(&s);
}

int main(void)
{
    certs = getenv("REDLOCK_TEST_CERTS");
    if (!certs || !*certs) {
        fprintf(stderr, "test_tls: REDLOCK_TEST_CERTS is not set (ctest sets "
                        "it; or run tests/support/make_certs.sh DIR)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_over_tls),
        cmocka_unit_test(test_many_records),
        cmocka_unit_test(test_unknown_ca),
        cmocka_unit_test(test_wrong_name),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_client_certificates),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_plaintext_server_on_tls_url),
        cmocka_unit_test(test_tls_server_on_plain_url),
        cmocka_unit_test(test_stalled_handshake),
        cmocka_unit_test(test_server_restarted),
        cmocka_unit_test(test_no_sigpipe),
        cmocka_unit_test(test_wait_ends_on_tls_error),
        cmocka_unit_test(test_session_resumed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
