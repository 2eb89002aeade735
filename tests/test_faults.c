/* Integration: what happens when Redis misbehaves.  A node that refuses
 * connections, dies while a lock is held, restarts, stalls (SIGSTOP), or
 * closes an idle connection; SIGPIPE on writes to dead peers; ghost locks
 * left by acquires whose reply timed out; tearing a client down while its
 * server is gone.  Every server is per test (setup/teardown), because the
 * tests kill, pause and reconfigure them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "redis_server.h"
#include "redlock.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

/* Options used throughout: short, so that failures come quickly. */
#define CONNECT_MS 400
#define IO_MS 400
/* Slack for a noisy shared 2-core machine (and sanitizers). */
#define MARGIN_MS 1500
/* The 8 MiB key that makes the library write far more than a socket
 * buffer holds, so that a dead peer's reset is met by a second write. */
#define BIG_KEY_BYTES ((size_t)8 << 20)

static redlock_client *keep(redlock_client *c);

static void fast_options(redlock_options *o)
{
    redlock_options_init(o);
    o->connect_timeout_ms = CONNECT_MS;
    o->io_timeout_ms = IO_MS;
    o->retry_delay_ms = 20;
}

static redlock_client *connect_url(const char *url, const redlock_options *o)
{
    redlock_status st = REDLOCK_INVALID;
    redlock_client *c = redlock_connect((const char *[]){url}, 1, o, &st);
    if (c == NULL)
        print_error("redlock_connect(%s): %s: %s\n", url,
                    redlock_strerror(st), redlock_last_error());
    assert_non_null(c);
    assert_int_equal(st, REDLOCK_OK);
    return keep(c);
}

static redlock_client *connect_fast(rt_server *s)
{
    redlock_options o;
    fast_options(&o);
    return connect_url(s->url, &o);
}

/* The key's value in Redis equals the lock's token. */
static void assert_holds(rt_server *s, const char *key, const char *token)
{
    char *v = rt_get(s, key);
    int same = v != NULL && strcmp(v, token) == 0;
    if (!same)
        print_error("key %s holds \"%s\", not \"%s\"\n", key,
                    v ? v : "(nil)", token);
    free(v);
    assert_true(same);
}

static void assert_absent(rt_server *s, const char *key)
{
    char *v = rt_get(s, key);
    int present = v != NULL;
    if (present)
        print_error("key %s still holds \"%s\"\n", key, v);
    free(v);
    assert_false(present);
}

/* Wait (at most ms) until key exists; its value (malloc'd) or NULL. */
static char *wait_for_key(rt_server *s, const char *key, long ms)
{
    int64_t end = rt_now_ms() + ms;
    for (;;) {
        char *v = rt_get(s, key);
        if (v != NULL || rt_now_ms() >= end)
            return v;
        rt_sleep_ms(10);
    }
}

static char *big_key(void)
{
    char *k = malloc(BIG_KEY_BYTES + 1);
    assert_non_null(k);
    memset(k, 'k', BIG_KEY_BYTES);
    k[BIG_KEY_BYTES] = '\0';
    return k;
}

static int sigpipe_is_default(void)
{
    struct sigaction sa;
    assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
    return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL;
}

static int sigpipe_blocked_or_pending(void)
{
    sigset_t mask, pend;
    sigemptyset(&mask);
    sigemptyset(&pend);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &mask), 0);
    assert_int_equal(sigpending(&pend), 0);
    return sigismember(&mask, SIGPIPE) == 1 || sigismember(&pend, SIGPIPE) == 1;
}

/* ---- fixtures: one fresh server per test --------------------------------- */

/* The server comes first, so a test may take *state as an rt_server *.
 * Clients a test makes are kept here and freed by the teardown, so that a
 * failed assertion leaks nothing (ASan stays quiet about test bugs). */
typedef struct fixture {
    rt_server s;
    redlock_client *c[4];
    int nc;
} fixture;

static fixture *current;

static int server_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL || rt_server_start(&f->s, NULL) != 0) {
        free(f);
        return -1;
    }
    current = f;
    *state = f;
    return 0;
}

