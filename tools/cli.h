/*
 * The redlock tool's shared declarations.  Each source file has one job:
 *
 *   redlock.c   main, the command line, --help
 *   output.c    messages (errors, -v steps) and exit statuses
 *   urls.c      the nodes' URLs: -u, $REDLOCK_URL, $REDISCLI_AUTH
 *   tls.c       TLS and Sentinel options: --tls..., $REDLOCK_CACERT...,
 *               $REDLOCK_SENTINEL_AUTH
 *   commands.c  acquire, extend, release, status
 *   list.c      list: the locks held now, one line each; who holds a lock
 *               (the holder's host, pid and since, read from its token)
 *   run.c       run: the supervisor (signals, the lock, the end of the job:
 *               COMMAND and the rest of its process group)
 *   spawn.c     run: starting COMMAND (fork, exec, its group, the terminal)
 *
 * Everything shared is declared here with a cli_ prefix; the rest is
 * static.  Include this first: it sets the feature-test macros.
 */
#ifndef REDLOCK_CLI_H
#define REDLOCK_CLI_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif

#include <redlock.h>

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Exit statuses (the values of <sysexits.h>, which is not POSIX). */
enum {
    XS_OK = 0,
    XS_NOT_HELD = 1,  /* release/extend: the token does not hold the key;
                         status: the key is free */
    XS_USAGE = 64,    /* EX_USAGE: bad command line, URL or option */
    XS_UNAVAIL = 69,  /* EX_UNAVAILABLE: Redis unreachable, no quorum */
    XS_LOST = 70,     /* EX_SOFTWARE: the lock was lost while COMMAND ran */
    XS_OSERR = 71,    /* EX_OSERR: out of memory, cannot fork, pipe... */
    XS_IOERR = 74,    /* EX_IOERR: cannot print the token */
    XS_BUSY = 75,     /* EX_TEMPFAIL: held elsewhere (-E changes it) */
    XS_PROTOCOL = 76, /* EX_PROTOCOL: Redis answered with an error */
    XS_NOPERM = 77,   /* EX_NOPERM: authentication refused */
    XS_CANNOT_EXEC = 126,
    XS_NOT_FOUND = 127
};

#define DEFAULT_URL "redis://127.0.0.1:6379"
#define DEFAULT_TTL_MS 30000
#define DEFAULT_GRACE_MS 10000
/* The watchdog renews every ttl/3; this only keeps tiny ttls sane. */
#define RENEW_FLOOR_MS 100

/* The command line, parsed (redlock.c). */
typedef struct cli_args {
    const char *urls[REDLOCK_MAX_NODES];
    size_t nurls;
    const char *cmd;
    int64_t ttl_ms, wait_ms, grace_ms;
    int busy_code;
    int fence;          /* run, acquire: --fence */
    int holders;        /* run, acquire: -n N (1..REDLOCK_SEMAPHORE_MAX); 0:
                           not given, a plain lock */
    int list_all;       /* list: -a (REDLOCK_LIST_ALL) */
    int header;         /* list: 1 --header, 0 --no-header, -1 on a terminal */
    const char *pos[2]; /* KEY, TOKEN; list: PATTERN */
    int npos;
    char **command; /* run: COMMAND [ARG...] */
    /* TLS, as redis-cli names them (NULL: not given; $REDLOCK_* then) */
    int tls;            /* --tls: redis:// URLs use TLS too */
    int tls_insecure;   /* --insecure */
    const char *cacert, *cacertdir, *cert, *key, *sni;
} cli_args;

/* ---- output.c ---- */

/* -v was given: cli_note() prints. */
extern int cli_verbose;
/* SIGPIPE was ignored when redlock started: COMMAND inherits that. */
extern int cli_sigpipe_was_ignored;

/* One error line on stderr: "redlock: ...". */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A step, with -v only: "2026-11-25T10:00:00.123+0100 redlock[42]: ...". */
void cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "what failed: fixed text (detail)" for a library status. */
void cli_err_status(const char *what, redlock_status st);
/* A usage error's line ("... (try 'redlock --help')"); returns XS_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The exit status for a library status (busy_code for REDLOCK_BUSY). */
int cli_exit_code(redlock_status st, int busy_code);
/* The monotonic clock in ms; async-signal-safe. */
int64_t cli_now_ms(void);
/* "SIGTERM" and the like, for messages. */
const char *cli_signame(int sig);

/* ---- urls.c ---- */

typedef struct cli_urls {
    char *url[REDLOCK_MAX_NODES];
    size_t n;
    char *env_copy; /* $REDLOCK_URL, split in place */
} cli_urls;

/* The nodes' URLs, with $REDISCLI_AUTH put in.  Returns -1 to go on, or an
 * exit status (after a message).  Free with cli_urls_free() either way. */
int cli_make_urls(const cli_args *a, cli_urls *u);
void cli_urls_free(cli_urls *u);

/* ---- tls.c ---- */

/* What tls.c keeps for the options it fills (the Sentinel password). */
typedef struct cli_tls {
    char *sentinel_auth; /* a copy of $REDLOCK_SENTINEL_AUTH, split in place */
    size_t sentinel_auth_len;
} cli_tls;

/* Fill o's tls_* and sentinel_* from the flags, then the environment
 * ($REDLOCK_CACERT...; flags win), each file checked readable.  Returns -1
 * to go on, or an exit status (after a message).  Free t with
 * cli_tls_free() either way, after redlock_connect(). */
int cli_tls_options(const cli_args *a, redlock_options *o, cli_tls *t);
void cli_tls_free(cli_tls *t);

/* ---- commands.c ---- */

int cli_acquire(const cli_args *a, redlock_client *c);
int cli_extend(const cli_args *a, redlock_client *c);
int cli_release(const cli_args *a, redlock_client *c);
int cli_status(const cli_args *a, redlock_client *c);

/* ---- list.c ---- */

int cli_list(const cli_args *a, redlock_client *c);

/* Who took a lock, as a token made with holder_info says:
 * "<uuid>;host=H;pid=P;since=MS".  Returns 0 with the parts, or -1 for any
 * other token (taken by another client, or a caller's own). */
int cli_holder_of(const char *token, char *host, size_t hostlen, long *pid,
                  int64_t *since_ms);
/* since_ms (Unix time, ms) as ISO 8601 UTC, "2026-11-25T10:00:00Z". */
void cli_iso_utc(int64_t since_ms, char *buf, size_t len);

/* ---- run.c ---- */

/* Before redlock_connect() for `run`: the self-pipe.  0, or -1 (errno). */
int cli_run_init(void);
/* After the client is freed (safe without cli_run_init()). */
void cli_run_cleanup(void);
/* The client's on_lost callback for `run`. */
void cli_on_lost(const redlock_lock *lock, void *arg);
int cli_run(const cli_args *a, redlock_client *c);

/* ---- spawn.c ---- */

/* Make pgid the terminal's foreground process group. */
int cli_give_tty(int tty, pid_t pgid);
/*
 * Start COMMAND (argv, searched in redlock's PATH) with the environment
 * envp in a process group of its own, the foreground of the terminal tty
 * if take_tty.  Returns 0 with *pid set, or the errno of what failed (of
 * exec, as posix_spawnp() reports it).  mask: COMMAND's signal mask;
 * sigdef: signals it gets with their default action.
 */
int cli_start_command(char **argv, char *const *envp, const sigset_t *mask,
                      const sigset_t *sigdef, int tty, int take_tty, pid_t *pid);

#endif /* REDLOCK_CLI_H */
