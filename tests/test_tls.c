/*
 * TLS (rediss://) against real TLS-only redis-server processes, with the
 * certificates of tests/support/make_certs.sh in $REDLOCK_TEST_CERTS:
 * locking over TLS, every certificate and protocol failure with its status,
 * message and a bounded return time, host names checked against the
 * subjectAltName only (never the CN), mutual TLS, bad files (FIFOs as
 * files or in tls_cacertdir, an encrypted key: refused at once, no
 * prompt), an empty tls_sni, a stalled handshake, a server killed
 * mid-session or mid-write (no SIGPIPE: this process keeps SIGPIPE's
 * default action), a wait ended by REDLOCK_TLS, and session resumption.  Internal: it reads the nodes' handshake
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
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

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
    int64_t t0 = rt_now_ms();
    redlock_client *c = redlock_connect((const char *[]){url}, 1, o, &st);
    int64_t took = rt_now_ms() - t0;
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

/* A URL that names the server by its DNS name, localhost, so that the
 * name (not an IP address) is what the certificate is checked against.
 * A bare system may lack /etc/hosts (debootstrap makes none), and then
 * localhost does not resolve: the URL names 127.0.0.1 and tls_sni gives
 * the name instead, the same check by the same code. */
static void localhost_url(char *url, size_t len, int port, redlock_options *o)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo("localhost", NULL, &hints, &ai) == 0) {
        freeaddrinfo(ai);
        snprintf(url, len, "rediss://localhost:%d", port);
        return;
    }
    printf("[ NOTE     ] localhost does not resolve here: named by tls_sni\n");
    snprintf(url, len, "rediss://127.0.0.1:%d", port);
    o->tls_sni = "localhost";
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
    localhost_url(url, sizeof url, s.port, &o);
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
    localhost_url(url, sizeof url, s.port, &o);
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

/* Host names are checked against the certificate's DNS names only, never
 * its CN (RFC 6125): cnonly.crt says CN=localhost but names only
 * IP:127.0.0.1. */
static void test_common_name_ignored(void **state)
{
    (void)state;
    rt_server s;
    start_tls(&s, (const char *const[]){"--tls-cert-file", cert("cnonly.crt"),
                                        "--tls-key-file", cert("cnonly.key"),
                                        NULL});
    redlock_options o = opts();
    char url[128];
    localhost_url(url, sizeof url, s.port, &o);
    connect_fails(url, &o, REDLOCK_TLS, "not for \"localhost\"",
                  CONNECT_MS + MARGIN_MS);
    o.tls_sni = "localhost";
    connect_fails(s.url, &o, REDLOCK_TLS, "not for \"localhost\"",
                  CONNECT_MS + MARGIN_MS);

    /* Its IP address is in it: taken. */
    o = opts();
    redlock_client *c = connect_ok(s.url, &o);
    lock_cycle(c, &s, "tls:cn");
    redlock_client_free(c);
    rt_server_stop(&s);
}

/* An empty tls_sni names nothing to check: refused at redlock_connect
 * rather than at the first handshake. */