static int server_teardown(void **state)
{
    fixture *f = *state;
    if (f != NULL) {
        for (int i = 0; i < f->nc; i++)
            redlock_client_free(f->c[i]);
        rt_server_resume(&f->s); /* a failed test may leave it stopped */
        rt_server_stop(&f->s);
        free(f);
    }
    current = NULL;
    return 0;
}

/* Hand a client to the fixture (freed in teardown). */
static redlock_client *keep(redlock_client *c)
{
    if (current != NULL && current->nc < 4)
        current->c[current->nc++] = c;
    return c;
}

/* Free a client now (and forget it in the fixture). */
static void free_client(redlock_client *c)
{
    if (current != NULL)
        for (int i = 0; i < current->nc; i++)
            if (current->c[i] == c) {
                current->c[i] = current->c[--current->nc];
                break;
            }
    redlock_client_free(c);
}

/* ---- a port nothing listens on -------------------------------------------- */

static void unreachable_port(void **state)
{
    (void)state;
    int port = rt_free_port();
    assert_true(port > 0);
    char url[64], where[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    snprintf(where, sizeof where, "127.0.0.1:%d", port);

    redlock_options o;
    fast_options(&o);
    redlock_status st = REDLOCK_OK;
    int64_t t0 = rt_now_ms();
    redlock_client *c = redlock_connect((const char *[]){url}, 1, &o, &st);
    int64_t took = rt_now_ms() - t0;
    assert_null(c);
    assert_int_equal(st, REDLOCK_IO);
    assert_true(took <= CONNECT_MS + MARGIN_MS);
    const char *msg = redlock_last_error();
    if (strstr(msg, where) == NULL)
        print_error("message \"%s\" does not name %s\n", msg, where);
    assert_non_null(strstr(msg, where));

    /* NULL status pointer is allowed too. */
    assert_null(redlock_connect((const char *[]){url}, 1, &o, NULL));
}

/* ---- SIGPIPE: writes to dead peers ---------------------------------------- */

/* The control experiment: in this very scenario a plain write() (what
 * hiredis 0.14 does) dies of SIGPIPE, so the tests below can fail. */
static void sigpipe_control_plain_write_dies(void **state)
{
    rt_server *s = *state;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)s->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    /* One round trip, so that the server has accepted the connection (a
     * connection still in the accept queue is reset, not closed). */
    assert_int_equal(send(fd, "PING\r\n", 6, MSG_NOSIGNAL), 6);
    char pong[8];
    assert_int_equal(recv(fd, pong, 7, 0), 7);
    assert_memory_equal(pong, "+PONG\r\n", 7);
    rt_server_stop(s);
    rt_sleep_ms(50);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        static char buf[1 << 16];
        memset(buf, 'k', sizeof buf);
        for (int i = 0; i < 256; i++) /* 16 MiB in all */
            if (write(fd, buf, sizeof buf) < 0 && errno != EINTR)
                _exit(3); /* an error without a signal */
        _exit(0);
    }
    close(fd);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status))
        print_error("control child exited with %d\n", WEXITSTATUS(status));
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGPIPE);
}

/* Release after the server was killed, then big writes to it.  The lock
 * held under an 8 MiB key makes the release itself a big write down the
 * pooled connection whose peer is gone; the acquires and inspect after it
 * find the port closed. */
