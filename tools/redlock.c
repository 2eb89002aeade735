/*
 * redlock: flock(1) across machines, on libredlock.
 *
 *   redlock [-u URL]... [-v] run [-t TTL] [-w WAIT] [-E CODE] [-k GRACE] KEY -- COMMAND [ARG...]
 *   redlock [-u URL]... acquire [-t TTL] [-w WAIT] KEY
 *   redlock [-u URL]... extend [-t TTL] KEY TOKEN
 *   redlock [-u URL]... release KEY TOKEN
 *   redlock [-u URL]... status KEY
 *   redlock --help | --version
 *
 * See redlock.1 for the whole story.  Design notes:
 *
 *  - `run` keeps the lock alive with the library's watchdog thread and
 *    learns of a loss through on_lost, which only writes one byte to a
 *    self-pipe.  Signal handlers write to the same pipe, so the main thread
 *    sleeps in one poll() and does everything else (forwarding, reaping,
 *    escalating to SIGKILL) itself: no work in handlers, no race between
 *    SIGCHLD and forwarding (the child is reaped only by the loop that
 *    forwards, so its pid cannot be reused meanwhile).
 *  - COMMAND is started with fork() and execve(), because only the child
 *    itself can ask the kernel (PR_SET_PDEATHSIG) to kill it when redlock
 *    dies: a COMMAND that outlived a killed redlock would run on without
 *    the lock once its ttl ended.  The child of this multi-threaded process
 *    calls only async-signal-safe functions: PATH is searched, as execvp()
 *    would, into names made before fork().  The child gets the signal mask
 *    redlock started with and default dispositions for what redlock
 *    handles.  Lock sockets and the self-pipes are close-on-exec.
 *  - COMMAND runs in a process group of its own, so that a signal sent to
 *    redlock's group reaches COMMAND once (forwarded), not twice; in the
 *    terminal's foreground it gets the terminal, and redlock follows its
 *    stops, as a shell would (follow_stop).
 *  - Passwords: $REDISCLI_AUTH is percent-encoded into URLs that carry
 *    none; no message of this tool ever prints a URL (the library's
 *    messages name host:port only).
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <redlock.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

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

static int verbose;
/* SIGPIPE was ignored when redlock started: COMMAND inherits that. */
static int sigpipe_was_ignored;

/* ---- output ---------------------------------------------------------------- */

/* Write one whole line to stderr at once, control characters flattened so
 * that it stays one line. */
static void put_line(const char *prefix, const char *fmt, va_list ap)
{
    char buf[2048];
    size_t n = (size_t)snprintf(buf, sizeof buf, "%s", prefix);
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    int m = vsnprintf(buf + n, sizeof buf - n, fmt, ap);
    if (m > 0)
        n += (size_t)m < sizeof buf - n ? (size_t)m : sizeof buf - n - 1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            buf[i] = ' ';
    buf[n++] = '\n';
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* One error line: "redlock: ...". */
__attribute__((format(printf, 1, 2))) static void err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    put_line("redlock: ", fmt, ap);
    va_end(ap);
}