static void test_empty_sni(void **state)
{
    (void)state;
    redlock_options o = opts();
    o.tls_sni = "";
    connect_fails("rediss://127.0.0.1:1", &o, REDLOCK_INVALID,
                  "tls_sni is empty", 2000);
    /* Nor a name no handshake should carry. */
    o.tls_sni = " ";
    connect_fails("rediss://127.0.0.1:1", &o, REDLOCK_INVALID,
                  "a space or a control character", 2000);
    o.tls_sni = "redis.example\nX-Evil: 1";
    connect_fails("rediss://127.0.0.1:1", &o, REDLOCK_INVALID,
                  "a space or a control character", 2000);
    char longname[301];
    memset(longname, 'a', 300);
    longname[300] = '\0';
    o.tls_sni = longname;
    connect_fails("rediss://127.0.0.1:1", &o, REDLOCK_INVALID,
                  "at most 253", 2000);
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

/* A call that should return at once but blocks (a FIFO opened without
 * O_NONBLOCK waits for a writer forever) must fail the suite, not hang
 * it: SIGALRM ends the process with a message. */
static void hung(int sig)
{
    (void)sig;
    static const char m[] = "test_tls: redlock_connect still blocked after the "
                            "watchdog's time (a FIFO opened?)\n";
    (void)!write(2, m, sizeof m - 1);
    _exit(1);
}

static void watchdog(unsigned seconds)
{
    signal(SIGALRM, seconds ? hung : SIG_DFL);
    alarm(seconds);
}

/* A FIFO as a file option: refused at redlock_connect, at once.  Opened
 * blocking (fopen, then OpenSSL's own open) it waited for a writer
 * forever. */
/* The system's store as OpenSSL reads it ($SSL_CERT_FILE, $SSL_CERT_DIR)
 * when no CA option is given: a FIFO there hung redlock_connect too. */
static void test_fifo_in_default_store(void **state)
{
    (void)state;
    char dir[] = "/tmp/redlock-tls-store-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char fifo[80];
    snprintf(fifo, sizeof fifo, "%s/77483dbb.0", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    char *old_file = getenv("SSL_CERT_FILE") ? strdup(getenv("SSL_CERT_FILE")) : NULL;
    char *old_dir = getenv("SSL_CERT_DIR") ? strdup(getenv("SSL_CERT_DIR")) : NULL;

    watchdog(10);
    redlock_options o = opts();
    o.tls_cacert = NULL;
    setenv("SSL_CERT_FILE", fifo, 1);
    connect_fails("rediss://127.0.0.1:1", &o, REDLOCK_INVALID,
                  "SSL_CERT_FILE", 5000);
    setenv("SSL_CERT_FILE", cert("ca.crt"), 1);
    char dirs[200];
    snprintf(dirs, sizeof dirs, "/nonexistent:%s", dir);
    setenv("SSL_CERT_DIR", dirs, 1);
    connect_fails("rediss://127.0.0.1:1", &o, REDLOCK_INVALID,
                  "77483dbb.0 is not a regular file", 5000);
    watchdog(0);

    if (old_file)
        setenv("SSL_CERT_FILE", old_file, 1);
    else
        unsetenv("SSL_CERT_FILE");
    if (old_dir)
        setenv("SSL_CERT_DIR", old_dir, 1);
    else
        unsetenv("SSL_CERT_DIR");
    free(old_file);
    free(old_dir);
    unlink(fifo);
    rmdir(dir);
}

static void test_fifo_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/redlock-tls-fifo-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char fifo[64];
    snprintf(fifo, sizeof fifo, "%s/pipe", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    char want[128];

    watchdog(10);
    redlock_options o = opts();
    o.tls_cacert = fifo;
    snprintf(want, sizeof want, "tls_cacert \"%s\": not a regular file", fifo);
    connect_fails("rediss://127.0.0.1:1", &o, REDLOCK_INVALID, want, 5000);

    o = opts();
    o.tls_cert = fifo;
    o.tls_key = cert("client.key");
    snprintf(want, sizeof want, "tls_cert \"%s\": not a regular file", fifo);
    connect_fails("rediss://127.0.0.1:1", &o, REDLOCK_INVALID, want, 5000);

    o = opts();
    o.tls_cert = cert("client.crt");
    o.tls_key = fifo;
    snprintf(want, sizeof want, "tls_key \"%s\": not a regular file", fifo);
    connect_fails("rediss://127.0.0.1:1", &o, REDLOCK_INVALID, want, 5000);

    /* A symbolic link is followed: to a FIFO refused, to a file taken. */
    char link[64];
    snprintf(link, sizeof link, "%s/link", dir);
    assert_int_equal(symlink(fifo, link), 0);
    o = opts();
    o.tls_cacert = link;
    connect_fails("rediss://127.0.0.1:1", &o, REDLOCK_INVALID,
                  "not a regular file", 5000);
    unlink(link);
    assert_int_equal(symlink(cert("ca.crt"), link), 0);
    o = opts();
    o.tls_cacert = link;
    connect_fails("rediss://127.0.0.1:1", &o, REDLOCK_IO, "", 5000);
    watchdog(0);

    unlink(link);
    unlink(fifo);
    rmdir(dir);
}

/* A FIFO in tls_cacertdir under the CA's hash name: OpenSSL opens it only
 * when a handshake looks the issuer up, and then blocks there, past
 * connect_timeout_ms.  Refused at redlock_connect instead, naming it. */
static void test_fifo_in_cacertdir(void **state)
{
    (void)state;
    FILE *f = fopen(cert("ca.crt"), "r");
    assert_non_null(f);
    X509 *ca = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(ca);
    unsigned long hash = X509_subject_name_hash(ca);
    X509_free(ca);

    char dir[] = "/tmp/redlock-tls-cadir-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char fifo[80];
    snprintf(fifo, sizeof fifo, "%s/%08lx.0", dir, hash);
    assert_int_equal(mkfifo(fifo, 0600), 0);

    rt_server s;
    start_tls(&s, NULL);
    redlock_options o = opts();
    o.tls_cacert = NULL;
    o.tls_cacertdir = dir;
    char want[128];
    snprintf(want, sizeof want, "tls_cacertdir \"%s\": %08lx.0 is not a "
             "regular file", dir, hash);
    watchdog(10);
    connect_fails(s.url, &o, REDLOCK_INVALID, want, 5000);
    watchdog(0);

    /* The same directory with the CA itself under that name: taken. */
    unlink(fifo);
    assert_int_equal(symlink(cert("ca.crt"), fifo), 0);
    redlock_client *c = connect_ok(s.url, &o);
    lock_cycle(c, &s, "tls:cadir");
    redlock_client_free(c);
    unlink(fifo);
    rmdir(dir);
    rt_server_stop(&s);
}

/* An encrypted key: refused, without asking anyone for its passphrase.
 * OpenSSL's default is to prompt on /dev/tty, else to write the prompt to
 * stderr and read stdin: a library that printed, ate its caller's input
 * and blocked.  Run in a child without a controlling terminal (setsid), its
 * stdin a pipe that never delivers and its stderr a pipe we read: it must
 * end at once with REDLOCK_INVALID and print nothing. */
static void test_encrypted_key_never_prompts(void **state)
{
    (void)state;
    char dir[] = "/tmp/redlock-tls-enc-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char key[80];
    snprintf(key, sizeof key, "%s/enc.key", dir);
    FILE *f = fopen(cert("client.key"), "r");
    assert_non_null(f);
    EVP_PKEY *pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(pk);
    f = fopen(key, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PKCS8PrivateKey(f, pk, EVP_aes_256_cbc(), NULL,
                                               0, NULL, (void *)"secret"),
                     1);
    fclose(f);
    EVP_PKEY_free(pk);

    int in[2], err[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(err), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setsid();
        dup2(in[0], 0);
        dup2(err[1], 2);
        close(in[1]);
        close(err[0]);
        redlock_options o = opts();
        o.tls_cert = cert("client.crt");
        o.tls_key = key;
        redlock_status st = REDLOCK_OK;
        const char *url = "rediss://127.0.0.1:1";
        redlock_client *c = redlock_connect(&url, 1, &o, &st);
        _exit(!c && st == REDLOCK_INVALID &&
                      strstr(redlock_last_error(), "not an unencrypted")
                  ? 0
                  : 1);
    }
    close(in[0]);
    close(err[1]);
    int status = -1;
    int64_t t0 = rt_now_ms();
    pid_t w;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && rt_now_ms() - t0 < 5000)
        rt_sleep_ms(20);
    int ended = w == pid;
    if (!ended) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    char said[256] = "";
    ssize_t n = read(err[0], said, sizeof said - 1);
    said[n > 0 ? n : 0] = '\0';
    close(in[1]);
    close(err[0]);
    unlink(key);
    rmdir(dir);
    if (!ended || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || n > 0)
        fail_msg("encrypted key: %s, exit status %d, stderr \"%s\"",
                 ended ? "ended" : "still blocked after 5 s (killed)",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1, said);
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
    /* The handshake is bounded by the connect timeout, not the I/O one. */
    o.connect_timeout_ms = 300;
    o.io_timeout_ms = 5000;
    connect_fails(s.url, &o, REDLOCK_IO, "timed out in the TLS handshake",
                  300 + MARGIN_MS);
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
    int64_t until = rt_now_ms() + 5000;
    while (st != REDLOCK_OK && rt_now_ms() < until) {
        int64_t t0 = rt_now_ms();
        st = redlock_acquire(c, "tls:r2", 5000, 0, &l);
        assert_true(rt_now_ms() - t0 < CONNECT_MS + IO_MS + MARGIN_MS);
        assert_true(st == REDLOCK_OK || st == REDLOCK_IO);
        if (st != REDLOCK_OK)
            rt_sleep_ms(50);
    }
    assert_int_equal(st, REDLOCK_OK);
    assert_int_equal(redlock_release(l), REDLOCK_OK);

    /* Killed mid-session, while the client is idle: IO, then back. */
    rt_server_kill(&s);
    int64_t t0 = rt_now_ms();
    st = redlock_acquire(c, "tls:r3", 5000, 0, &l);
    assert_int_equal(st, REDLOCK_IO);
    assert_true(rt_now_ms() - t0 < CONNECT_MS + IO_MS + MARGIN_MS);
    assert_int_equal(rt_server_restart(&s), 0);
    until = rt_now_ms() + 5000;
    while ((st = redlock_acquire(c, "tls:r3", 5000, 0, &l)) != REDLOCK_OK &&
           rt_now_ms() < until)
        rt_sleep_ms(50);
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
    rt_sleep_ms(k->after_ms);
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
    int64_t t0 = rt_now_ms();
    redlock_status st = redlock_acquire(c, key, 5000, 0, &l);
    pthread_join(t, NULL);
    assert_int_equal(st, REDLOCK_IO);
    assert_true(rt_now_ms() - t0 < o.io_timeout_ms + MARGIN_MS);
    free(key);
    redlock_client_free(c);
    rt_server_stop(&s);
}

/* ---- a TLS peer of our own, for what no Redis does on demand ------------
 * It accepts one connection and runs OpenSSL's server side through memory
 * BIOs, so that it can stop anywhere: after its first flight (then close),
 * or halfway through a record. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

typedef enum peer_mode {
    CLOSE_AFTER_FLIGHT, /* send ServerHello..Finished, then close (FIN) */
    HALF_RECORD         /* finish the handshake, read the first request,
                           send half of a reply record, then close */
} peer_mode;