static void killed_while_held(void **state)
{
    rt_server *s = *state;
    assert_true(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
    redlock_client *c = connect_fast(s);
    char *big = big_key();
    redlock_lock *l = NULL, *lbig = NULL;
    assert_int_equal(redlock_acquire(c, "faults:held", 30000, 0, &l), REDLOCK_OK);
    assert_holds(s, "faults:held", redlock_token(l));
    assert_int_equal(redlock_acquire(c, big, 30000, 0, &lbig), REDLOCK_OK);
    long long pttl = rt_pttl(s, big);
    assert_true(pttl > 0 && pttl <= 30000);

    rt_server_stop(s);
    rt_sleep_ms(50); /* let the FIN reach our pooled socket */
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_release(lbig), REDLOCK_IO);
    assert_true(rt_now_ms() - t0 <= IO_MS + MARGIN_MS);
    t0 = rt_now_ms();
    assert_int_equal(redlock_release(l), REDLOCK_IO);
    assert_true(rt_now_ms() - t0 <= CONNECT_MS + IO_MS + MARGIN_MS);
    assert_true(redlock_last_error()[0] != '\0');

    for (int i = 0; i < 2; i++) {
        static char dummy;
        redlock_lock *b = (redlock_lock *)(void *)&dummy; /* must become NULL */
        t0 = rt_now_ms();
        assert_int_equal(redlock_acquire(c, big, 30000, 0, &b), REDLOCK_IO);
        assert_null(b);
        assert_true(rt_now_ms() - t0 <= CONNECT_MS + IO_MS + MARGIN_MS);
    }
    char tok[64];
    assert_int_equal(redlock_inspect(c, big, tok, sizeof tok, NULL), REDLOCK_IO);
    free(big);

    /* Still alive, and nothing changed behind our back. */
    assert_true(sigpipe_is_default());
    assert_false(sigpipe_blocked_or_pending());
    free_client(c);
}

/* The first write after the kill goes down a pooled connection whose peer
 * is gone: 8 MiB cannot fit in the socket buffer, so the library writes
 * again after the reset. */
static void killed_pooled_connection_big_write(void **state)
{
    rt_server *s = *state;
    assert_true(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
    redlock_client *c = connect_fast(s);
    redlock_lock *l = NULL;
    assert_int_equal(redlock_acquire(c, "faults:pooled", 30000, 0, &l), REDLOCK_OK);
    assert_holds(s, "faults:pooled", redlock_token(l));

    rt_server_stop(s); /* SIGKILL and reap */
    rt_sleep_ms(50);      /* let the FIN reach our pooled socket */

    char *big = big_key();
    redlock_lock *b = NULL;
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_acquire(c, big, 30000, 0, &b), REDLOCK_IO);
    assert_true(rt_now_ms() - t0 <= IO_MS + MARGIN_MS);
    assert_int_equal(redlock_acquire(c, big, 30000, 0, &b), REDLOCK_IO);
    char tok[64];
    assert_int_equal(redlock_inspect(c, big, tok, sizeof tok, NULL), REDLOCK_IO);
    free(big);
    /* The lock is not known lost (I/O only), and release still fails
     * cleanly and frees the handle. */
    assert_int_equal(redlock_extend(l, 30000), REDLOCK_IO);
    assert_int_equal(redlock_held(l), 1);
    assert_int_equal(redlock_release(l), REDLOCK_IO);

    assert_true(sigpipe_is_default());
    assert_false(sigpipe_blocked_or_pending());
    free_client(c);
}

/* ---- restart ---------------------------------------------------------------- */

static void restart_reconnects(void **state)
{
    rt_server *s = *state;
    redlock_client *c = connect_fast(s);
    redlock_lock *l1 = NULL, *l2 = NULL;
    assert_int_equal(redlock_acquire(c, "faults:r1", 30000, 0, &l1), REDLOCK_OK);

    assert_int_equal(rt_server_restart(s), 0);
    assert_absent(s, "faults:r1"); /* nothing survives a restart */

    /* The pooled connection died with the server: it is noticed before
     * use and replaced, so the very next call works. */
    redlock_status st = redlock_acquire(c, "faults:r2", 30000, 0, &l2);
    if (st != REDLOCK_OK)
        fail_msg("first acquire after a restart: %s: %s", redlock_strerror(st),
                 redlock_last_error());
    assert_holds(s, "faults:r2", redlock_token(l2));

    /* The script cache is empty after a restart: NOSCRIPT -> EVAL. */
    assert_int_equal(redlock_extend(l2, 20000), REDLOCK_OK);
    long long pttl = rt_pttl(s, "faults:r2");
    assert_true(pttl > 0 && pttl <= 20000);
    assert_int_equal(redlock_release(l1), REDLOCK_NOT_HELD); /* lost with the data */
    assert_int_equal(redlock_release(l2), REDLOCK_OK);
    assert_absent(s, "faults:r2");
    free_client(c);
}

