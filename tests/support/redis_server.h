/*
 * Test helper: real, throwaway redis-server processes.
 *
 *     rt_server s;
 *     assert_int_equal(rt_server_start(&s, NULL), 0);
 *     ... redlock_connect((const char *[]){s.url}, 1, NULL, &st) ...
 *     redisReply *r = rt_cmd(&s, "SET %s %s", "k", "v");
 *     freeReplyObject(r);
 *     rt_server_stop(&s);
 *
 * Every server listens on 127.0.0.1 on a free port (never 6379) and on a
 * unix socket in its own temporary directory under /tmp, keeps nothing on
 * disk (no RDB, no AOF), and allows DEBUG from local connections.  The
 * redis-server binary is $REDLOCK_TEST_REDIS_SERVER, else the one CMake
 * found, else the first on $PATH.
 *
 * TLS mode: with $REDLOCK_TEST_TLS=<certdir> (certificates made by
 * make_certs.sh), rt_server_start() starts TLS servers, as
 * rt_server_start_tls() does: the same tests then run over TLS.  Build URLs
 * with rt_url() and hiredis connections with rt_connect(), never from
 * "redis://" and the port.
 *
 * Safety nets: a server dies with the thread that started it
 * (PR_SET_PDEATHSIG; start servers from the main thread or one that
 * outlives them), and every server still running at exit() is killed and
 * its directory removed (so a failed cmocka test that skipped its teardown
 * leaves nothing behind).  Group teardowns should still call
 * rt_server_stop().
 *
 * Not thread-safe on one rt_server; different servers may be used from
 * different threads.
 */
#ifndef REDLOCK_TEST_REDIS_SERVER_H
#define REDLOCK_TEST_REDIS_SERVER_H

#include <hiredis/hiredis.h>
#include <limits.h>
#include <stdint.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <sys/types.h>

#define RT_MAX_EXTRA_ARGS 32

/* rt_pttl()'s answer when the command itself failed. */
#define RT_PTTL_ERROR LLONG_MIN

typedef struct rt_server {
    pid_t pid;           /* of the redis-server process; 0 when stopped */
    int port;            /* TCP port on 127.0.0.1 (the TLS port if tls) */
    int tls;             /* 1: the port speaks only TLS */
    char dir[64];        /* its temporary directory (working dir, log) */
    char sock[96];       /* <dir>/redis.sock */
    char log[96];        /* <dir>/log */
    char url[64];        /* "redis://127.0.0.1:<port>", or rediss:// */
    char unix_url[112];  /* "unix://<dir>/redis.sock" */
    /* Credentials rt_cmd() and rt_get()/rt_pttl() use: the password is
     * taken from a "--requirepass X" among the extra arguments; a test may
     * change both (e.g. after ACL SETUSER).  Empty: no AUTH. */
    char user[64];
    char password[128];
    /* Connect and I/O timeout of rt_cmd() and friends. [2000] */
    int cmd_timeout_ms;
    /* private */
    int slot;
    char certdir[256];
    int nargs;
    char *args[RT_MAX_EXTRA_ARGS];
} rt_server;

/*
 * Start a server.  extra_args: NULL, or a NULL-terminated list of
 * redis-server arguments appended after the defaults (so they override
 * them), e.g. (const char *const[]){"--requirepass", "pw", NULL}.
 * Waits (at most 5 s) until it answers PING.  Returns 0, or -1 with a
 * message on stderr (and the server's log, if any); *s is then stopped.
 */
int rt_server_start(rt_server *s, const char *const *extra_args);

/*
 * rt_server_start() over TLS, whatever $REDLOCK_TEST_TLS says: the TCP port
 * speaks only TLS ("--port 0 --tls-port <port>") with certdir's server.crt,
 * server.key and ca.crt, no client certificate asked for, and TLS
 * replication links; extra_args come after these, so e.g.
 * {"--tls-auth-clients", "yes", NULL} or {"--tls-cert-file", ".../expired.crt",
 * "--tls-key-file", ".../expired.key", NULL} override them.  s->url is
 * "rediss://127.0.0.1:<port>".  rt_cmd() and friends use the unix socket
 * (hiredis 0.14 has no TLS).
 */