typedef struct tls_peer {
    peer_mode mode;
    char crt[512], key[512]; /* cert() is not for threads */
    int lfd;
    pthread_t t;
} tls_peer;

/* Everything the server side wrote, to the socket (or its first half). */
static void peer_flush(SSL *ssl, int fd, int half)
{
    char buf[65536];
    int n = BIO_read(SSL_get_wbio(ssl), buf, sizeof buf);
    if (n > 0)
        (void)!send(fd, buf, half ? (size_t)n / 2 : (size_t)n, MSG_NOSIGNAL);
}

static int peer_feed(SSL *ssl, int fd)
{
    char buf[16384];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
        return -1;
    BIO_write(SSL_get_rbio(ssl), buf, (int)n);
    return 0;
}

static void *tls_peer_main(void *arg)
{
    tls_peer *p = arg;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate_chain_file(ctx, p->crt);
    SSL_CTX_use_PrivateKey_file(ctx, p->key, SSL_FILETYPE_PEM);
    SSL *ssl = SSL_new(ctx);
    SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_accept_state(ssl);
    int fd = accept(p->lfd, NULL, NULL);
    if (fd >= 0) {
        struct timeval tv = {5, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        int r;
        while ((r = SSL_do_handshake(ssl)) != 1 &&
               SSL_get_error(ssl, r) == SSL_ERROR_WANT_READ) {
            peer_flush(ssl, fd, 0);
            if (p->mode == CLOSE_AFTER_FLIGHT &&
                BIO_number_written(SSL_get_wbio(ssl)) > 0)
                break;
            if (peer_feed(ssl, fd) != 0)
                break;
        }
        if (r == 1 && p->mode == HALF_RECORD) {
            peer_flush(ssl, fd, 0); /* session tickets */
            char req[4096];
            while (SSL_read(ssl, req, sizeof req) <= 0 &&
                   peer_feed(ssl, fd) == 0) {
            }
            static const char reply[] = "$5000\r\n";
            SSL_write(ssl, reply, sizeof reply - 1);
            peer_flush(ssl, fd, 1);
        }
        close(fd);
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

static int tls_peer_start(tls_peer *p, peer_mode mode)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    p->mode = mode;
    snprintf(p->crt, sizeof p->crt, "%s", cert("server.crt"));
    snprintf(p->key, sizeof p->key, "%s", cert("server.key"));
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(p->lfd >= 0);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(p->lfd, 4), 0);
    assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&sa, &sl), 0);
    assert_int_equal(pthread_create(&p->t, NULL, tls_peer_main, p), 0);
    return ntohs(sa.sin_port);
}