/* Redis's `timeout` closes idle connections: a client that held a lock
 * for longer than that must still release it (design: "reconnects a
 * broken one on next use"). */
static void idle_connection_closed_by_server(void **state)
{
    rt_server *s = *state;
    redlock_client *c = connect_fast(s);
    redlock_lock *l = NULL;
    assert_int_equal(redlock_acquire(c, "faults:idle", 30000, 0, &l), REDLOCK_OK);
    assert_true(rt_cmd_ok(s, "CONFIG SET timeout 1"));

    /* Wait until the server has dropped our idle connection: only the
     * asking connection is left in CLIENT LIST. */
    int64_t end = rt_now_ms() + 6000;
    int others = -1;
    while (rt_now_ms() < end) {
        redisReply *r = rt_cmd(s, "CLIENT LIST");
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        others = -1;
        for (const char *p = r->str; (p = strstr(p, "id=")) != NULL; p++)
            others++;
        freeReplyObject(r);
        if (others == 0)
            break;
        rt_sleep_ms(100);
    }
    assert_int_equal(others, 0);
    assert_true(rt_cmd_ok(s, "CONFIG SET timeout 0"));

    redlock_status st = redlock_release(l);
    if (st != REDLOCK_OK)
        print_error("release after the server closed the idle connection: "
                    "%s: %s\n", redlock_strerror(st), redlock_last_error());
    assert_int_equal(st, REDLOCK_OK);
    assert_absent(s, "faults:idle");
    free_client(c);
}

/* ---- a stalled server (SIGSTOP) ------------------------------------------ */

static void paused_operations_time_out(void **state)
{
    rt_server *s = *state;
    redlock_client *c = connect_fast(s);
    redlock_lock *held = NULL, *other = NULL;
    assert_int_equal(redlock_acquire(c, "faults:p-held", 30000, 0, &held), REDLOCK_OK);

    assert_int_equal(rt_server_pause(s), 0);
    int64_t t0 = rt_now_ms();
    assert_int_equal(redlock_acquire(c, "faults:p-new", 30000, 0, &other), REDLOCK_IO);
    assert_null(other);
    int64_t t1 = rt_now_ms();
    assert_int_equal(redlock_extend(held, 30000), REDLOCK_IO);
    assert_int_equal(redlock_held(held), 1); /* I/O trouble is not loss */
    int64_t t2 = rt_now_ms();
    char tok[64];
    int64_t pttl = 0;
    assert_int_equal(redlock_inspect(c, "faults:p-held", tok, sizeof tok, &pttl),
                     REDLOCK_IO);
    int64_t t3 = rt_now_ms();
    assert_int_equal(redlock_release(held), REDLOCK_IO);
    int64_t t4 = rt_now_ms();
    print_message("paused: acquire %lld ms, extend %lld, inspect %lld, "
                  "release %lld\n",
                  (long long)(t1 - t0), (long long)(t2 - t1),
                  (long long)(t3 - t2), (long long)(t4 - t3));
    /* Each bounded by the I/O timeout (a new connection's connect is
     * immediate: the kernel accepts for a stopped process). */
    assert_true(t1 - t0 >= IO_MS - 50 && t1 - t0 <= IO_MS + MARGIN_MS);
    assert_true(t2 - t1 <= IO_MS + MARGIN_MS);
    assert_true(t3 - t2 <= IO_MS + MARGIN_MS);
    assert_true(t4 - t3 <= IO_MS + MARGIN_MS);
    assert_true(strstr(redlock_last_error(), "127.0.0.1") != NULL);

    assert_int_equal(rt_server_resume(s), 0);
    /* The client works again. */
    redlock_lock *l = NULL;
    redlock_status st = REDLOCK_IO;
    for (int i = 0; i < 2 && st != REDLOCK_OK; i++)
        st = redlock_acquire(c, "faults:p-after", 30000, 0, &l);
    assert_int_equal(st, REDLOCK_OK);
    assert_holds(s, "faults:p-after", redlock_token(l));
    assert_int_equal(redlock_inspect(c, "faults:p-after", tok, sizeof tok, &pttl),
                     REDLOCK_OK);
    assert_string_equal(tok, redlock_token(l));
    assert_true(pttl > 0 && pttl <= 30000);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    assert_absent(s, "faults:p-after");
    free_client(c);
}