/* A step, with -v only: "2026-11-25T10:00:00.123+0100 redlock[42]: ...". */
__attribute__((format(printf, 1, 2))) static void note(const char *fmt, ...)
{
    if (!verbose)
        return;
    struct timespec ts;
    struct tm tm;
    char stamp[64], prefix[128];
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t t = ts.tv_sec;
    if (localtime_r(&t, &tm) == NULL ||
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        snprintf(stamp, sizeof stamp, "%lld", (long long)t);
    char zone[16] = "";
    if (strftime(zone, sizeof zone, "%z", &tm) == 0)
        zone[0] = '\0';
    snprintf(prefix, sizeof prefix, "%s.%03ld%s redlock[%ld]: ", stamp,
             ts.tv_nsec / 1000000, zone, (long)getpid());
    va_list ap;
    va_start(ap, fmt);
    put_line(prefix, fmt, ap);
    va_end(ap);
}

/* "what failed: fixed text (detail)" for a library status. */
static void err_status(const char *what, redlock_status st)
{
    const char *detail = redlock_last_error();
    if (detail && *detail)
        err("%s: %s (%s)", what, redlock_strerror(st), detail);
    else
        err("%s: %s", what, redlock_strerror(st));
}

static int exit_code(redlock_status st, int busy_code)
{
    switch (st) {
    case REDLOCK_OK:
        return XS_OK;
    case REDLOCK_BUSY:
        return busy_code;
    case REDLOCK_NOT_HELD:
        return XS_NOT_HELD;
    case REDLOCK_IO:
        return XS_UNAVAIL;
    case REDLOCK_SERVER:
        return XS_PROTOCOL;
    case REDLOCK_AUTH:
        return XS_NOPERM;
    case REDLOCK_INVALID:
        return XS_USAGE;
    case REDLOCK_NOMEM:
        return XS_OSERR;
    }
    return XS_OSERR;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *signame(int sig)
{
    switch (sig) {
    case SIGHUP:
        return "SIGHUP";
    case SIGINT:
        return "SIGINT";
    case SIGQUIT:
        return "SIGQUIT";
    case SIGTERM:
        return "SIGTERM";
    case SIGKILL:
        return "SIGKILL";
    case SIGUSR1:
        return "SIGUSR1";
    case SIGUSR2:
        return "SIGUSR2";
    default:
        return "a signal";
    }
}

/* ---- help ---------------------------------------------------------------------- */

static const char usage_text[] =
    "Usage:\n"
    "  redlock [-u URL]... [-v] run [-t TTL] [-w WAIT] [-E CODE] [-k GRACE] KEY -- COMMAND [ARG...]\n"
    "  redlock [-u URL]... [-v] acquire [-t TTL] [-w WAIT] KEY\n"
    "  redlock [-u URL]... [-v] extend [-t TTL] KEY TOKEN\n"
    "  redlock [-u URL]... [-v] release KEY TOKEN\n"
    "  redlock [-u URL]... [-v] status KEY\n"
    "  redlock --help | --version\n"
    "\n"
    "flock(1) across machines: a lock is a Redis key holding its owner's token.\n"
    "\n"
    "Commands:\n"
    "  run      take the lock, keep it alive while COMMAND runs, release it after;\n"
    "           exit with COMMAND's status (128+N if signal N killed it).\n"
    "           SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are\n"
    "           forwarded to COMMAND.  If the lock is lost, COMMAND gets SIGTERM,\n"
    "           then SIGKILL after GRACE, and redlock exits 70.  If redlock\n"
    "           dies, the kernel kills COMMAND (SIGKILL).\n"
    "  acquire  take the lock, print its token and leave it held for TTL\n"
    "  extend   give the lock that TOKEN holds a fresh TTL\n"
    "  release  delete the lock if TOKEN still holds it\n"
    "  status   print the holder's token and the ttl left (\"TOKEN 29500ms\")\n"
    "\n"
    "Options:\n"
    "  -u, --url URL      a Redis node: redis://[[user][:password]@]host[:port][/db]\n"
    "                     or unix://[[user][:password]@]/path[?db=N]; several -u make\n"
    "                     a Redlock quorum.  Default: $REDLOCK_URL (comma-separated),\n"
    "                     then " DEFAULT_URL "\n"
    "  -v, --verbose      log each step (acquired, renewed, released, lost) to stderr\n"
    "  -t, --ttl TTL      lock time to live [30s], at least 4ms; `run` renews it\n"
    "                     every TTL/3\n"
    "  -w, --wait WAIT    wait that long for a busy lock (\"forever\" too) [0]\n"
    "  -E, --conflict-exit-code CODE\n"
    "                     exit status when the lock is held elsewhere [75]\n"
    "  -k, --grace GRACE  after a lost lock, SIGKILL COMMAND this long after\n"
    "                     SIGTERM [10s]\n"
    "  -h, --help         this text;  -V, --version  the version\n"
    "Durations: 250ms, 30s, 5m, 1h; a bare number is seconds.\n"
    "$REDISCLI_AUTH is the password for URLs that carry none (keeps it out of ps).\n"
    "\n"
    "Exit status:\n"
    "    0  success; status: the key is held\n"
    "    1  release/extend: TOKEN does not hold KEY; status: the key is free\n"
    "   64  usage error (bad option, duration, TTL or URL)\n"
    "   69  Redis unreachable, timed out, or too few nodes for a quorum\n"
    "   70  run: the lock was lost while COMMAND ran\n"
    "   71  system error (out of memory, cannot start COMMAND)\n"
    "   75  the lock is held elsewhere (or the -E CODE)\n"
    "   76  Redis answered with an error (e.g. KEY is not a lock)\n"
    "   77  authentication refused\n"
    "  126  run: COMMAND cannot be executed;  127  run: COMMAND not found\n"
    "  else run: COMMAND's own status\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err("%s (try 'redlock --help')", msg);
    return XS_USAGE;
}

/* ---- arguments ----------------------------------------------------------------- */

/*
 * A duration: digits, then nothing (seconds), "ms", "s", "m" or "h".
 * allow_forever: "forever" (or "inf") gives REDLOCK_WAIT_FOREVER.
 * Returns 0, or -1 for anything malformed or above REDLOCK_TTL_MAX.
 */
static int parse_duration(const char *s, int allow_forever, int64_t *ms)
{
    if (allow_forever && (strcmp(s, "forever") == 0 || strcmp(s, "inf") == 0)) {
        *ms = REDLOCK_WAIT_FOREVER;
        return 0;
    }
    if (*s < '0' || *s > '9')
        return -1;
    int64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (*s - '0');
        if (v > REDLOCK_TTL_MAX)
            return -1;
    }
    int64_t mult;
    if (*s == '\0' || strcmp(s, "s") == 0)
        mult = 1000;
    else if (strcmp(s, "ms") == 0)
        mult = 1;
    else if (strcmp(s, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(s, "h") == 0)
        mult = 3600 * 1000;
    else
        return -1;
    if (v > REDLOCK_TTL_MAX / mult)
        return -1;
    *ms = v * mult;
    return 0;
}

/* ttl * drift, rounded up, + 2 ms: the library's allowance for clock drift
 * (redlock__drift_ms in src/timing.c, the same arithmetic). */
static int64_t drift_ms(int64_t ttl_ms, double drift_factor)
{
    double d = (double)ttl_ms * drift_factor;
    int64_t ms = (int64_t)d;
    return ms + ((double)ms < d) + 2;
}

/* The smallest ttl that leaves 1 ms of validity after the drift allowance,
 * at the default drift factor, which is the one redlock uses. */
static int64_t min_ttl_ms(double *drift_factor)
{
    redlock_options o;
    redlock_options_init(&o);
    *drift_factor = o.drift_factor;
    int64_t ttl = 1;
    while (ttl - drift_ms(ttl, o.drift_factor) < 1)
        ttl++;
    return ttl;
}

typedef struct args {
    const char *urls[REDLOCK_MAX_NODES];
    size_t nurls;
    const char *cmd;
    int64_t ttl_ms, wait_ms, grace_ms;
    int busy_code;
    const char *pos[2]; /* KEY, TOKEN */
    int npos;
    char **command; /* run: COMMAND [ARG...] */
} args;

/*
 * If argv[*i] is the option `shortopt`/`longopt` (forms: -x VAL, -xVAL,
 * --long VAL, --long=VAL), store its value in *val, advance *i past it and
 * return 1; return 0 if it is another argument, -1 (after a message) if
 * its value is missing.  longopt may be NULL; value == 0: a flag.
 */
static int match_opt(char **argv, int argc, int *i, char shortopt,
                     const char *longopt, int value, const char **val)
{
    const char *a = argv[*i];
    const char *v = NULL;
    if (a[0] == '-' && a[1] == shortopt) {
        if (!value) {
            if (a[2] != '\0')
                return 0;
            (*i)++;
            return 1;
        }
        v = a[2] ? a + 2 : NULL;
    } else if (longopt && a[0] == '-' && a[1] == '-' &&
               strncmp(a + 2, longopt, strlen(longopt)) == 0) {
        const char *rest = a + 2 + strlen(longopt);
        if (*rest == '=' && value)
            v = rest + 1;
        else if (*rest != '\0')
            return 0;
        else if (!value) {
            (*i)++;
            return 1;
        }
    } else {
        return 0;
    }
    if (!v) {
        if (*i + 1 >= argc) {
            usage_error("option %s needs a value", a);
            return -1;
        }
        v = argv[++*i];
    }
    (*i)++;
    *val = v;
    return 1;
}

enum { OPT_NONE = 0, OPT_TAKEN = 1, OPT_ERROR = -1, OPT_EXIT = -2 };

/* Global options (-u, -v, -h, -V), accepted before and after the command.
 * OPT_EXIT: --help or --version was handled (the exit status is in *code). */
static int global_opt(args *a, char **argv, int argc, int *i, int *code)
{
    const char *v;
    int r;
    if ((r = match_opt(argv, argc, i, 'u', "url", 1, &v)) != 0) {
        if (r < 0)
            return OPT_ERROR;
        if (a->nurls >= REDLOCK_MAX_NODES) {
            usage_error("too many -u (at most %d nodes)", REDLOCK_MAX_NODES);
            return OPT_ERROR;
        }
        if (*v == '\0') {
            usage_error("-u needs a non-empty URL");
            return OPT_ERROR;
        }
        a->urls[a->nurls++] = v;
        return OPT_TAKEN;
    }
    if (match_opt(argv, argc, i, 'v', "verbose", 0, &v) > 0) {
        verbose = 1;
        return OPT_TAKEN;
    }
    if (match_opt(argv, argc, i, 'h', "help", 0, &v) > 0) {
        fputs(usage_text, stdout);
        *code = fflush(stdout) == 0 ? XS_OK : XS_IOERR;
        return OPT_EXIT;
    }
    if (match_opt(argv, argc, i, 'V', "version", 0, &v) > 0) {
        printf("redlock %s (libredlock %s)\n", REDLOCK_VERSION_STRING,
               redlock_version());
        *code = fflush(stdout) == 0 ? XS_OK : XS_IOERR;
        return OPT_EXIT;
    }
    return OPT_NONE;
}

/* The options of the command `a->cmd`. */
static int command_opt(args *a, char **argv, int argc, int *i)
{
    const char *v;
    int r;
    int is_run = strcmp(a->cmd, "run") == 0;
    int has_ttl = strcmp(a->cmd, "release") != 0 && strcmp(a->cmd, "status") != 0;
    int has_wait = is_run || strcmp(a->cmd, "acquire") == 0;

    if (has_ttl && (r = match_opt(argv, argc, i, 't', "ttl", 1, &v)) != 0) {
        if (r < 0)
            return OPT_ERROR;
        if (parse_duration(v, 0, &a->ttl_ms) != 0 || a->ttl_ms < 1) {
            usage_error("%s: bad TTL \"%s\" (e.g. 250ms, 30s, 5m, 1h)", a->cmd, v);
            return OPT_ERROR;
        }
        /* Refused here, before any contact with Redis: the library would
         * take such a lock and find it had no validity at all, which looks
         * like a slow Redis (69) rather than the bad TTL it is. */
        double drift;
        int64_t min = min_ttl_ms(&drift);
        if (a->ttl_ms < min) {
            usage_error("%s: TTL \"%s\" is too short: the clock-drift allowance "
                        "(%g%% of it, rounded up, + 2ms) leaves no time to hold "
                        "the lock; the smallest usable TTL is %" PRId64 "ms",
                        a->cmd, v, drift * 100, min);
            return OPT_ERROR;
        }
        return OPT_TAKEN;
    }
    if (has_wait && (r = match_opt(argv, argc, i, 'w', "wait", 1, &v)) != 0) {
        if (r < 0)
            return OPT_ERROR;
        if (parse_duration(v, 1, &a->wait_ms) != 0) {
            usage_error("%s: bad WAIT \"%s\" (e.g. 0, 500ms, 10s, forever)", a->cmd, v);
            return OPT_ERROR;
        }
        return OPT_TAKEN;
    }
    if (is_run && (r = match_opt(argv, argc, i, 'E', "conflict-exit-code", 1, &v)) != 0) {
        if (r < 0)
            return OPT_ERROR;
        char *end;
        errno = 0;
        long code = strtol(v, &end, 10);
        if (errno || end == v || *end || code < 0 || code > 255) {
            usage_error("run: bad -E CODE \"%s\" (0..255)", v);
            return OPT_ERROR;
        }
        a->busy_code = (int)code;
        return OPT_TAKEN;
    }
    if (is_run && (r = match_opt(argv, argc, i, 'k', "grace", 1, &v)) != 0) {
        if (r < 0)
            return OPT_ERROR;
        if (parse_duration(v, 0, &a->grace_ms) != 0) {
            usage_error("run: bad GRACE \"%s\" (e.g. 0, 500ms, 10s)", v);
            return OPT_ERROR;
        }
        return OPT_TAKEN;
    }
    return OPT_NONE;
}

/* Returns -1 to go on, or the exit status. */
static int parse_args(args *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->ttl_ms = DEFAULT_TTL_MS;
    a->wait_ms = 0;
    a->grace_ms = DEFAULT_GRACE_MS;
    a->busy_code = XS_BUSY;

    int i = 1, code = 0, r;
    while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        r = global_opt(a, argv, argc, &i, &code);
        if (r == OPT_EXIT)
            return code;
        if (r == OPT_ERROR)
            return XS_USAGE;
        if (r == OPT_NONE)
            return usage_error("unknown option %s", argv[i]);
    }
    if (i >= argc)
        return usage_error("no command given (run, acquire, extend, release or status)");
    a->cmd = argv[i++];
    int want, is_run = 0;
    if (strcmp(a->cmd, "run") == 0) {
        want = 1;
        is_run = 1;
    } else if (strcmp(a->cmd, "acquire") == 0 || strcmp(a->cmd, "status") == 0) {
        want = 1;
    } else if (strcmp(a->cmd, "extend") == 0 || strcmp(a->cmd, "release") == 0) {
        want = 2;
    } else {
        return usage_error("unknown command \"%s\" (run, acquire, extend, release or status)",
                           a->cmd);
    }

    /* Options and operands in any order; "--" ends the options, and for
     * `run` the first "--" after KEY starts COMMAND. */
    int options_done = 0;
    while (i < argc) {
        const char *s = argv[i];
        if (strcmp(s, "--") == 0) {
            i++;
            if (is_run && a->npos == 1) {
                a->command = &argv[i];
                break;
            }
            if (options_done && is_run)
                return usage_error("run: \"--\" must follow KEY");
            options_done = 1;
            continue;
        }
        if (!options_done && s[0] == '-' && s[1] != '\0') {
            r = global_opt(a, argv, argc, &i, &code);
            if (r == OPT_EXIT)
                return code;
            if (r == OPT_ERROR)
                return XS_USAGE;
            if (r == OPT_TAKEN)
                continue;
            r = command_opt(a, argv, argc, &i);
            if (r == OPT_ERROR)
                return XS_USAGE;
            if (r == OPT_TAKEN)
                continue;
            return usage_error("%s: unknown option %s", a->cmd, s);
        }
        if (a->npos >= want) {
            if (is_run)
                return usage_error("run: expected \"--\" after KEY, got \"%s\" "
                                   "(redlock run KEY -- COMMAND [ARG...])", s);
            return usage_error("%s: unexpected argument \"%s\"", a->cmd, s);
        }
        a->pos[a->npos++] = s;
        i++;
    }
    if (a->npos < 1)
        return usage_error("%s: missing KEY", a->cmd);
    if (a->npos < want)
        return usage_error("%s: missing TOKEN", a->cmd);
    if (*a->pos[0] == '\0')
        return usage_error("%s: KEY is empty", a->cmd);
    if (want == 2 && *a->pos[1] == '\0')
        return usage_error("%s: TOKEN is empty", a->cmd);
    if (is_run && a->command == NULL)
        return usage_error("run: missing \"-- COMMAND\" after KEY");
    if (is_run && a->command[0] == NULL)
        return usage_error("run: missing COMMAND after \"--\"");
    return -1;
}