static void tls_peer_stop(tls_peer *p)
{
    shutdown(p->lfd, SHUT_RDWR);
    pthread_join(p->t, NULL);
    close(p->lfd);
}

/* The server closes right after its flight: our Finished draws a reset,
 * and the requests written right after it meet a socket the kernel calls
 * broken (EPIPE): without MSG_NOSIGNAL that write raises SIGPIPE, which
 * keeps its default action here and would end this process. */
static void test_peer_closes_after_flight(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_DFL);
    for (int i = 0; i < 5; i++) {
        tls_peer p;
        char url[64];
        snprintf(url, sizeof url, "rediss://127.0.0.1:%d",
                 tls_peer_start(&p, CLOSE_AFTER_FLIGHT));
        redlock_options o = opts();
        redlock_status st = REDLOCK_OK;
        int64_t t0 = rt_now_ms();
        redlock_client *c = redlock_connect((const char *[]){url}, 1, &o, &st);
        int64_t took = rt_now_ms() - t0;
        tls_peer_stop(&p);
        assert_null(c);
        if (st != REDLOCK_IO || took > CONNECT_MS + IO_MS + MARGIN_MS)
            fail_msg("%s (%s) in %lld ms", redlock_strerror(st),
                     redlock_last_error(), (long long)took);
    }
}