/* A release that could not reach its node: the header promises that "a
 * key that could not be reached is deleted (token-checked) on the next
 * contact with its node". */
static void paused_release_deleted_on_next_contact(void **state)
{
    rt_server *s = *state;
    redlock_client *c = connect_fast(s);
    redlock_lock *held = NULL, *other = NULL;
    assert_int_equal(redlock_acquire(c, "faults:u-held", 30000, 0, &held), REDLOCK_OK);

    assert_int_equal(rt_server_pause(s), 0);
    /* Uses (and loses) the pooled connection, leaving a ghost. */
    assert_int_equal(redlock_acquire(c, "faults:u-ghost", 30000, 0, &other), REDLOCK_IO);
    /* Must open a new connection, which stalls too. */
    assert_int_equal(redlock_release(held), REDLOCK_IO);
    assert_int_equal(rt_server_resume(s), 0);
    rt_sleep_ms(300); /* let the server drain what was buffered */

    char tok[64];
    redlock_status st = redlock_inspect(c, "faults:u-unrelated", tok, sizeof tok, NULL);
    assert_int_equal(st, REDLOCK_NOT_HELD); /* the next contact */
    assert_absent(s, "faults:u-ghost");
    assert_absent(s, "faults:u-held");
    free_client(c);
}

/* An acquire whose reply timed out was applied when the server woke up;
 * the next contact deletes it. */
static void ghost_lock_deleted_on_next_contact(void **state)
{
    rt_server *s = *state;
    redlock_client *c = connect_fast(s);
    redlock_client *c2 = connect_fast(s);
    redlock_lock *l = NULL;

    assert_int_equal(rt_server_pause(s), 0);
    assert_int_equal(redlock_acquire(c, "faults:ghost", 60000, 0, &l), REDLOCK_IO);
    assert_null(l);
    assert_int_equal(rt_server_resume(s), 0);

    /* The server applied the buffered SET: a lock nobody holds. */
    char *v = wait_for_key(s, "faults:ghost", 3000);
    assert_non_null(v);
    assert_int_equal(strlen(v), 36);
    free(v);
    long long pttl = rt_pttl(s, "faults:ghost");
    assert_true(pttl > 50000);

    /* Any contact with the node through the same client buries it. */
    char tok[64];
    assert_int_equal(redlock_inspect(c, "faults:unrelated", tok, sizeof tok, NULL),
                     REDLOCK_NOT_HELD);
    assert_absent(s, "faults:ghost");

    /* ...so another client takes it at once. */
    redlock_lock *l2 = NULL;
    assert_int_equal(redlock_acquire(c2, "faults:ghost", 30000, 0, &l2), REDLOCK_OK);
    assert_holds(s, "faults:ghost", redlock_token(l2));
    assert_int_equal(redlock_release(l2), REDLOCK_OK);
    free_client(c2);
    free_client(c);
}

/* The same, when the next contact is an acquire of another key. */
static void ghost_lock_deleted_by_next_acquire(void **state)
{
    rt_server *s = *state;
    redlock_client *c = connect_fast(s);
    redlock_lock *l = NULL;

    /* A token made for the attempt: only such a token is deleted as a
     * ghost (a caller's may be held by another process: see lock.c,
     * undo_acquire), so the acquire is redlock_acquire's. */
    assert_int_equal(rt_server_pause(s), 0);
    assert_int_equal(redlock_acquire(c, "faults:ghost2", 60000, 0, &l),
                     REDLOCK_IO);
    assert_int_equal(rt_server_resume(s), 0);
    char *v = wait_for_key(s, "faults:ghost2", 3000);
    assert_non_null(v);
    assert_int_equal(strlen(v), 36);
    free(v);

    redlock_status st = REDLOCK_IO;
    for (int i = 0; i < 2 && st != REDLOCK_OK; i++)
        st = redlock_acquire(c, "faults:another", 30000, 0, &l);
    assert_int_equal(st, REDLOCK_OK);
    assert_absent(s, "faults:ghost2");
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    free_client(c);
}