/* ---- URLs ---------------------------------------------------------------------- */

typedef struct urls {
    char *url[REDLOCK_MAX_NODES];
    size_t n;
    char *env_copy; /* $REDLOCK_URL, split in place */
} urls;

static void urls_free(urls *u)
{
    for (size_t i = 0; i < u->n; i++) {
        if (u->url[i]) {
            /* Wipe what may hold a password before it goes back. */
            memset(u->url[i], 0, strlen(u->url[i]));
            free(u->url[i]);
        }
    }
    free(u->env_copy);
    memset(u, 0, sizeof *u);
}

static int unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
           (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
           ch == '~';
}

/*
 * A malloc'd copy of url with `password` (raw, percent-encoded here) put in
 * when the URL carries no password of its own; NULL when out of memory.
 * URLs of another scheme are copied unchanged (the library names the error).
 */
static char *with_password(const char *url, const char *password)
{
    const char *sep = strstr(url, "://");
    int known = sep && ((sep - url == 5 && strncasecmp(url, "redis", 5) == 0) ||
                        (sep - url == 4 && strncasecmp(url, "unix", 4) == 0));
    if (!password || !*password || !known)
        return strdup(url);

    const char *rest = sep + 3;
    /* The authority ends at the first '/', '?' or '#' (unix://: at the
     * path); userinfo is what comes before its last '@'. */
    size_t alen = strcspn(rest, "/?#");
    const char *at = NULL;
    for (const char *p = rest; p < rest + alen; p++)
        if (*p == '@')
            at = p;
    const char *colon = NULL;
    if (at) {
        colon = memchr(rest, ':', (size_t)(at - rest));
        if (colon && colon + 1 < at)
            return strdup(url); /* it has a password: the URL wins */
    }

    size_t plen = strlen(password);
    size_t len = strlen(url) + 3 * plen + 3;
    char *out = malloc(len);
    if (!out)
        return NULL;
    char *o = out;
    /* scheme:// and the user, if any */
    const char *user_end = at ? (colon ? colon : at) : rest;
    memcpy(o, url, (size_t)(user_end - url));
    o += user_end - url;
    *o++ = ':';
    for (size_t k = 0; k < plen; k++) {
        unsigned char ch = (unsigned char)password[k];
        if (unreserved(ch)) {
            *o++ = (char)ch;
        } else {
            static const char hex[] = "0123456789ABCDEF";
            *o++ = '%';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    if (at) {
        strcpy(o, at); /* "@host..." */
    } else {
        *o++ = '@';
        strcpy(o, rest);
    }
    return out;
}

/* Returns -1 to go on, or an exit status. */
static int make_urls(const args *a, urls *u)
{
    const char *list[REDLOCK_MAX_NODES];
    size_t n = 0;
    memset(u, 0, sizeof *u);
    if (a->nurls > 0) {
        for (size_t i = 0; i < a->nurls; i++)
            list[n++] = a->urls[i];
    } else {
        const char *env = getenv("REDLOCK_URL");
        if (env && *env) {
            if (!(u->env_copy = strdup(env))) {
                err("out of memory");
                return XS_OSERR;
            }
            char *p = u->env_copy;
            for (;;) {
                char *comma = strchr(p, ',');
                if (comma)
                    *comma = '\0';
                if (*p == '\0')
                    return usage_error("$REDLOCK_URL has an empty URL in its "
                                       "comma-separated list");
                if (n >= REDLOCK_MAX_NODES)
                    return usage_error("$REDLOCK_URL has too many URLs (at most %d)",
                                       REDLOCK_MAX_NODES);
                list[n++] = p;
                if (!comma)
                    break;
                p = comma + 1;
            }
        } else {
            list[n++] = DEFAULT_URL;
        }
    }
    const char *password = getenv("REDISCLI_AUTH");
    for (size_t i = 0; i < n; i++) {
        if (!(u->url[i] = with_password(list[i], password))) {
            err("out of memory");
            return XS_OSERR;
        }
        u->n++;
    }
    return -1;
}

/* ---- run ---------------------------------------------------------------------- */

/* Written by signal handlers and by on_lost (watchdog thread); read by the
 * main loop.  Set before either can run, never changed while they can. */
static int wake_fd[2] = {-1, -1};

/* One event on the pipe.  A record is far below PIPE_BUF, so every write
 * is atomic and a read never splits one. */
typedef struct event {
    int sig;       /* the signal, or EV_LOST */
    pid_t sender;  /* who sent it (0: the kernel, as for a terminal's ^C) */
    int64_t at_ms; /* when it arrived */
} event;
#define EV_LOST 0

/* One signal from one sender twice within this is one signal: timeout(1)
 * sends its signal to redlock and then to redlock's process group, which
 * reaches redlock again (and not COMMAND, which has a group of its own).
 * The kernel already merges the two when they come before the handler
 * runs; this makes it so when they do not. */
#define DUP_WINDOW_MS 100

/* Set by SIGCONT: after stopping itself, redlock learns whether it was
 * really stopped and continued (a stop signal to an orphaned process group
 * is discarded). */
static volatile sig_atomic_t continued;

static void on_signal(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    int saved = errno;
    if (sig == SIGCONT) {
        continued = 1;
        errno = saved;
        return;
    }
    event ev;
    memset(&ev, 0, sizeof ev);
    ev.sig = sig;
    if (si && (si->si_code == SI_USER || si->si_code == SI_QUEUE))
        ev.sender = si->si_pid;
    ev.at_ms = now_ms(); /* clock_gettime() is async-signal-safe */
    if (write(wake_fd[1], &ev, sizeof ev) < 0) {
        /* full pipe: the loop is awake anyway */
    }
    errno = saved;
}

static void on_lost(const redlock_lock *lock, void *arg)
{
    (void)lock;
    (void)arg;
    event ev;
    memset(&ev, 0, sizeof ev);
    ev.sig = EV_LOST;
    if (write(wake_fd[1], &ev, sizeof ev) < 0) {
        /* nothing to do: the loop also checks redlock_held() */
    }
}

static int make_wake_pipe(void)
{
    if (pipe(wake_fd) != 0)
        return -1;
    for (int k = 0; k < 2; k++) {
        int fl = fcntl(wake_fd[k], F_GETFL);
        if (fl < 0 || fcntl(wake_fd[k], F_SETFL, fl | O_NONBLOCK) < 0 ||
            fcntl(wake_fd[k], F_SETFD, FD_CLOEXEC) < 0)
            return -1;
    }
    return 0;
}

static void close_wake_pipe(void)
{
    for (int k = 0; k < 2; k++)
        if (wake_fd[k] >= 0) {
            close(wake_fd[k]);
            wake_fd[k] = -1;
        }
}

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
#define NFORWARDED (sizeof forwarded / sizeof forwarded[0])

typedef struct run_state {
    pid_t pid;           /* COMMAND, also its process group */
    int status;
    int lost;            /* known lost: COMMAND was told */
    int64_t kill_at_ms;  /* SIGKILL due (0: none) */
    int killed;
    int64_t valid_end_ms; /* last observed end of validity, for "renewed" */
    int tty;             /* the controlling terminal, or -1 */
    int last_sig;        /* the last signal forwarded, its sender and time */
    pid_t last_sender;
    int64_t last_at_ms;
} run_state;

static int status_of_child(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return XS_OSERR;
}

/* ---- starting COMMAND ---- */

/* Make pgid the terminal's foreground process group. */
static int give_tty(int tty, pid_t pgid)
{
    /* A process outside the foreground that calls tcsetpgrp() gets SIGTTOU
     * (and stops) unless it blocks it. */
    sigset_t ttou, old;
    sigemptyset(&ttou);
    sigaddset(&ttou, SIGTTOU);
    sigprocmask(SIG_BLOCK, &ttou, &old);
    int rc = tcsetpgrp(tty, pgid);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* The full names execvp() would try for COMMAND, in its order, made before
 * fork(): the child of a multi-threaded process may call only
 * async-signal-safe functions, which malloc() and execvp() are not. */
typedef struct exec_plan {
    char **path;
    size_t n;
} exec_plan;

static void plan_free(exec_plan *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->path[i]);
    free(p->path);
    memset(p, 0, sizeof *p);
}

static int plan_exec(const char *file, exec_plan *p)
{
    memset(p, 0, sizeof *p);
    if (*file == '\0')
        return 0; /* found nowhere: ENOENT, as execvp() says */
    const char *search = strchr(file, '/') ? NULL : getenv("PATH");
    if (!strchr(file, '/') && !search)
        search = "/bin:/usr/bin"; /* execvp()'s default in glibc */
    size_t parts = 1;
    for (const char *s = search; s && *s; s++)
        parts += *s == ':';
    if (!(p->path = calloc(parts, sizeof *p->path)))
        return -1;
    if (!search) {
        if (!(p->path[0] = strdup(file)))
            return -1;
        p->n = 1;
        return 0;
    }
    size_t flen = strlen(file);
    for (const char *s = search;;) {
        size_t len = strcspn(s, ":");
        char *full = malloc(len + flen + 3);
        if (!full)
            return -1;
        if (len == 0) /* an empty PATH entry is the current directory */
            memcpy(full, ".", (len = 1));
        else
            memcpy(full, s, len);
        full[len] = '/';
        memcpy(full + len + 1, file, flen + 1);
        p->path[p->n++] = full;
        s += strcspn(s, ":");
        if (*s == '\0')
            break;
        s++;
    }
    return 0;
}

/* The child, between fork() and exec: async-signal-safe calls only.  Every
 * signal is blocked on entry. */
static void exec_child(const exec_plan *plan, char **argv, const sigset_t *mask,
                       const sigset_t *sigdef, pid_t parent, int tty, int take_tty,
                       int errfd)
{
    int e = 0;
    /* A group of its own: a signal sent to redlock's process group (kill
     * -TERM -PGID) reaches redlock alone, which passes it on once. */
    if (setpgid(0, 0) != 0)
        e = errno;
    if (e == 0 && take_tty)
        (void)tcsetpgrp(tty, getpid()); /* SIGTTOU is blocked here */
    /* COMMAND lives no longer than redlock: if redlock dies, even by
     * SIGKILL, the kernel kills COMMAND at once, while the lock still holds
     * (it then stays in Redis until its ttl ends).  SIGKILL because a dead
     * redlock could not escalate a SIGTERM that COMMAND ignores.  It fires
     * when the forking thread ends: this is the main thread, which lives
     * as long as redlock. */
    if (e == 0 && prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        e = errno;
    /* redlock died before prctl() took effect: nobody holds the lock. */
    if (e == 0 && getppid() != parent)
        _exit(XS_OSERR);
    if (e == 0) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        for (int s = 1; s < 32; s++)
            if (sigismember(sigdef, s) == 1)
                sigaction(s, &dfl, NULL);
        sigprocmask(SIG_SETMASK, mask, NULL);

        /* PATH is searched as execvp() does: on to the next entry after a
         * name that is not there, EACCES if some entry refused. */
        int saw_eacces = 0;
        e = ENOENT;
        for (size_t i = 0; i < plan->n; i++) {
            execve(plan->path[i], argv, environ);
            e = errno;
            if (e == EACCES)
                saw_eacces = 1;
            else if (e != ENOENT && e != ENOTDIR && e != ESTALE && e != ENODEV &&
                     e != ETIMEDOUT)
                break;
        }
        if (saw_eacces && (e == ENOENT || e == ENOTDIR || e == ESTALE ||
                           e == ENODEV || e == ETIMEDOUT))
            e = EACCES;
    }
    if (write(errfd, &e, sizeof e) < 0) {
        /* the parent then sees no error and the exit status 127 */
    }
    _exit(XS_NOT_FOUND);
}

/*
 * Start COMMAND in a process group of its own, the terminal's foreground
 * if redlock held it (as a shell gives it to a job).  Returns 0 with
 * rs->pid set, or the errno of what failed (of exec, as posix_spawnp()
 * reports it).  mask: COMMAND's signal mask; sigdef: signals it gets with
 * their default action.
 */
static int start_command(run_state *rs, char **argv, const sigset_t *mask,
                         const sigset_t *sigdef, int take_tty)
{
    exec_plan plan;
    if (plan_exec(argv[0], &plan) != 0) {
        plan_free(&plan);
        return ENOMEM;
    }
    int ep[2];
    if (pipe(ep) != 0) {
        int e = errno;
        plan_free(&plan);
        return e;
    }
    fcntl(ep[0], F_SETFD, FD_CLOEXEC);
    fcntl(ep[1], F_SETFD, FD_CLOEXEC);

    /* Until the child has reset them, no handler of ours may run there
     * (they write to our pipe); and its tcsetpgrp() must not meet
     * SIGTTOU. */
    sigset_t all, before;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &before);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        exec_child(&plan, argv, mask, sigdef, parent, rs->tty, take_tty, ep[1]);
    int e = pid < 0 ? errno : 0;
    if (pid > 0) {
        /* Here too, so that the group and the terminal are COMMAND's
         * whichever of the two runs first (EACCES once it has exec'd: it
         * did so itself). */
        setpgid(pid, pid);
        if (take_tty)
            (void)tcsetpgrp(rs->tty, pid);
    }
    sigprocmask(SIG_SETMASK, &before, NULL);
    close(ep[1]);
    if (pid > 0) {
        int child_errno = 0;
        ssize_t r;
        while ((r = read(ep[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
        }
        if (r == (ssize_t)sizeof child_errno) {
            e = child_errno;
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
            }
            if (take_tty)
                give_tty(rs->tty, getpgrp());
        } else {
            rs->pid = pid;
        }
    }
    close(ep[0]);
    plan_free(&plan);
    return e;
}

/* ---- watching COMMAND ---- */

/* Why the lock is gone, as far as Redis tells (one bounded round trip). */
static void describe_loss(redlock_client *c, const char *key, const char *ours,
                          char *why, size_t len)
{
    char holder[128];
    int64_t pttl = 0;
    redlock_status st = redlock_inspect(c, key, holder, sizeof holder, &pttl);
    if (st == REDLOCK_OK && strcmp(holder, ours) != 0)
        snprintf(why, len, "another owner's value replaced ours");
    else if (st == REDLOCK_OK)
        snprintf(why, len, "renewals did not get through in time");
    else if (st == REDLOCK_NOT_HELD)
        snprintf(why, len, "the key was deleted or expired");
    else if (st == REDLOCK_INVALID) /* a holder's value longer than holder[] */
        snprintf(why, len, "another owner's value replaced ours");
    else
        snprintf(why, len, "renewals failed: %s", redlock_strerror(st));
}

static void lose(run_state *rs, const args *a, redlock_client *c,
                 redlock_lock *lock)
{
    if (rs->lost)
        return;
    rs->lost = 1;
    /* COMMAND first: it must stop working on what is no longer ours.  A
     * stopped COMMAND (^Z) acts on SIGTERM only once continued. */
    kill(rs->pid, SIGTERM);
    kill(rs->pid, SIGCONT);
    rs->kill_at_ms = now_ms() + a->grace_ms;
    char why[160];
    describe_loss(c, a->pos[0], redlock_token(lock), why, sizeof why);
    note("lost \"%s\": %s", a->pos[0], why);
    note("sent SIGTERM to COMMAND (pid %ld)", (long)rs->pid);
    err("lost the lock \"%s\" while COMMAND ran (%s): sent SIGTERM to "
        "COMMAND (pid %ld), SIGKILL in %" PRId64 "ms if it has not ended",
        a->pos[0], why, (long)rs->pid, a->grace_ms);
}

/*
 * COMMAND was stopped by sig.  In a terminal, a job is what the shell
 * sees: redlock.  So when COMMAND stops for the terminal (^Z, or reading
 * it from the background), redlock takes the terminal back and stops
 * itself with the same signal, for the shell to report; once continued
 * (fg, bg), it gives the terminal back if it is in the foreground and
 * continues COMMAND.  A COMMAND stopped for another reason (SIGSTOP, a
 * debugger) is left to whoever stopped it.
 */
static void follow_stop(run_state *rs, int sig)
{
    if (rs->tty < 0 || (sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU)) {
        note("COMMAND (pid %ld) was stopped by signal %d", (long)rs->pid, sig);
        return;
    }
    pid_t fg = tcgetpgrp(rs->tty);
    if (sig != SIGTSTP && fg == getpgrp()) {
        /* redlock is in the foreground (fg after a start in the
         * background): the terminal is COMMAND's to use. */
        give_tty(rs->tty, rs->pid);
        kill(-rs->pid, SIGCONT);
        note("gave the terminal to COMMAND (pid %ld)", (long)rs->pid);
        return;
    }
    if (fg == rs->pid)
        give_tty(rs->tty, getpgrp());
    note("COMMAND (pid %ld) was stopped by signal %d: stopping too", (long)rs->pid,
         sig);
    continued = 0;
    kill(getpid(), sig);
    if (!continued) {
        /* The stop was discarded (an orphaned process group): continuing
         * COMMAND would only stop it again. */
        note("could not stop: COMMAND (pid %ld) stays stopped", (long)rs->pid);
        return;
    }
    if (tcgetpgrp(rs->tty) == getpgrp())
        give_tty(rs->tty, rs->pid);
    kill(-rs->pid, SIGCONT);
    note("continued COMMAND (pid %ld)", (long)rs->pid);
}

/* Forward what the handlers saw. */
static void forward_events(run_state *rs)
{
    event ev[32];
    ssize_t nb;
    while ((nb = read(wake_fd[0], ev, sizeof ev)) > 0) {
        for (size_t k = 0; k < (size_t)nb / sizeof ev[0]; k++) {
            int sig = ev[k].sig;
            if (sig == EV_LOST || sig == SIGCHLD)
                continue; /* looked at by the loop */
            if (sig == rs->last_sig && ev[k].sender == rs->last_sender &&
                ev[k].at_ms - rs->last_at_ms < DUP_WINDOW_MS) {
                note("got %s again from pid %ld: forwarded once", signame(sig),
                     (long)ev[k].sender);
                continue;
            }
            rs->last_sig = sig;
            rs->last_sender = ev[k].sender;
            rs->last_at_ms = ev[k].at_ms;
            /* Not reaped yet, so the pid is still COMMAND's (at worst a
             * zombie), never a stranger's.  COMMAND is in a group of its
             * own, so nothing sent to redlock or its group (a terminal's
             * ^C included) has reached COMMAND: this is its only copy. */
            kill(rs->pid, sig);
            note("forwarded %s to COMMAND (pid %ld)", signame(sig), (long)rs->pid);
        }
    }
}

/* Forward signals, watch the lock, reap COMMAND.  Returns 0 once COMMAND
 * has been reaped (its wait status in rs->status), -1 on a system error
 * (COMMAND then killed and reaped). */
static int supervise(run_state *rs, const args *a, redlock_client *c,
                     redlock_lock *lock)
{
    const char *key = a->pos[0];
    /* Wake at least this often to watch the validity (renewals come every
     * ttl/3): between 100 ms and 1 s. */
    int64_t tick = a->ttl_ms / 6;
    if (tick < 100)
        tick = 100;
    if (tick > 1000)
        tick = 1000;
    rs->valid_end_ms = now_ms() + redlock_validity_ms(lock);

    for (;;) {
        int64_t timeout = tick;
        if (rs->lost && !rs->killed) {
            int64_t left = rs->kill_at_ms - now_ms();
            if (left < timeout)
                timeout = left < 0 ? 0 : left;
        }
        struct pollfd pfd = {.fd = wake_fd[0], .events = POLLIN};
        if (poll(&pfd, 1, (int)timeout) < 0 && errno != EINTR) {
            err("run: poll: %s: killing COMMAND (pid %ld)", strerror(errno),
                (long)rs->pid);
            kill(rs->pid, SIGKILL);
            while (waitpid(rs->pid, &rs->status, 0) < 0 && errno == EINTR) {
            }
            return -1;
        }
        forward_events(rs);
        pid_t w;
        int ws;
        while ((w = waitpid(rs->pid, &ws, WNOHANG | WUNTRACED)) < 0 && errno == EINTR) {
        }
        if (w == rs->pid && WIFSTOPPED(ws)) {
            follow_stop(rs, WSTOPSIG(ws));
        } else if (w == rs->pid) {
            rs->status = ws;
            return 0;
        } else if (w < 0) {
            err("run: waiting for COMMAND (pid %ld): %s", (long)rs->pid,
                strerror(errno));
            return -1;
        }
        if (!rs->lost) {
            int64_t v = redlock_validity_ms(lock);
            if (!redlock_held(lock) || v <= 0) {
                lose(rs, a, c, lock);
            } else {
                int64_t end = now_ms() + v;
                if (end > rs->valid_end_ms + 5) {
                    note("renewed \"%s\", valid %" PRId64 "ms", key, v);
                    rs->valid_end_ms = end;
                }
            }
        }
        if (rs->lost && !rs->killed && now_ms() >= rs->kill_at_ms) {
            rs->killed = 1;
            kill(rs->pid, SIGKILL);
            note("sent SIGKILL to COMMAND (pid %ld) after the %" PRId64
                 "ms grace", (long)rs->pid, a->grace_ms);
        }
    }
}

static int cmd_run(const args *a, redlock_client *c)
{
    const char *key = a->pos[0];
    redlock_lock *lock = NULL;
    note("acquiring \"%s\" (ttl %" PRId64 "ms, wait %" PRId64 "ms)", key,
         a->ttl_ms, a->wait_ms);
    redlock_status st = redlock_acquire(c, key, a->ttl_ms, a->wait_ms, &lock);
    if (st == REDLOCK_BUSY) {
        /* Not an error: another host runs the job (like flock -n). */
        note("busy: \"%s\" is held elsewhere, exiting %d", key, a->busy_code);
        return a->busy_code;
    }
    if (st != REDLOCK_OK) {
        char what[256];
        snprintf(what, sizeof what, "run: cannot acquire \"%.200s\"", key);
        err_status(what, st);
        return exit_code(st, a->busy_code);
    }
    note("acquired \"%s\" token %s ttl %" PRId64 "ms, valid %" PRId64 "ms",
         key, redlock_token(lock), a->ttl_ms, redlock_validity_ms(lock));
    if ((st = redlock_keepalive(lock)) != REDLOCK_OK) {
        char what[256];
        snprintf(what, sizeof what, "run: cannot keep \"%.200s\" alive", key);
        err_status(what, st);
        redlock_release(lock);
        return st == REDLOCK_NOT_HELD ? XS_LOST : exit_code(st, a->busy_code);
    }

    /* Block what we handle until the loop runs; install the handlers. */
    sigset_t handled, orig_mask;
    sigemptyset(&handled);
    sigaddset(&handled, SIGCHLD);
    sigaddset(&handled, SIGCONT);
    for (size_t k = 0; k < NFORWARDED; k++)
        sigaddset(&handled, forwarded[k]);
    sigprocmask(SIG_BLOCK, &handled, &orig_mask);

    struct sigaction sa, old[NFORWARDED], old_chld, old_cont;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    sigset_t sigdef;
    sigemptyset(&sigdef);
    for (size_t k = 0; k < NFORWARDED; k++) {
        sigaction(forwarded[k], NULL, &old[k]);
        /* Ignored when we started (nohup, a background job of sh): leave
         * it ignored, for COMMAND too. */
        if (old[k].sa_handler == SIG_IGN)
            continue;
        sigaction(forwarded[k], &sa, NULL);
        sigaddset(&sigdef, forwarded[k]);
    }
    /* Stops too (no SA_NOCLDSTOP): a COMMAND stopped by the terminal
     * stops redlock (follow_stop). */
    sigaction(SIGCHLD, &sa, &old_chld);
    sigaddset(&sigdef, SIGCHLD);
    sigaction(SIGCONT, &sa, &old_cont);
    sigaddset(&sigdef, SIGCONT);
    if (!sigpipe_was_ignored)
        sigaddset(&sigdef, SIGPIPE); /* redlock ignores it, COMMAND not */

    run_state rs;
    memset(&rs, 0, sizeof rs);
    /* In the terminal's foreground, COMMAND (in its own group) gets the
     * foreground, as a shell gives it to a job: ^C and ^Z then reach it
     * once, from the terminal, and it may read the terminal. */
    rs.tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    int take_tty = rs.tty >= 0 && tcgetpgrp(rs.tty) == getpgrp();
    int rc = start_command(&rs, a->command, &orig_mask, &sigdef, take_tty);
    int result;
    if (rc != 0) {
        err("run: cannot execute \"%s\": %s", a->command[0], strerror(rc));
        result = rc == ENOENT ? XS_NOT_FOUND
                 : (rc == EACCES || rc == ENOEXEC || rc == EPERM || rc == EISDIR)
                     ? XS_CANNOT_EXEC
                     : XS_OSERR;
        st = redlock_release(lock);
        note("released \"%s\": %s", key, redlock_strerror(st));
    } else {
        note("started COMMAND \"%s\" (pid %ld%s)", a->command[0], (long)rs.pid,
             take_tty ? ", in the terminal's foreground" : "");
        sigprocmask(SIG_SETMASK, &orig_mask, NULL);
        if (supervise(&rs, a, c, lock) == 0) {
            result = status_of_child(rs.status);
            if (WIFSIGNALED(rs.status))
                note("COMMAND (pid %ld) was killed by signal %d: status %d",
                     (long)rs.pid, WTERMSIG(rs.status), result);
            else
                note("COMMAND (pid %ld) exited with status %d", (long)rs.pid,
                     result);
        } else {
            result = XS_OSERR;
        }
        /* The group is gone with COMMAND: the terminal comes back to
         * redlock's, where the shell expects it. */
        if (rs.tty >= 0 && tcgetpgrp(rs.tty) == rs.pid)
            give_tty(rs.tty, getpgrp());
        if (rs.lost) {
            /* Token-checked: deletes nothing of another owner's. */
            redlock_release(lock);
            result = XS_LOST;
        } else if ((st = redlock_release(lock)) == REDLOCK_OK) {
            note("released \"%s\"", key);
        } else if (st == REDLOCK_NOT_HELD) {
            err("run: the lock \"%s\" was lost before COMMAND ended (%s)", key,
                redlock_last_error());
            note("lost \"%s\"", key);
            result = XS_LOST;
        } else {
            /* COMMAND ran under the lock; the key expires by itself. */
            char what[320];
            snprintf(what, sizeof what,
                     "run: cannot release \"%.200s\" (it expires within %" PRId64
                     "ms)", key, a->ttl_ms);
            err_status(what, st);
        }
    }
    if (rs.tty >= 0)
        close(rs.tty);

    for (size_t k = 0; k < NFORWARDED; k++)
        sigaction(forwarded[k], &old[k], NULL);
    sigaction(SIGCHLD, &old_chld, NULL);
    sigaction(SIGCONT, &old_cont, NULL);
    sigprocmask(SIG_SETMASK, &orig_mask, NULL);
    return result;
}

/* ---- acquire, extend, release, status --------------------------------------------- */

static int cmd_acquire(const args *a, redlock_client *c)
{
    const char *key = a->pos[0];
    redlock_lock *lock = NULL;
    redlock_status st = redlock_acquire(c, key, a->ttl_ms, a->wait_ms, &lock);
    if (st == REDLOCK_BUSY) {
        note("busy: \"%s\" is held elsewhere", key);
        return a->busy_code;
    }
    if (st != REDLOCK_OK) {
        char what[256];
        snprintf(what, sizeof what, "acquire: cannot acquire \"%.200s\"", key);
        err_status(what, st);
        return exit_code(st, a->busy_code);
    }
    printf("%s\n", redlock_token(lock));
    if (fflush(stdout) != 0 || ferror(stdout)) {
        /* Nobody will know the token: do not leave the lock behind. */
        err("acquire: cannot print the token (%s): releasing \"%s\"",
            strerror(errno), key);
        redlock_release(lock);
        return XS_IOERR;
    }
    note("acquired \"%s\" token %s ttl %" PRId64 "ms", key, redlock_token(lock),
         a->ttl_ms);
    redlock_detach(lock);
    return XS_OK;
}

static int adopt(redlock_client *c, const char *cmd, const char *key,
                 const char *token, redlock_lock **lock)
{
    redlock_status st = redlock_adopt(c, key, token, lock);
    if (st == REDLOCK_NOT_HELD) {
        err("%s: token %s does not hold \"%s\"", cmd, token, key);
        return XS_NOT_HELD;
    }
    if (st != REDLOCK_OK) {
        char what[256];
        snprintf(what, sizeof what, "%s: cannot check \"%.200s\"", cmd, key);
        err_status(what, st);
        return exit_code(st, XS_BUSY);
    }
    return -1;
}

static int cmd_extend(const args *a, redlock_client *c)
{
    const char *key = a->pos[0], *token = a->pos[1];
    redlock_lock *lock = NULL;
    int rc = adopt(c, "extend", key, token, &lock);
    if (rc >= 0)
        return rc;
    redlock_status st = redlock_extend(lock, a->ttl_ms);
    redlock_detach(lock);
    if (st == REDLOCK_NOT_HELD) {
        err("extend: token %s does not hold \"%s\"", token, key);
        return XS_NOT_HELD;
    }
    if (st != REDLOCK_OK) {
        char what[256];
        snprintf(what, sizeof what, "extend: cannot extend \"%.200s\"", key);
        err_status(what, st);
        return exit_code(st, XS_BUSY);
    }
    note("renewed \"%s\" ttl %" PRId64 "ms", key, a->ttl_ms);
    return XS_OK;
}

static int cmd_release(const args *a, redlock_client *c)
{
    const char *key = a->pos[0], *token = a->pos[1];
    redlock_lock *lock = NULL;
    int rc = adopt(c, "release", key, token, &lock);
    if (rc >= 0)
        return rc;
    redlock_status st = redlock_release(lock);
    if (st == REDLOCK_NOT_HELD) {
        err("release: token %s does not hold \"%s\"", token, key);
        return XS_NOT_HELD;
    }
    if (st != REDLOCK_OK) {
        char what[256];
        snprintf(what, sizeof what, "release: cannot release \"%.200s\"", key);
        err_status(what, st);
        return exit_code(st, XS_BUSY);
    }
    note("released \"%s\"", key);
    return XS_OK;
}

static int cmd_status(const args *a, redlock_client *c)
{
    const char *key = a->pos[0];
    size_t len = 256;
    char *buf = NULL;
    int64_t pttl = 0;
    redlock_status st;
    for (;;) {
        char *nb = realloc(buf, len);
        if (!nb) {
            free(buf);
            err("status: out of memory");
            return XS_OSERR;
        }
        buf = nb;
        st = redlock_inspect(c, key, buf, len, &pttl);
        if (st != REDLOCK_INVALID || len >= ((size_t)1 << 29))
            break;
        len *= 4; /* the holder's token is longer than the buffer */
    }
    int rc;
    if (st == REDLOCK_OK) {
        if (pttl < 0)
            printf("%s forever\n", buf);
        else
            printf("%s %" PRId64 "ms\n", buf, pttl);
        rc = fflush(stdout) == 0 ? XS_OK : XS_IOERR;
        note("\"%s\" is held by %s", key, buf);
    } else if (st == REDLOCK_NOT_HELD) {
        note("\"%s\" is free", key);
        rc = XS_NOT_HELD;
    } else {
        char what[256];
        snprintf(what, sizeof what, "status: cannot inspect \"%.200s\"", key);
        err_status(what, st);
        rc = exit_code(st, XS_BUSY);
    }
    free(buf);
    return rc;
}

/* ---- main ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    /* A closed stderr (`redlock -v run ... 2>&1 | head`) or stdout must
     * not kill redlock while COMMAND runs under a lock nobody renews:
     * write errors are handled where they matter. */
    struct sigaction ign, old_pipe;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    if (sigaction(SIGPIPE, &ign, &old_pipe) == 0)
        sigpipe_was_ignored = old_pipe.sa_handler == SIG_IGN;

    args a;
    int rc = parse_args(&a, argc, argv);
    if (rc >= 0)
        return rc;

    urls u;
    if ((rc = make_urls(&a, &u)) >= 0) {
        urls_free(&u);
        return rc;
    }

    int is_run = strcmp(a.cmd, "run") == 0;
    if (is_run && make_wake_pipe() != 0) {
        err("run: cannot make a pipe: %s", strerror(errno));
        close_wake_pipe();
        urls_free(&u);
        return XS_OSERR;
    }

    redlock_options o;
    redlock_options_init(&o);
    o.renew_floor_ms = RENEW_FLOOR_MS; /* one lock: ttl/3 is right */
    if (is_run)
        o.on_lost = on_lost;

    redlock_status st;
    size_t nnodes = u.n;
    redlock_client *c = redlock_connect((const char *const *)u.url, nnodes, &o, &st);
    urls_free(&u);
    if (!c) {
        err_status(nnodes > 1 ? "cannot connect to the Redis nodes"
                              : "cannot connect to Redis", st);
        close_wake_pipe();
        return exit_code(st, XS_BUSY);
    }
    note("connected to %zu Redis node%s", nnodes, nnodes > 1 ? "s" : "");

    if (is_run)
        rc = cmd_run(&a, c);
    else if (strcmp(a.cmd, "acquire") == 0)
        rc = cmd_acquire(&a, c);
    else if (strcmp(a.cmd, "extend") == 0)
        rc = cmd_extend(&a, c);
    else if (strcmp(a.cmd, "release") == 0)
        rc = cmd_release(&a, c);
    else
        rc = cmd_status(&a, c);

    redlock_client_free(c);
    close_wake_pipe();
    return rc;
}