/* A reply record cut in half by a close: an error, never a hang. */
static void test_peer_closes_mid_record(void **state)
{
    (void)state;
    tls_peer p;
    char url[64];
    snprintf(url, sizeof url, "rediss://127.0.0.1:%d",
             tls_peer_start(&p, HALF_RECORD));
    redlock_options o = opts();
    connect_fails(url, &o, REDLOCK_IO, "", CONNECT_MS + IO_MS + MARGIN_MS);
    tls_peer_stop(&p);
}

/* ---- a wait ends on REDLOCK_TLS ------------------------------------------ */

/* n servers: a holds the key; the certificates change to an expired one
 * and b's connections are cut, so b's next try must reconnect and fail
 * for good: its wait ends then, not at wait_ms.  One node waits in the
 * queue (queue.c), several in lock.c's retry loop. */
static void wait_case(rt_server *s, int n)
{
    const char *urls[3];
    for (int i = 0; i < n; i++)
        urls[i] = s[i].url;
    redlock_options o = opts();
    redlock_status st;
    redlock_client *a = redlock_connect(urls, (size_t)n, &o, &st);
    redlock_client *b = redlock_connect(urls, (size_t)n, &o, &st);
    assert_non_null(a);
    assert_non_null(b);
    redlock_lock *la = NULL, *lb = NULL;
    assert_int_equal(redlock_acquire(a, "tls:w", 30000, 0, &la), REDLOCK_OK);
    for (int i = 0; i < n; i++) {
        assert_true(rt_cmd_ok(&s[i], "CONFIG SET tls-cert-file %s "
                                     "tls-key-file %s",
                              cert("expired.crt"), cert("expired.key")));
        redisReply *r = rt_cmd(&s[i], "CLIENT KILL TYPE normal");
        freeReplyObject(r);
    }
    int64_t t0 = rt_now_ms();
    st = redlock_acquire(b, "tls:w", 30000, 20000, &lb);
    int64_t took = rt_now_ms() - t0;
    if (st != REDLOCK_TLS || took > CONNECT_MS + IO_MS + MARGIN_MS)
        fail_msg("%d nodes: wait: %s (%s) after %lld ms; want %s at once", n,
                 redlock_strerror(st), redlock_last_error(), (long long)took,
                 redlock_strerror(REDLOCK_TLS));
    assert_non_null(strstr(redlock_last_error(), "expired"));
    for (int i = 0; i < n; i++)
        assert_true(rt_cmd_ok(&s[i], "CONFIG SET tls-cert-file %s "
                                     "tls-key-file %s",
                              cert("server.crt"), cert("server.key")));
    redlock_release(la);
    redlock_client_free(b);
    redlock_client_free(a);
}