/* A ghost must not delete a key that now holds someone else's token. */
static void ghost_spares_new_holder(void **state)
{
    rt_server *s = *state;
    redlock_client *c = connect_fast(s);
    redlock_lock *l = NULL;

    assert_int_equal(rt_server_pause(s), 0);
    assert_int_equal(redlock_acquire(c, "faults:ghost3", 60000, 0, &l),
                     REDLOCK_IO);
    assert_int_equal(rt_server_resume(s), 0);
    char *v = wait_for_key(s, "faults:ghost3", 3000);
    assert_non_null(v);
    assert_int_equal(strlen(v), 36);
    free(v);
    assert_true(rt_cmd_ok(s, "SET %s %s PX %d", "faults:ghost3", "intruder", 60000));

    char tok[64];
    int64_t pttl = 0;
    redlock_status st = redlock_inspect(c, "faults:ghost3", tok, sizeof tok, &pttl);
    assert_int_equal(st, REDLOCK_OK);
    assert_string_equal(tok, "intruder");
    assert_holds(s, "faults:ghost3", "intruder");
    /* ...and a second contact changes nothing either. */
    assert_int_equal(redlock_inspect(c, "faults:ghost3", tok, sizeof tok, &pttl), REDLOCK_OK);
    assert_holds(s, "faults:ghost3", "intruder");
    free_client(c);
    assert_holds(s, "faults:ghost3", "intruder");
}

/* Connecting to a stopped server: the kernel accepts, nobody answers. */
static void connect_to_paused_server(void **state)
{
    rt_server *s = *state;
    redlock_options o;
    fast_options(&o);
    assert_int_equal(rt_server_pause(s), 0);
    redlock_status st = REDLOCK_OK;
    int64_t t0 = rt_now_ms();
    redlock_client *c = redlock_connect((const char *[]){s->url}, 1, &o, &st);
    int64_t took = rt_now_ms() - t0;
    assert_null(c);
    assert_int_equal(st, REDLOCK_IO);
    print_message("connect to a paused server failed after %lld ms: %s\n",
                  (long long)took, redlock_last_error());
    assert_true(took <= CONNECT_MS + IO_MS + MARGIN_MS);
    char where[64];
    snprintf(where, sizeof where, "127.0.0.1:%d", s->port);
    assert_non_null(strstr(redlock_last_error(), where));

    /* Over the unix socket too. */
    t0 = rt_now_ms();
    c = redlock_connect((const char *[]){s->unix_url}, 1, &o, &st);
    took = rt_now_ms() - t0;
    assert_null(c);
    assert_int_equal(st, REDLOCK_IO);
    assert_true(took <= CONNECT_MS + IO_MS + MARGIN_MS);
    assert_int_equal(rt_server_resume(s), 0);

    c = connect_url(s->url, &o);
    free_client(c);
}

/* ---- tearing down a client whose server is gone ------------------------- */

static void client_free_server_killed(void **state)
{
    rt_server *s = *state;
    redlock_options o;
    fast_options(&o);
    o.renew_floor_ms = 0;
    redlock_client *c = connect_url(s->url, &o);
    redlock_lock *a = NULL, *b = NULL, *d = NULL;
    assert_int_equal(redlock_acquire(c, "faults:f1", 900, 0, &a), REDLOCK_OK);
    assert_int_equal(redlock_acquire(c, "faults:f2", 30000, 0, &b), REDLOCK_OK);
    assert_int_equal(redlock_acquire(c, "faults:f3", 30000, 0, &d), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(a), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(b), REDLOCK_OK);

    rt_server_stop(s);
    rt_sleep_ms(400); /* the watchdog meets the dead server at least once */
    int64_t t0 = rt_now_ms();
    free_client(c); /* frees a, b, d too; ASan checks for leaks */
    int64_t took = rt_now_ms() - t0;
    print_message("client_free with the server killed: %lld ms\n", (long long)took);
    assert_true(took <= 2 * (CONNECT_MS + IO_MS) + MARGIN_MS);
}

