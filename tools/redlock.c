/*
 * redlock: flock(1) across machines, on libredlock.
 *
 *   redlock [-u URL]... [-v] run [-t TTL] [-w WAIT] [-E CODE] [-k GRACE] [--fence]
 *           [-n N] KEY -- COMMAND [ARG...]
 *   redlock [-u URL]... acquire [-t TTL] [-w WAIT] [--fence] [-n N] KEY
 *   redlock [-u URL]... extend [-t TTL] KEY TOKEN
 *   redlock [-u URL]... release KEY TOKEN
 *   redlock [-u URL]... status KEY
 *   redlock [-u URL]... list [-a] [--header | --no-header] [PATTERN]
 *   redlock --help | --version
 *
 * See redlock.1 for the whole story, and cli.h for which file does what.
 * This file: main, the command line and --help.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* In parts: C11 promises string literals of 4095 bytes only. */
static const char *const usage_text[] = {
    "Usage:\n"
    "  redlock [-u URL]... [-v] run [-t TTL] [-w WAIT] [-E CODE] [-k GRACE] [--fence]\n"
    "          [-n N] KEY -- COMMAND [ARG...]\n"
    "  redlock [-u URL]... [-v] acquire [-t TTL] [-w WAIT] [--fence] [-n N] KEY\n"
    "  redlock [-u URL]... [-v] extend [-t TTL] KEY TOKEN\n"
    "  redlock [-u URL]... [-v] release KEY TOKEN\n"
    "  redlock [-u URL]... [-v] status KEY\n"
    "  redlock [-u URL]... [-v] list [-a] [--header | --no-header] [PATTERN]\n"
    "  redlock --help | --version\n"
    "TLS options (--tls, --cacert FILE, ...) go where -u does.\n"
    "\n"
    "flock(1) across machines: a lock is a Redis key holding its owner's token,\n"
    "which says who took it: \"UUID;host=NAME;pid=PID;since=UNIX_MS\".\n"
    "\n"
    "Commands:\n"
    "  run      take the lock, run COMMAND, renew the lock every TTL/3, and release\n"
    "           it once COMMAND has exited and its process group (the job: what\n"
    "           COMMAND started and did not move out) has ended; exit with\n"
    "           COMMAND's status (128+N if signal N killed it).\n"
    "           SIGINT, SIGTERM, SIGHUP, SIGQUIT: forwarded to the job's group;\n"
    "           SIGUSR1, SIGUSR2: to COMMAND alone.  Lost lock: SIGTERM to the\n"
    "           group, exit 70.  COMMAND exits while processes of its group\n"
    "           remain: SIGTERM to them.  Each time, SIGKILL to the group after\n"
    "           GRACE if it has not ended.  If redlock dies, the kernel kills\n"
    "           COMMAND (SIGKILL), and only COMMAND.\n"
    "  acquire  take the lock, print its token (\"TOKEN FENCE\" with --fence,\n"
    "           \"TOKEN SLOTKEY\" with -n) and leave it held for TTL\n"
    "  extend   give the lock that TOKEN holds a fresh TTL\n"
    "  release  delete the lock if TOKEN still holds it\n"
    "  status   print the holder's token and the ttl left (\"TOKEN 29500ms\": this\n"
    "           first line is stable); on a terminal a second line says who took\n"
    "           it (host, pid, since), when its token recorded that\n"
    "  list     one line per lock held now whose key matches PATTERN (a glob, as\n"
    "           for SCAN MATCH; all if none), sorted by key:\n"
    "             TTL  HOST  PID  SINCE (ISO 8601 UTC)  KEY\n"
    "           \"-\" where the holder recorded nothing; KEY last (it may hold\n"
    "           spaces); a header line on a terminal only.  Without -a: the\n"
    "           locks taken by redlock or libredlock's holder_info\n"
    "\n",
    "Options:\n"
    "  -u, --url URL      a Redis node: redis://[[user][:password]@]host[:port][/db],\n"
    "                     rediss://... (TLS), unix://[[user][:password]@]/path[?db=N],\n"
    "                     or a master that sentinels name:\n"
    "                     redis+sentinel://[[user][:password]@]host[:port][,host...]\n"
    "                     /MASTER[/db] (rediss+sentinel:// over TLS); several -u make\n"
    "                     a Redlock quorum.  Default: $REDLOCK_URL (comma-separated),\n"
    "                     then " DEFAULT_URL "\n"
    "  -v, --verbose      log each step (acquired, renewed, released, lost) to stderr\n"
    "  -t, --ttl TTL      lock time to live [30s], at least 4ms; `run` renews it\n"
    "                     every TTL/3\n"
    "  -w, --wait WAIT    wait that long for a busy lock (\"forever\" too) [0]\n"
    "  -E, --conflict-exit-code CODE\n"
    "                     exit status when the lock is held elsewhere [75]\n"
    "      --fence        (run, acquire; a single node only) also take a fencing\n"
    "                     number, greater than that of every earlier holder of KEY\n"
    "                     (counted in the key KEY:fence, which must never be deleted)\n"
    "  -n, --max-holders N\n"
    "                     (run, acquire) a semaphore: at most N holders of KEY at a\n"
    "                     time, 1..1024 (every user of KEY must give the same N).\n"
    "                     Each holds one slot, the lock SLOTKEY = KEY:redlock:I;\n"
    "                     extend and release take SLOTKEY.  Not with --fence if N > 1\n"
    "  -k, --grace GRACE  (run) how long the job has to end after a forwarded\n"
    "                     SIGINT, SIGTERM, SIGHUP or SIGQUIT, the SIGTERM of a lost\n"
    "                     lock, or that of processes left after COMMAND's exit,\n"
    "                     before SIGKILL to its process group [10s]\n"
    "  -a, --all          (list) also keys whose value records no holder: any\n"
    "                     string key with a ttl (plain SET NX locks, and caches)\n"
    "      --header, --no-header\n"
    "                     (list) print the header line, or not, wherever stdout is\n"
    "  -h, --help         this text;  -V, --version  the version\n"
    "Durations: 250ms, 30s, 5m, 1h; a bare number is seconds.\n"
    "$REDISCLI_AUTH is the password for URLs that carry none (keeps it out of ps).\n"
    "\n",
    "TLS (rediss:// URLs; options as redis-cli's, each also from the environment,\n"
    "the option winning):\n"
    "      --tls          redis:// and redis+sentinel:// URLs use TLS too\n"
    "      --cacert FILE  CA certificates (PEM) the servers' must chain to\n"
    "                     [$REDLOCK_CACERT; neither this nor --cacertdir: the\n"
    "                     system's store, or $SSL_CERT_FILE / $SSL_CERT_DIR]\n"
    "      --cacertdir DIR  the same, a directory made with `openssl rehash`\n"
    "                     [$REDLOCK_CACERTDIR]\n"
    "      --cert FILE, --key FILE\n"
    "                     a client certificate and its unencrypted key, for servers\n"
    "                     with tls-auth-clients [$REDLOCK_CERT, $REDLOCK_CERT_KEY]\n"
    "      --sni NAME     the name to send and to check in the server's certificate\n"
    "                     [$REDLOCK_SNI; default: the URL's host]\n"
    "      --insecure     DANGEROUS: accept any certificate, so anyone on the path\n"
    "                     can pose as Redis and let two holders in; for tests only\n"
    "$REDLOCK_SENTINEL_AUTH: \"password\" or \"user:password\" for the sentinels\n"
    "themselves (a URL's userinfo is the master's).\n"
    "\n",
    "COMMAND's environment (run): REDLOCK_KEY and REDLOCK_TOKEN, and with --fence\n"
    "REDLOCK_FENCE, for a resource to refuse the writes of an earlier holder:\n"
    "  UPDATE ... SET fence = $REDLOCK_FENCE WHERE ... AND fence <= $REDLOCK_FENCE\n"
    "With -n: REDLOCK_KEY is SLOTKEY, the slot held, and REDLOCK_SLOT its number I\n"
    "(0..N-1).\n"
    "\n"
    "Exit status:\n"
    "    0  success; status: the key is held; list: also when nothing is held\n"
    "    1  release/extend: TOKEN does not hold KEY; status: the key is free\n"
    "   64  usage error (bad option, duration, TTL, N or URL; --fence with several\n"
    "       nodes, or with -n N > 1)\n"
    "   69  Redis unreachable, timed out, or too few nodes for a quorum\n"
    "   70  run: the lock was lost while the job ran (it was stopped)\n"
    "   71  system error (out of memory, cannot start COMMAND)\n"
    "   74  cannot write the output (acquire's token, list)\n"
    "   75  the lock is held elsewhere (-n: all N slots are) (or the -E CODE)\n"
    "   76  Redis answered with an error (e.g. KEY is not a lock; list: Redis < 6)\n"
    "   77  authentication refused, or TLS failed (certificate refused: unknown CA,\n"
    "       wrong name, expired; client certificate wanted or refused; TLS on one\n"
    "       side only)\n"
    "  126  run: COMMAND cannot be executed;  127  run: COMMAND not found\n"
    "  else run: COMMAND's own status\n",
    NULL};

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