static void test_wait_ends_on_tls_error(void **state)
{
    (void)state;
    rt_server s[3];
    for (int i = 0; i < 3; i++)
        start_tls(&s[i], NULL);
    wait_case(s, 1);
    wait_case(s, 3);
    for (int i = 0; i < 3; i++)
        rt_server_stop(&s[i]);
}

/* ---- threads sharing the client's SSL_CTX and sessions ------------------ */

typedef struct worker {
    redlock_client *c;
    int id;
    int failures;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    char key[32];
    snprintf(key, sizeof key, "tls:t%d", w->id);
    for (int i = 0; i < 30; i++) {
        redlock_lock *l = NULL;
        if (redlock_acquire(w->c, key, 5000, 0, &l) != REDLOCK_OK ||
            redlock_release(l) != REDLOCK_OK)
            w->failures++;
    }
    return NULL;
}

/* More threads than the pool keeps: connections are opened (and sessions
 * stored and resumed) concurrently, all on one SSL_CTX. */
static void test_threads_share_context(void **state)
{
    (void)state;
    enum { THREADS = 24 };
    rt_server s;
    start_tls(&s, NULL);
    redlock_options o = opts();
    o.io_timeout_ms = 5000;
    redlock_client *c = connect_ok(s.url, &o);
    pthread_t t[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){c, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        failures += w[i].failures;
    }
    assert_int_equal(failures, 0);
    assert_true(atomic_load(&c->nodes[0].tls_handshakes) > 16);
    assert_true(atomic_load(&c->nodes[0].tls_resumed) > 0);
    redlock_client_free(c);
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
    int64_t t0 = rt_now_ms();
    for (int i = 0; i < ROUNDS; i++) {
        redisReply *r = rt_cmd(&s, "CLIENT KILL TYPE normal");
        freeReplyObject(r);
        lock_cycle(c, &s, "tls:s1");
    }
    int64_t resumed_ms = rt_now_ms() - t0;
    long hs = atomic_load(&n->tls_handshakes);
    long res = atomic_load(&n->tls_resumed);
    redlock_client_free(c);
    assert_true(hs >= 1 + ROUNDS);
    if (res < ROUNDS)
        fail_msg("%ld of %ld handshakes resumed, want >= %d", res, hs, ROUNDS);

    /* For comparison (printed, not asserted): a full handshake each time
     * (a new client has no session). */
    t0 = rt_now_ms();
    for (int i = 0; i < ROUNDS; i++) {
        c = connect_ok(s.url, &o);
        lock_cycle(c, &s, "tls:s2");
        redlock_client_free(c);
    }
    int64_t full_ms = rt_now_ms() - t0;
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
        cmocka_unit_test(test_common_name_ignored),
        cmocka_unit_test(test_empty_sni),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_client_certificates),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_fifo_files),
        cmocka_unit_test(test_fifo_in_default_store),
        cmocka_unit_test(test_fifo_in_cacertdir),
        cmocka_unit_test(test_encrypted_key_never_prompts),
        cmocka_unit_test(test_plaintext_server_on_tls_url),
        cmocka_unit_test(test_tls_server_on_plain_url),
        cmocka_unit_test(test_stalled_handshake),
        cmocka_unit_test(test_server_restarted),
        cmocka_unit_test(test_no_sigpipe),
        cmocka_unit_test(test_peer_closes_after_flight),
        cmocka_unit_test(test_peer_closes_mid_record),
        cmocka_unit_test(test_wait_ends_on_tls_error),
        cmocka_unit_test(test_session_resumed),
        cmocka_unit_test(test_threads_share_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