static void client_free_server_paused(void **state)
{
    rt_server *s = *state;
    redlock_options o;
    fast_options(&o);
    o.renew_floor_ms = 0;
    redlock_client *c = connect_url(s->url, &o);
    redlock_lock *a = NULL, *b = NULL, *g = NULL;
    assert_int_equal(redlock_acquire(c, "faults:fp1", 600, 0, &a), REDLOCK_OK);
    assert_int_equal(redlock_acquire(c, "faults:fp2", 30000, 0, &b), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(a), REDLOCK_OK);

    assert_int_equal(rt_server_pause(s), 0);
    /* leave a ghost behind, and let a renewal get stuck in flight */
    assert_int_equal(redlock_acquire(c, "faults:fp3", 30000, 0, &g), REDLOCK_IO);
    int64_t t0 = rt_now_ms();
    free_client(c);
    int64_t took = rt_now_ms() - t0;
    print_message("client_free with the server paused: %lld ms\n", (long long)took);
    /* The watchdog's renewal in flight, then the release of what is held. */
    assert_true(took <= 2 * (CONNECT_MS + IO_MS) + MARGIN_MS);
    assert_int_equal(rt_server_resume(s), 0);
}

/* ---- the watchdog when the server dies ------------------------------------ */

static atomic_int lost_calls, lost_wrong_key;

/* Runs on the watchdog thread: no cmocka asserts here. */
static void count_lost(const redlock_lock *l, void *arg)
{
    (void)arg;
    if (strcmp(redlock_key(l), "faults:wd") != 0)
        atomic_fetch_add(&lost_wrong_key, 1);
    atomic_fetch_add(&lost_calls, 1);
}

static void watchdog_loses_lock_when_server_dies(void **state)
{
    rt_server *s = *state;
    redlock_options o;
    fast_options(&o);
    o.renew_floor_ms = 0;
    o.on_lost = count_lost;
    atomic_store(&lost_calls, 0);
    atomic_store(&lost_wrong_key, 0);
    redlock_client *c = connect_url(s->url, &o);
    redlock_lock *l = NULL;
    const int64_t ttl = 1200;
    assert_int_equal(redlock_acquire(c, "faults:wd", ttl, 0, &l), REDLOCK_OK);
    assert_int_equal(redlock_keepalive(l), REDLOCK_OK);
    rt_sleep_ms(600); /* one renewal at least */
    assert_int_equal(redlock_held(l), 1);
    long long pttl = rt_pttl(s, "faults:wd");
    assert_true(pttl > 0);

    rt_server_stop(s);
    int64_t t0 = rt_now_ms();
    while (redlock_held(l) && rt_now_ms() - t0 < ttl + MARGIN_MS + 1000)
        rt_sleep_ms(10);
    int64_t took = rt_now_ms() - t0;
    print_message("lock lost %lld ms after the server died\n", (long long)took);
    assert_int_equal(redlock_held(l), 0);
    assert_int_equal(redlock_validity_ms(l), 0);
    assert_true(took <= ttl + MARGIN_MS);
    rt_sleep_ms(300);
    assert_int_equal(atomic_load(&lost_calls), 1);
    assert_int_equal(atomic_load(&lost_wrong_key), 0);
    assert_int_equal(redlock_keepalive(l), REDLOCK_NOT_HELD);
    assert_int_equal(redlock_release(l), REDLOCK_IO);
    free_client(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unreachable_port),
        cmocka_unit_test_setup_teardown(sigpipe_control_plain_write_dies,
                                        server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(killed_while_held, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(killed_pooled_connection_big_write,
                                        server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(restart_reconnects, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(idle_connection_closed_by_server,
                                        server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(paused_operations_time_out,
                                        server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(paused_release_deleted_on_next_contact,
                                        server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(ghost_lock_deleted_on_next_contact,
                                        server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(ghost_lock_deleted_by_next_acquire,
                                        server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(ghost_spares_new_holder, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(connect_to_paused_server, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(client_free_server_killed, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(client_free_server_paused, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(watchdog_loses_lock_when_server_dies,
                                        server_setup, server_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