int rt_server_start_tls(rt_server *s, const char *certdir, const char *const *extra_args);

/* rt_server_start() in plaintext, whatever $REDLOCK_TEST_TLS says: for a
 * test that needs a plaintext server in TLS mode too. */
int rt_server_start_plain(rt_server *s, const char *const *extra_args);

/*
 * The server's URL with optional userinfo ("user:password", ":password",
 * "user"; NULL or "" for none, not percent-encoded here) and a path suffix
 * (e.g. "/0"; NULL for none): "<redis|rediss>://[userinfo@]127.0.0.1:<port>
 * <path>".  Returns buf, or NULL (buf set to "") when it does not fit.
 */
char *rt_url(const rt_server *s, char *buf, size_t len, const char *userinfo,
             const char *path);

/* A hiredis connection to the server (its unix socket in TLS mode, else
 * TCP), with cmd_timeout_ms as connect and I/O timeout.  NULL or c->err set
 * on failure; free with redisFree().  No AUTH is sent. */
redisContext *rt_connect(const rt_server *s);

/* Kill (SIGKILL) and reap the process, remove the directory.  Idempotent;
 * a zeroed rt_server is fine too. */
void rt_server_stop(rt_server *s);

/* Kill (SIGKILL) and reap the process but keep port and directory, so that
 * rt_server_restart() brings it back: a node that crashed. */
void rt_server_kill(rt_server *s);

/* SIGSTOP / SIGCONT: a paused server accepts TCP connections (the kernel
 * does) but answers nothing.  Return 0 or -1. */
int rt_server_pause(rt_server *s);
int rt_server_resume(rt_server *s);

/* Kill the process (no shutdown: what was not persisted is lost, which with
 * the defaults is everything) and start it again on the same port, in the
 * same directory, with the same arguments.  Returns 0 or -1. */
int rt_server_restart(rt_server *s);

/* A loopback TCP port with nothing listening on it right now (never 6379):
 * for "node down" tests.  -1 on failure. */
int rt_free_port(void);

/*
 * Run one command (hiredis format) on a fresh connection to the server,
 * authenticating first with s->user/s->password when set.  Returns the
 * reply (free it with freeReplyObject()), or NULL when the server could not
 * be reached or did not answer within cmd_timeout_ms.  A failed AUTH
 * returns AUTH's error reply.
 */
redisReply *rt_cmd(rt_server *s, const char *fmt, ...);
/* The same with an explicit password (NULL: no AUTH at all). */
redisReply *rt_cmd_auth(rt_server *s, const char *password, const char *fmt, ...);
/* The same as an ACL user (user NULL: the default user). */
redisReply *rt_cmd_user(rt_server *s, const char *user, const char *password,
                        const char *fmt, ...);
redisReply *rt_vcmd(rt_server *s, const char *user, const char *password,
                    const char *fmt, va_list ap);

/* 1 if rt_cmd() got the status reply "OK" (the reply is freed), else 0. */
int rt_cmd_ok(rt_server *s, const char *fmt, ...);

/* GET key: a malloc'd copy of the value, or NULL (no key, not a string, or
 * an error). */
char *rt_get(rt_server *s, const char *key);

/* PTTL key: ms left, -1 no expiry, -2 no key, RT_PTTL_ERROR on failure. */
long long rt_pttl(rt_server *s, const char *key);

/* Block SIGPIPE in this thread around socket I/O and consume one raised
 * by it, so a test never dies of a write to a closed connection and never
 * needs to change the process-wide disposition. */
typedef struct rt_pipe_guard {
    sigset_t old;
    int pending_before;
} rt_pipe_guard;
void rt_pipe_block(rt_pipe_guard *g);
void rt_pipe_unblock(rt_pipe_guard *g);

/* Monotonic milliseconds, and a sleep that restarts after signals: the
 * clock of every test's bounds. */
int64_t rt_now_ms(void);
void rt_sleep_ms(long ms);

/* A margin for a bound that the code's own CPU time counts against: ms,
 * or ten times that under valgrind (scripts/valgrind.sh sets
 * $REDLOCK_TEST_SLOW), which runs code 20-50x slower. */
int64_t rt_slack_ms(int64_t ms);
/* 1 under valgrind (as above). */
int rt_slow(void);

#endif