/*
 * If argv[*i] is the option `shortopt`/`longopt` (forms: -x VAL, -xVAL,
 * --long VAL, --long=VAL), store its value in *val, advance *i past it and
 * return 1; return 0 if it is another argument, -1 (after a message) if
 * its value is missing.  shortopt may be '\0' (long only), longopt NULL;
 * value == 0: a flag.
 */
static int match_opt(char **argv, int argc, int *i, char shortopt,
                     const char *longopt, int value, const char **val)
{
    const char *a = argv[*i];
    const char *v = NULL;
    if (shortopt != '\0' && a[0] == '-' && a[1] == shortopt) {
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
            cli_usage_error("option %s needs a value", a);
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
static int global_opt(cli_args *a, char **argv, int argc, int *i, int *code)
{
    const char *v;
    int r;
    if ((r = match_opt(argv, argc, i, 'u', "url", 1, &v)) != 0) {
        if (r < 0)
            return OPT_ERROR;
        if (a->nurls >= REDLOCK_MAX_NODES) {
            cli_usage_error("too many -u (at most %d nodes)", REDLOCK_MAX_NODES);
            return OPT_ERROR;
        }
        if (*v == '\0') {
            cli_usage_error("-u needs a non-empty URL");
            return OPT_ERROR;
        }
        a->urls[a->nurls++] = v;
        return OPT_TAKEN;
    }
    /* TLS, with redis-cli's names; before or after the command, as -u. */
    const char *const tls_names[] = {"cacert", "cacertdir", "cert", "key", "sni"};
    const char **tls_values[] = {&a->cacert, &a->cacertdir, &a->cert, &a->key, &a->sni};
    for (size_t k = 0; k < sizeof tls_names / sizeof tls_names[0]; k++) {
        if ((r = match_opt(argv, argc, i, '\0', tls_names[k], 1, &v)) != 0) {
            if (r < 0)
                return OPT_ERROR;
            *tls_values[k] = v;
            return OPT_TAKEN;
        }
    }
    if (match_opt(argv, argc, i, '\0', "tls", 0, &v) > 0) {
        a->tls = 1;
        return OPT_TAKEN;
    }
    if (match_opt(argv, argc, i, '\0', "insecure", 0, &v) > 0) {
        a->tls_insecure = 1;
        return OPT_TAKEN;
    }
    if (match_opt(argv, argc, i, 'v', "verbose", 0, &v) > 0) {
        cli_verbose = 1;
        return OPT_TAKEN;
    }
    if (match_opt(argv, argc, i, 'h', "help", 0, &v) > 0) {
        for (size_t k = 0; usage_text[k]; k++)
            fputs(usage_text[k], stdout);
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
static int command_opt(cli_args *a, char **argv, int argc, int *i)
{
    const char *v;
    int r;
    int is_run = strcmp(a->cmd, "run") == 0;
    int is_list = strcmp(a->cmd, "list") == 0;
    int has_ttl = strcmp(a->cmd, "release") != 0 && strcmp(a->cmd, "status") != 0 &&
                  !is_list;
    int has_wait = is_run || strcmp(a->cmd, "acquire") == 0;

    if (has_ttl && (r = match_opt(argv, argc, i, 't', "ttl", 1, &v)) != 0) {
        if (r < 0)
            return OPT_ERROR;
        if (parse_duration(v, 0, &a->ttl_ms) != 0 || a->ttl_ms < 1) {
            cli_usage_error("%s: bad TTL \"%s\" (e.g. 250ms, 30s, 5m, 1h)", a->cmd, v);
            return OPT_ERROR;
        }
        /* Refused here, before any contact with Redis: the library would
         * take such a lock and find it had no validity at all, which looks
         * like a slow Redis (69) rather than the bad TTL it is. */
        double drift;
        int64_t min = min_ttl_ms(&drift);
        if (a->ttl_ms < min) {
            cli_usage_error("%s: TTL \"%s\" is too short: the clock-drift allowance "
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
            cli_usage_error("%s: bad WAIT \"%s\" (e.g. 0, 500ms, 10s, forever)", a->cmd, v);
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
            cli_usage_error("run: bad -E CODE \"%s\" (0..255)", v);
            return OPT_ERROR;
        }
        a->busy_code = (int)code;
        return OPT_TAKEN;
    }
    /* Long only: flock(1)'s -F is --no-fork. */
    if (has_wait && match_opt(argv, argc, i, '\0', "fence", 0, &v) > 0) {
        a->fence = 1;
        return OPT_TAKEN;
    }
    /* -n as consul lock's: flock's -n (--nonblock) is what redlock does
     * without -w anyway. */
    if (has_wait && (r = match_opt(argv, argc, i, 'n', "max-holders", 1, &v)) != 0) {
        if (r < 0)
            return OPT_ERROR;
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < 1 || n > REDLOCK_SEMAPHORE_MAX) {
            cli_usage_error("%s: bad -n N \"%s\" (at most N holders at a time: 1..%d)",
                            a->cmd, v, REDLOCK_SEMAPHORE_MAX);
            return OPT_ERROR;
        }
        a->holders = (int)n;
        return OPT_TAKEN;
    }
    if (is_list && match_opt(argv, argc, i, 'a', "all", 0, &v) > 0) {
        a->list_all = 1;
        return OPT_TAKEN;
    }
    if (is_list && match_opt(argv, argc, i, '\0', "header", 0, &v) > 0) {
        a->header = 1;
        return OPT_TAKEN;
    }
    if (is_list && match_opt(argv, argc, i, '\0', "no-header", 0, &v) > 0) {
        a->header = 0;
        return OPT_TAKEN;
    }
    if (is_run && (r = match_opt(argv, argc, i, 'k', "grace", 1, &v)) != 0) {
        if (r < 0)
            return OPT_ERROR;
        if (parse_duration(v, 0, &a->grace_ms) != 0) {
            cli_usage_error("run: bad GRACE \"%s\" (e.g. 0, 500ms, 10s)", v);
            return OPT_ERROR;
        }
        return OPT_TAKEN;
    }
    return OPT_NONE;
}

/* Returns -1 to go on, or the exit status. */
static int parse_args(cli_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->ttl_ms = DEFAULT_TTL_MS;
    a->wait_ms = 0;
    a->grace_ms = DEFAULT_GRACE_MS;
    a->busy_code = XS_BUSY;
    a->header = -1;

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
            return cli_usage_error("unknown option %s", argv[i]);
    }
    if (i >= argc)
        return cli_usage_error("no command given (run, acquire, extend, release, status or list)");
    a->cmd = argv[i++];
    int want, is_run = 0, is_list = 0;
    if (strcmp(a->cmd, "run") == 0) {
        want = 1;
        is_run = 1;
    } else if (strcmp(a->cmd, "list") == 0) {
        want = 1; /* PATTERN, optional */
        is_list = 1;
    } else if (strcmp(a->cmd, "acquire") == 0 || strcmp(a->cmd, "status") == 0) {
        want = 1;
    } else if (strcmp(a->cmd, "extend") == 0 || strcmp(a->cmd, "release") == 0) {
        want = 2;
    } else {
        return cli_usage_error("unknown command \"%s\" (run, acquire, extend, release, "
                               "status or list)", a->cmd);
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
                return cli_usage_error("run: \"--\" must follow KEY");
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
            return cli_usage_error("%s: unknown option %s", a->cmd, s);
        }
        if (a->npos >= want) {
            if (is_run)
                return cli_usage_error("run: expected \"--\" after KEY, got \"%s\" "
                                       "(redlock run KEY -- COMMAND [ARG...])", s);
            return cli_usage_error("%s: unexpected argument \"%s\"", a->cmd, s);
        }
        a->pos[a->npos++] = s;
        i++;
    }
    if (is_list)
        return -1; /* PATTERN may be missing or empty: every lock */
    if (a->npos < 1)
        return cli_usage_error("%s: missing KEY", a->cmd);
    if (a->npos < want)
        return cli_usage_error("%s: missing TOKEN", a->cmd);
    if (*a->pos[0] == '\0')
        return cli_usage_error("%s: KEY is empty", a->cmd);
    if (want == 2 && *a->pos[1] == '\0')
        return cli_usage_error("%s: TOKEN is empty", a->cmd);
    if (is_run && a->command == NULL)
        return cli_usage_error("run: missing \"-- COMMAND\" after KEY");
    if (is_run && a->command[0] == NULL)
        return cli_usage_error("run: missing COMMAND after \"--\"");
    /* Fencing numbers one holder after another; permits are held at once. */
    if (a->fence && a->holders > 1)
        return cli_usage_error("%s: --fence and -n %d do not go together: fencing numbers "
                               "the holders of a lock one after another, and a semaphore's "
                               "%d holders hold at once", a->cmd, a->holders, a->holders);
    return -1;
}

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
        cli_sigpipe_was_ignored = old_pipe.sa_handler == SIG_IGN;

    cli_args a;
    int rc = parse_args(&a, argc, argv);
    if (rc >= 0)
        return rc;

    cli_urls u;
    if ((rc = cli_make_urls(&a, &u)) >= 0) {
        cli_urls_free(&u);
        return rc;
    }

    /* The library refuses it too (REDLOCK_INVALID, 64), but says less. */
    if (a.fence && u.n > 1) {
        rc = cli_usage_error("%s: --fence needs a single Redis node, not %zu: each "
                             "node would count fencing numbers of its own, which "
                             "fence nothing", a.cmd, u.n);
        cli_urls_free(&u);
        return rc;
    }

    int is_run = strcmp(a.cmd, "run") == 0;
    if (is_run && cli_run_init() != 0) {
        cli_err("run: cannot make a pipe: %s", strerror(errno));
        cli_run_cleanup();
        cli_urls_free(&u);
        return XS_OSERR;
    }

    redlock_options o;
    redlock_options_init(&o);
    o.renew_floor_ms = RENEW_FLOOR_MS; /* one lock: ttl/3 is right */
    o.fencing = a.fence;
    /* Tokens say who took the lock, for `redlock list` and `status`. */
    o.holder_info = 1;
    if (is_run)
        o.on_lost = cli_on_lost;

    cli_tls t;
    if ((rc = cli_tls_options(&a, &o, &t)) >= 0) {
        cli_tls_free(&t);
        cli_run_cleanup();
        cli_urls_free(&u);
        return rc;
    }

    redlock_status st;
    size_t nnodes = u.n;
    redlock_client *c = redlock_connect((const char *const *)u.url, nnodes, &o, &st);
    cli_urls_free(&u);
    cli_tls_free(&t);
    if (!c) {
        cli_err_status(nnodes > 1 ? "cannot connect to the Redis nodes"
                                  : "cannot connect to Redis", st);
        cli_run_cleanup();
        return cli_exit_code(st, XS_BUSY);
    }
    cli_note("connected to %zu Redis node%s", nnodes, nnodes > 1 ? "s" : "");

    if (is_run)
        rc = cli_run(&a, c);
    else if (strcmp(a.cmd, "acquire") == 0)
        rc = cli_acquire(&a, c);
    else if (strcmp(a.cmd, "extend") == 0)
        rc = cli_extend(&a, c);
    else if (strcmp(a.cmd, "release") == 0)
        rc = cli_release(&a, c);
    else if (strcmp(a.cmd, "list") == 0)
        rc = cli_list(&a, c);
    else
        rc = cli_status(&a, c);

    redlock_client_free(c);
    cli_run_cleanup();
    return rc;
}
