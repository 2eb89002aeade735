/* Integration: the `redlock` command-line tool (tools/redlock.c), driven as
 * a program against real redis-server processes: help and usage errors,
 * exit statuses, keepalive, status/acquire/extend/release, forwarded
 * signals (once, from a group signal, timeout(1) or a terminal's ^C),
 * COMMAND killed with redlock, tiny ttls, a lost lock, $REDISCLI_AUTH and
 * passwords, unreachable nodes, and a Redlock quorum of three; COMMAND's
 * environment (REDLOCK_KEY, REDLOCK_TOKEN, REDLOCK_FENCE) and --fence; the
 * whole job (COMMAND's process group: background children, grandchildren)
 * signalled and ended before the lock is let go; TLS options and their
 * environment variables, and `run` over TLS (with $REDLOCK_TEST_CERTS).
 * In TLS mode ($REDLOCK_TEST_TLS, the test_cli_tls variant) every server
 * the suite starts speaks TLS only.
 *
 * Every redlock is started in a process group of its own, so that a failed
 * test can kill whatever it left running (COMMAND, in a group of its own,
 * dies with redlock; the background children the job tests start are
 * recorded as strays and killed too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "redis_server.h"
#include "redlock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#ifndef REDLOCK_CLI_PATH
#error "REDLOCK_CLI_PATH (the redlock program) must be defined"
#endif

extern char **environ;

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})
#define PASSWORD "pa@ss:w/rd%9"

/* ---- servers ----------------------------------------------------------------- */

typedef struct group {
    rt_server main; /* also the first node of the quorum */
    rt_server q[2]; /* the other two */
    rt_server pw;   /* --requirepass PASSWORD */
    char dir[64];   /* gate files */
    char env_url[128];
} group;

static group *G;

static int group_setup(void **state)
{
    (void)state;
    G = calloc(1, sizeof *G);
    if (!G)
        return -1;
    snprintf(G->dir, sizeof G->dir, "/tmp/redlock-cli-XXXXXX");
    if (!mkdtemp(G->dir)) {
        free(G);
        G = NULL;
        return -1;
    }
    if (rt_server_start(&G->main, NULL) != 0 || rt_server_start(&G->q[0], NULL) != 0 ||
        rt_server_start(&G->q[1], NULL) != 0 ||
        rt_server_start(&G->pw, ARGV("--requirepass", PASSWORD)) != 0) {
        rt_server_stop(&G->main);
        rt_server_stop(&G->q[0]);
        rt_server_stop(&G->q[1]);
        rt_server_stop(&G->pw);
        rmdir(G->dir);
        free(G);
        G = NULL;
        return -1;
    }
    snprintf(G->env_url, sizeof G->env_url, "REDLOCK_URL=%s", G->main.url);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (G) {
        rt_server_stop(&G->main);
        rt_server_stop(&G->q[0]);
        rt_server_stop(&G->q[1]);
        rt_server_stop(&G->pw);
        DIR *d = opendir(G->dir);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.')
                    continue;
                char path[512];
                snprintf(path, sizeof path, "%s/%s", G->dir, e->d_name);
                unlink(path);
            }
            closedir(d);
        }
        rmdir(G->dir);
        free(G);
        G = NULL;
    }
    return 0;
}

/* ---- running the program -------------------------------------------------------- */

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

#define OUT_MAX 16384

typedef struct proc {
    pid_t pid; /* also its process group */
    int fd[2]; /* stdout, stderr read ends; -1 at EOF */
    char out[OUT_MAX], err[OUT_MAX];
    size_t nout, nerr;
    int done;
    int code;  /* exit status, 1000 + signal if redlock itself was killed */
    int64_t started_ms, ended_ms;
} proc;

/* Started and not yet reaped: killed (with their group) by the teardown. */
#define MAX_LIVE 16
static pid_t live[MAX_LIVE];

static void live_add(pid_t pid)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i] == 0) {
            live[i] = pid;
            return;
        }
}

static void live_remove(pid_t pid)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i] == pid)
            live[i] = 0;
}

/* Processes a COMMAND started (their pids from its files): killed by the
 * teardown if a failed test left them running. */
#define MAX_STRAY 16
static pid_t strays[MAX_STRAY];

static void stray_add(pid_t pid)
{
    for (int i = 0; i < MAX_STRAY; i++)
        if (strays[i] == 0) {
            strays[i] = pid;
            return;
        }
}

/* Set by a test: the program gets no $SSL_CERT_FILE / $SSL_CERT_DIR either
 * (the *_tls variants set them), so the system's store lacks the test CA. */
static int strip_system_ca;

static int reap_all(void **state)
{
    (void)state;
    strip_system_ca = 0;
    for (int i = 0; i < MAX_STRAY; i++)
        if (strays[i] > 0) {
            kill(strays[i], SIGKILL);
            strays[i] = 0;
        }
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i] > 0) {
            kill(-live[i], SIGKILL);
            kill(live[i], SIGKILL);
            while (waitpid(live[i], NULL, 0) < 0 && errno == EINTR) {
            }
            live[i] = 0;
        }
    return 0;
}

/* Our descriptors that the program would inherit (not close-on-exec, above
 * 2): closed in the child, so that COMMAND's descriptors are redlock's. */
static void close_inherited(posix_spawn_file_actions_t *fa)
{
    int fds[256], n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    int dfd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd <= 2 || fd == dfd)
            continue;
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0 && !(fl & FD_CLOEXEC))
            fds[n++] = fd;
    }
    closedir(d);
    for (int i = 0; i < n; i++)
        posix_spawn_file_actions_addclose(fa, fds[i]);
}

/*
 * Start redlock with argv (without the program name) and an environment
 * that is ours minus what redlock reads (stripped_env()), plus env (NULL:
 * just REDLOCK_URL=<main server>).
 */
static void prog_start(proc *p, const char *const *env, const char *const *args);

static void cli_start(proc *p, const char *const *env, const char *const *argv)
{
    const char *args[64];
    int na = 0;
    args[na++] = REDLOCK_CLI_PATH;
    for (int i = 0; argv[i] && na < 63; i++)
        args[na++] = argv[i];
    args[na] = NULL;
    prog_start(p, env, args);
}

/* The pty slave that prog_start gives as controlling terminal and stdin to
 * a new session (NULL: /dev/null, in a new process group). */
static const char *start_tty;

/* Ours that the program must not inherit: what redlock reads, which each
 * test gives explicitly. */
static int stripped_env(const char *e)
{
    static const char *const names[] = {
        "REDLOCK_URL=", "REDISCLI_AUTH=", "REDLOCK_CACERT=", "REDLOCK_CACERTDIR=",
        "REDLOCK_CERT=", "REDLOCK_CERT_KEY=", "REDLOCK_SNI=", "REDLOCK_SENTINEL_AUTH="};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strncmp(e, names[i], strlen(names[i])) == 0)
            return 1;
    return strip_system_ca &&
           (strncmp(e, "SSL_CERT_FILE=", 14) == 0 || strncmp(e, "SSL_CERT_DIR=", 13) == 0);
}

/* The same for any program (args[0], searched in PATH), e.g. one that
 * starts redlock. */
static void prog_start(proc *p, const char *const *env, const char *const *args)
{
    memset(p, 0, sizeof *p);
    p->fd[0] = p->fd[1] = -1;
    const char *const default_env[] = {G->env_url, NULL};
    if (!env)
        env = default_env;

    const char *envp[512];
    int ne = 0;
    for (char **e = environ; *e && ne < 480; e++)
        if (!stripped_env(*e))
            envp[ne++] = *e;
    for (int i = 0; env[i] && ne < 510; i++)
        envp[ne++] = env[i];
    envp[ne] = NULL;

    int out[2], err[2];
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(err, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    /* Opened after setsid() (glibc's order), a terminal becomes the new
     * session's controlling terminal. */
    posix_spawn_file_actions_addopen(&fa, 0, start_tty ? start_tty : "/dev/null",
                                     start_tty ? O_RDWR : O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    close_inherited(&fa);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, def;
    sigemptyset(&none);
    sigfillset(&def); /* whatever our parent ignored */
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                        (start_tty ? POSIX_SPAWN_SETSID
                                                   : POSIX_SPAWN_SETPGROUP));
    int rc = posix_spawnp(&p->pid, args[0], &fa, &attr, (char *const *)args,
                          (char *const *)envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(out[1]);
    close(err[1]);
    if (rc != 0) {
        close(out[0]);
        close(err[0]);
        fail_msg("cannot start %s: %s", args[0], strerror(rc));
    }
    live_add(p->pid);
    p->fd[0] = out[0];
    p->fd[1] = err[0];
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    p->started_ms = rt_now_ms();
}

/* Read what is there, waiting at most ms for something to happen. */
static void pump(proc *p, int ms)
{
    struct pollfd pfd[2];
    int n = 0;
    for (int k = 0; k < 2; k++)
        if (p->fd[k] >= 0)
            pfd[n++] = (struct pollfd){.fd = p->fd[k], .events = POLLIN};
    if (n == 0) {
        if (ms > 0)
            sleep_ms(ms < 20 ? ms : 20);
        return;
    }
    if (poll(pfd, (nfds_t)n, ms) <= 0)
        return;
    for (int k = 0; k < 2; k++) {
        if (p->fd[k] < 0)
            continue;
        char *buf = k == 0 ? p->out : p->err;
        size_t *len = k == 0 ? &p->nout : &p->nerr;
        for (;;) {
            char tmp[4096];
            ssize_t r = read(p->fd[k], tmp, sizeof tmp);
            if (r > 0) {
                size_t room = OUT_MAX - 1 - *len;
                size_t c = (size_t)r < room ? (size_t)r : room;
                memcpy(buf + *len, tmp, c);
                *len += c;
                buf[*len] = '\0';
                continue;
            }
            if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(p->fd[k]);
                p->fd[k] = -1;
            }
            break;
        }
    }
}

static void try_reap(proc *p)
{
    if (p->done)
        return;
    int st;
    if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
        p->done = 1;
        p->ended_ms = rt_now_ms();
        p->code = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
        live_remove(p->pid);
    }
}

/* Wait (at most timeout_ms) for the program to end and its output to be
 * complete; returns its exit status.  Fails the test on a timeout. */
static int cli_finish(proc *p, int timeout_ms)
{
    int64_t deadline = rt_now_ms() + timeout_ms;
    while (!p->done || p->fd[0] >= 0 || p->fd[1] >= 0) {
        try_reap(p);
        int64_t left = deadline - rt_now_ms();
        if (left <= 0)
            break;
        pump(p, left < 50 ? (int)left : 50);
    }
    try_reap(p);
    if (!p->done || p->fd[0] >= 0 || p->fd[1] >= 0) {
        print_error("redlock (pid %ld) still running after %d ms\nstdout: %s\nstderr: %s\n",
                    (long)p->pid, timeout_ms, p->out, p->err);
        for (int k = 0; k < 2; k++)
            if (p->fd[k] >= 0) {
                close(p->fd[k]);
                p->fd[k] = -1;
            }
        reap_all(NULL);
        fail();
    }
    return p->code;
}

static int cli_env(proc *p, const char *const *env, const char *const *argv, int timeout_ms)
{
    cli_start(p, env, argv);
    return cli_finish(p, timeout_ms);
}

static int cli(proc *p, const char *const *argv)
{
    return cli_env(p, NULL, argv, 15000);
}

/* Wait until stdout contains needle; fails the test after timeout_ms. */
static void wait_output(proc *p, const char *needle, int timeout_ms)
{
    int64_t deadline = rt_now_ms() + timeout_ms;
    while (strstr(p->out, needle) == NULL) {
        try_reap(p);
        if (rt_now_ms() >= deadline || (p->done && p->fd[0] < 0)) {
            print_error("no \"%s\" from redlock within %d ms (done %d, status %d)\n"
                        "stdout: %s\nstderr: %s\n",
                        needle, timeout_ms, p->done, p->code, p->out, p->err);
            fail();
        }
        pump(p, 50);
    }
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *s = hay; (s = strstr(s, needle)) != NULL; s += strlen(needle))
        n++;
    return n;
}

/* Exactly one line on stderr, starting with "redlock: ". */
static void one_error_line(const proc *p)
{
    if (count(p->err, "\n") != 1 || strncmp(p->err, "redlock: ", 9) != 0)
        print_error("expected one \"redlock: \" line on stderr, got:\n%s\n", p->err);
    assert_int_equal(count(p->err, "\n"), 1);
    assert_int_equal(strncmp(p->err, "redlock: ", 9), 0);
}

/* Exactly one line on stderr from redlock (COMMAND may say more). */
static void one_redlock_line(const proc *p)
{
    int n = 0;
    for (const char *line = p->err; line && *line;) {
        n += strncmp(line, "redlock: ", 9) == 0;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    if (n != 1)
        print_error("expected one \"redlock: \" line on stderr, got:\n%s\n", p->err);
    assert_int_equal(n, 1);
}

static void expect_code(const proc *p, int got, int want)
{
    if (got != want)
        print_error("exit status %d, expected %d\nstdout: %s\nstderr: %s\n", got, want,
                    p->out, p->err);
    assert_int_equal(got, want);
}

/* A shell script that says "started", waits for the gate file `name` to
 * exist, then exits with `code`. */
static void gate_script(char *buf, size_t len, const char *name, int code)
{
    snprintf(buf, len,
             "echo started; while [ ! -e '%s/%s' ]; do sleep 0.05; done; exit %d",
             G->dir, name, code);
}

static void open_gate(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", G->dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
}

static void assert_key(rt_server *s, const char *key, const char *want)
{
    char *v = rt_get(s, key);
    int ok = want ? (v && strcmp(v, want) == 0) : v == NULL;
    if (!ok)
        print_error("%s %s: \"%s\", expected \"%s\"\n", s->url, key, v ? v : "(nil)",
                    want ? want : "(nil)");
    free(v);
    assert_true(ok);
}

/* The token printed by `acquire` (stdout without its newline). */
static void token_of(const proc *p, char *tok, size_t len)
{
    size_t n = strcspn(p->out, "\n");
    if (n >= len)
        n = len - 1;
    memcpy(tok, p->out, n);
    tok[n] = '\0';
}

/* ---- help and usage ------------------------------------------------------------ */

static void help_and_version(void **state)
{
    (void)state;
    static proc p;
    expect_code(&p, cli(&p, ARGV("--help")), 0);
    const char *must[] = {"run", "acquire", "extend", "release", "status", "-E", "-k",
                          "REDLOCK_URL", "REDISCLI_AUTH", " 64 ", " 69 ", " 70 ",
                          " 75 ", " 77 ", "250ms", "--fence", "REDLOCK_KEY",
                          "REDLOCK_TOKEN", "REDLOCK_FENCE", "process group", " list ",
                          "--all", "--header", "--no-header", "PATTERN", "-n, --max-holders",
                          "SLOTKEY", "REDLOCK_SLOT", "1..1024", " 74 ", "TOKEN 29500ms",
                          "ISO 8601 UTC"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++) {
        if (!strstr(p.out, must[i]))
            print_error("--help does not mention \"%s\"\n", must[i]);
        assert_non_null(strstr(p.out, must[i]));
    }
    assert_int_equal(p.nerr, 0);

    expect_code(&p, cli(&p, ARGV("-h")), 0);
    assert_non_null(strstr(p.out, "Usage"));
    expect_code(&p, cli(&p, ARGV("--version")), 0);
    assert_non_null(strstr(p.out, REDLOCK_VERSION_STRING));
    assert_int_equal(p.nerr, 0);
}

static void usage_errors(void **state)
{
    (void)state;
    static proc p;
    const char *const *cases[] = {
        ARGV("--bogus"),        /* no command */
        ARGV("frobnicate", "k"),
        ARGV("--bogus", "status", "k"),
        ARGV("-u"),
        ARGV("run", "k"),
        ARGV("run", "k", "true"),
        ARGV("run", "k", "--"),
        ARGV("run", "--", "true"),
        ARGV("run", "-t", "5x", "k", "--", "true"),
        ARGV("run", "-t", "0", "k", "--", "true"),
        ARGV("run", "-t", "", "k", "--", "true"),
        ARGV("run", "-t", "99999999999h", "k", "--", "true"),
        ARGV("run", "-w", "-1", "k", "--", "true"),
        ARGV("run", "-E", "256", "k", "--", "true"),
        ARGV("run", "-E", "x", "k", "--", "true"),
        ARGV("run", "-k", "soon", "k", "--", "true"),
        ARGV("run", "-x", "k", "--", "true"),
        ARGV("run", "", "--", "true"),
        ARGV("acquire"),
        ARGV("acquire", "k", "extra"),
        ARGV("acquire", "-E", "3", "k"),
        ARGV("status"),
        ARGV("status", "-t", "5s", "k"),
        ARGV("extend", "k"),
        ARGV("release", "k"),
        ARGV("release", "k", "t", "u"),
        ARGV("-u", "http://127.0.0.1:1", "status", "k"),
        ARGV("-u", "redis://127.0.0.1:notaport", "status", "k"),
        ARGV("-u", "redis://127.0.0.1:99999", "status", "k"),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int code = cli_env(&p, NULL, cases[i], 10000);
        print_message("redlock %s%s%s ... -> %d: %s", cases[i][0] ? cases[i][0] : "",
                      cases[i][0] && cases[i][1] ? " " : "",
                      cases[i][0] && cases[i][1] ? cases[i][1] : "", code, p.err);
        expect_code(&p, code, 64);
        one_error_line(&p);
        assert_int_equal(p.nout, 0);
        assert_true(p.ended_ms - p.started_ms < 5000);
    }
    /* No arguments at all */
    expect_code(&p, cli_env(&p, NULL, (const char *const[]){NULL}, 10000), 64);
    one_error_line(&p);
    /* $REDLOCK_URL with an empty item */
    char bad_env[200];
    snprintf(bad_env, sizeof bad_env, "REDLOCK_URL=%s,,%s", G->main.url, G->main.url);
    expect_code(&p, cli_env(&p, ARGV(bad_env), ARGV("status", "k"), 10000), 64);
    one_error_line(&p);
    /* $REDLOCK_URL keeps a Cluster URL's seed list whole: the library's
     * message (no seed answers: 69) names every seed */
    expect_code(&p,
                cli_env(&p, ARGV("REDLOCK_URL=redis+cluster://127.0.0.1:1,127.0.0.1:2,[::1]:3"),
                        ARGV("status", "k"), 10000),
                69);
    one_error_line(&p);
    assert_non_null(strstr(p.err, "cluster(127.0.0.1:1,127.0.0.1:2,[::1]:3)"));
    expect_code(&p,
                cli_env(&p,
                        ARGV("REDLOCK_URL=redis://127.0.0.1:1,rediss+cluster://h:2,h:3",
                             "REDISCLI_AUTH=" PASSWORD),
                        ARGV("status", "k"), 10000),
                69);
    one_error_line(&p);
    assert_non_null(strstr(p.err, "cluster(h:2,h:3)"));
}

/* ---- exit statuses ----------------------------------------------------------- */

static void busy_exits_75_and_status_passes_through(void **state)
{
    (void)state;
    static proc first, p;
    char script[512];
    gate_script(script, sizeof script, "busy", 7);
    cli_start(&first, NULL, ARGV("run", "cli:busy", "--", "sh", "-c", script));
    wait_output(&first, "started", 10000);

    int64_t t0 = rt_now_ms();
    expect_code(&p, cli(&p, ARGV("run", "cli:busy", "--", "true")), 75);
    assert_int_equal(p.nerr, 0); /* busy is no error: silent, like flock -n */
    assert_true(rt_now_ms() - t0 < 5000);
    expect_code(&p, cli(&p, ARGV("run", "-E", "3", "cli:busy", "--", "true")), 3);
    expect_code(&p, cli(&p, ARGV("run", "--conflict-exit-code=0", "cli:busy", "--", "true")),
                0);
    expect_code(&p, cli(&p, ARGV("acquire", "cli:busy")), 75);
    assert_int_equal(p.nout, 0);
    /* -v says why */
    expect_code(&p, cli(&p, ARGV("-v", "run", "cli:busy", "--", "true")), 75);
    assert_non_null(strstr(p.err, "busy"));
    /* a short wait runs out */
    t0 = rt_now_ms();
    expect_code(&p, cli(&p, ARGV("run", "-w", "300ms", "cli:busy", "--", "true")), 75);
    assert_true(rt_now_ms() - t0 >= 250);

    open_gate("busy");
    expect_code(&first, cli_finish(&first, 15000), 7);
    assert_int_equal(first.nerr, 0); /* without -v, run prints nothing but errors */
    assert_key(&G->main, "cli:busy", NULL);
}

static void command_statuses(void **state)
{
    (void)state;
    static proc p;
    expect_code(&p, cli(&p, ARGV("run", "cli:st", "--", "sh", "-c", "exit 0")), 0);
    expect_code(&p, cli(&p, ARGV("run", "cli:st", "--", "sh", "-c", "exit 42")), 42);
    expect_code(&p, cli(&p, ARGV("run", "cli:st", "--", "sh", "-c", "kill -9 $$")), 137);
    expect_code(&p, cli(&p, ARGV("run", "cli:st", "--", "sh", "-c", "echo out; echo err >&2")),
                0);
    assert_string_equal(p.out, "out\n");
    assert_string_equal(p.err, "err\n");
    expect_code(&p, cli(&p, ARGV("run", "cli:st", "--", "/nonexistent/command")), 127);
    one_error_line(&p);
    assert_non_null(strstr(p.err, "/nonexistent/command"));
    expect_code(&p, cli(&p, ARGV("run", "cli:st", "--", "/")), 126);
    one_error_line(&p);
    expect_code(&p, cli(&p, ARGV("run", "-w", "forever", "cli:st", "--", "true")), 0);
    assert_key(&G->main, "cli:st", NULL);

    /* a key that is no lock: Redis says no (76), one line naming the key */
    redisReply *r = rt_cmd(&G->main, "RPUSH cli:list x");
    assert_non_null(r);
    freeReplyObject(r);
    expect_code(&p, cli(&p, ARGV("run", "cli:list", "--", "true")), 76);
    one_error_line(&p);
    assert_non_null(strstr(p.err, "cli:list"));
}

/* COMMAND inherits no lock socket and no pipe of redlock's. */
static void command_gets_no_lock_sockets(void **state)
{
    (void)state;
    static proc p;
    expect_code(&p, cli(&p, ARGV("run", "cli:fds", "--", "ls", "/proc/self/fd")), 0);
    /* 0 1 2, and 3: the directory ls reads */
    if (strcmp(p.out, "0\n1\n2\n3\n") != 0)
        print_error("COMMAND's descriptors:\n%s", p.out);
    assert_string_equal(p.out, "0\n1\n2\n3\n");

    /* nor redlock's signal mask or dispositions (SIGPIPE included); the
     * real-time signals above 31 are glibc's own business */
    expect_code(&p, cli(&p, ARGV("run", "cli:fds", "--", "grep", "-E", "^Sig(Blk|Ign)",
                                 "/proc/self/status")),
                0);
    unsigned long long blk = ~0ULL, ign = ~0ULL;
    const char *b = strstr(p.out, "SigBlk:"), *g = strstr(p.out, "SigIgn:");
    if (b)
        blk = strtoull(b + 7, NULL, 16);
    if (g)
        ign = strtoull(g + 7, NULL, 16);
    if ((blk | ign) & 0x7fffffffULL)
        print_error("COMMAND's signals:\n%s", p.out);
    assert_int_equal(blk & 0x7fffffffULL, 0);
    assert_int_equal(ign & 0x7fffffffULL, 0);
}

/* A reader that goes away (`redlock -v run ... 2>&1 | head -1`) must not
 * kill redlock and leave COMMAND running under a lock nobody renews. */
static void closed_stderr_does_not_kill_redlock(void **state)
{
    (void)state;
    static proc p;
    cli_start(&p, NULL,
              ARGV("-v", "run", "-t", "600ms", "cli:pipe", "--", "sh", "-c",
                   "echo started; sleep 1.5; exit 3"));
    wait_output(&p, "started", 10000);
    close(p.fd[1]); /* stderr: the next "renewed" line meets EPIPE */
    p.fd[1] = -1;
    expect_code(&p, cli_finish(&p, 15000), 3);
    assert_key(&G->main, "cli:pipe", NULL);
}

static void run_waits_for_a_busy_lock(void **state)
{
    (void)state;
    static proc p;
    expect_code(&p, cli(&p, ARGV("acquire", "-t", "1s", "cli:wait")), 0);
    int64_t t0 = rt_now_ms();
    expect_code(&p, cli(&p, ARGV("run", "-w", "10s", "cli:wait", "--", "true")), 0);
    int64_t took = rt_now_ms() - t0;
    print_message("waited %lld ms for a 1 s lock\n", (long long)took);
    assert_true(took >= 500 && took < 8000);
}

/* ---- keepalive ------------------------------------------------------------------ */

static void keepalive_holds_a_2s_ttl_for_5s(void **state)
{
    (void)state;
    static proc p;
    cli_start(&p, NULL,
              ARGV("-v", "run", "-t", "2s", "cli:keep", "--", "sh", "-c",
                   "echo started; sleep 5"));
    wait_output(&p, "started", 10000);
    int64_t t0 = rt_now_ms();
    char *tok = rt_get(&G->main, "cli:keep");
    assert_non_null(tok);
    long long pttl = rt_pttl(&G->main, "cli:keep");
    assert_true(pttl > 0 && pttl <= 2000);
    /* Past two ttls, still ours */
    for (int at = 3000; at <= 4500; at += 1500) {
        while (rt_now_ms() - t0 < at)
            pump(&p, 50);
        assert_key(&G->main, "cli:keep", tok);
        pttl = rt_pttl(&G->main, "cli:keep");
        print_message("at %d ms: pttl %lld\n", at, pttl);
        assert_true(pttl > 0 && pttl <= 2000);
    }
    expect_code(&p, cli_finish(&p, 15000), 0);
    assert_key(&G->main, "cli:keep", NULL);
    /* -v: one timestamped line per step */
    int renewed = count(p.err, "renewed");
    print_message("%d renewals logged over 5 s\n", renewed);
    assert_true(renewed >= 3);
    assert_non_null(strstr(p.err, "acquired"));
    assert_non_null(strstr(p.err, "released"));
    assert_non_null(strstr(p.err, tok));
    for (const char *line = p.err; *line; line = strchr(line, '\n') + 1) {
        /* 2026-11-25T10:00:00.123... */
        int ok = strlen(line) > 24 && line[4] == '-' && line[10] == 'T' && line[19] == '.';
        if (!ok)
            print_error("not a timestamped line: %.80s\n", line);
        assert_true(ok);
        if (!strchr(line, '\n'))
            break;
    }
    free(tok);
}

/* ---- status, acquire, extend, release ---------------------------------------------- */

static void status_while_held_and_after(void **state)
{
    (void)state;
    static proc p;
    char tok[256];
    expect_code(&p, cli(&p, ARGV("status", "cli:status")), 1);
    assert_int_equal(p.nout, 0);
    assert_int_equal(p.nerr, 0);

    expect_code(&p, cli(&p, ARGV("acquire", "-t", "30s", "cli:status")), 0);
    token_of(&p, tok, sizeof tok);
    pid_t acquirer = p.pid;
    expect_code(&p, cli(&p, ARGV("status", "cli:status")), 0);
    char want[300];
    snprintf(want, sizeof want, "%s ", tok);
    assert_int_equal(strncmp(p.out, want, strlen(want)), 0);
    long ms = strtol(p.out + strlen(want), NULL, 10);
    print_message("status: %s", p.out);
    assert_true(ms > 20000 && ms <= 30000);
    /* "TOKEN NNNms" and nothing more for a script (stdout is no terminal),
     * although the token says who took the lock */
    snprintf(want + strlen(want), sizeof want - strlen(want), "%ldms\n", ms);
    assert_string_equal(p.out, want);
    /* -v says who, in words, on stderr */
    expect_code(&p, cli(&p, ARGV("-v", "status", "cli:status")), 0);
    assert_int_equal(strncmp(p.out, tok, strlen(tok)), 0);
    assert_int_equal(count(p.out, "\n"), 1);
    char who[200];
    snprintf(who, sizeof who, "held by pid %ld on ", (long)acquirer);
    if (!strstr(p.err, who))
        print_error("status -v does not say \"%s\":\n%s\n", who, p.err);
    assert_non_null(strstr(p.err, who));

    expect_code(&p, cli(&p, ARGV("release", "cli:status", tok)), 0);
    expect_code(&p, cli(&p, ARGV("status", "cli:status")), 1);
    assert_int_equal(p.nout, 0);

    /* while `run` holds it */
    static proc r;
    char script[512];
    gate_script(script, sizeof script, "status", 0);
    cli_start(&r, NULL, ARGV("run", "cli:status", "--", "sh", "-c", script));
    wait_output(&r, "started", 10000);
    expect_code(&p, cli(&p, ARGV("status", "cli:status")), 0);
    char *v = rt_get(&G->main, "cli:status");
    assert_non_null(v);
    assert_int_equal(strncmp(p.out, v, strlen(v)), 0);
    free(v);
    open_gate("status");
    expect_code(&r, cli_finish(&r, 15000), 0);
    expect_code(&p, cli(&p, ARGV("status", "cli:status")), 1);
}

static void acquire_extend_release(void **state)
{
    (void)state;
    static proc p;
    char tok[256];
    expect_code(&p, cli(&p, ARGV("acquire", "cli:acq")), 0);
    assert_int_equal(p.nerr, 0);
    token_of(&p, tok, sizeof tok);
    /* a UUID, then who took it (holder_info): "<uuid>;host=...;pid=...;since=..." */
    if (strlen(tok) <= 36 || tok[8] != '-' || tok[13] != '-' ||
        strncmp(tok + 36, ";host=", 6) != 0)
        print_error("acquire printed the token \"%s\"\n", tok);
    assert_true(strlen(tok) > 36);
    assert_int_equal(strncmp(tok + 36, ";host=", 6), 0);
    assert_key(&G->main, "cli:acq", tok);
    long long pttl = rt_pttl(&G->main, "cli:acq");
    assert_true(pttl > 20000 && pttl <= 30000); /* the default ttl */

    /* a wrong token changes nothing */
    expect_code(&p, cli(&p, ARGV("release", "cli:acq", "not-the-token")), 1);
    one_error_line(&p);
    assert_non_null(strstr(p.err, "cli:acq"));
    assert_key(&G->main, "cli:acq", tok);
    expect_code(&p, cli(&p, ARGV("extend", "-t", "90s", "cli:acq", "not-the-token")), 1);
    one_error_line(&p);
    assert_true(rt_pttl(&G->main, "cli:acq") <= 30000);

    expect_code(&p, cli(&p, ARGV("extend", "-t", "90s", "cli:acq", tok)), 0);
    assert_int_equal(p.nerr, 0);
    pttl = rt_pttl(&G->main, "cli:acq");
    assert_true(pttl > 60000 && pttl <= 90000);
    expect_code(&p, cli(&p, ARGV("extend", "cli:acq", tok)), 0); /* default 30 s */
    pttl = rt_pttl(&G->main, "cli:acq");
    assert_true(pttl > 20000 && pttl <= 30000);

    expect_code(&p, cli(&p, ARGV("release", "cli:acq", tok)), 0);
    assert_int_equal(p.nerr, 0);
    assert_key(&G->main, "cli:acq", NULL);
    expect_code(&p, cli(&p, ARGV("release", "cli:acq", tok)), 1);
    one_error_line(&p);
    expect_code(&p, cli(&p, ARGV("extend", "cli:acq", tok)), 1);

    /* durations: 250ms */
    expect_code(&p, cli(&p, ARGV("acquire", "-t", "250ms", "cli:acq")), 0);
    pttl = rt_pttl(&G->main, "cli:acq");
    assert_true(pttl <= 250);
    expect_code(&p, cli(&p, ARGV("acquire", "-t", "5m", "cli:acq2")), 0);
    pttl = rt_pttl(&G->main, "cli:acq2");
    assert_true(pttl > 240000 && pttl <= 300000);
    token_of(&p, tok, sizeof tok);
    expect_code(&p, cli(&p, ARGV("release", "--", "cli:acq2", tok)), 0);
}

/* ---- signals -------------------------------------------------------------------- */

static void signals_are_forwarded(void **state)
{
    (void)state;
    static proc p;
    /* SIGHUP to a COMMAND that handles it */
    cli_start(&p, NULL,
              ARGV("run", "cli:sig", "--", "sh", "-c",
                   "trap 'echo got-HUP; exit 5' HUP; echo started; "
                   "while :; do sleep 0.05; done"));
    wait_output(&p, "started", 10000);
    assert_int_equal(kill(p.pid, SIGHUP), 0);
    expect_code(&p, cli_finish(&p, 10000), 5);
    assert_non_null(strstr(p.out, "got-HUP"));
    assert_key(&G->main, "cli:sig", NULL);

    /* SIGTERM and SIGINT to one that does not: 128 + signal */
    const int sigs[] = {SIGTERM, SIGINT, SIGUSR1};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        cli_start(&p, NULL,
                  ARGV("-v", "run", "cli:sig", "--", "sh", "-c", "echo started; exec sleep 30"));
        wait_output(&p, "started", 10000);
        int64_t t0 = rt_now_ms();
        assert_int_equal(kill(p.pid, sigs[i]), 0);
        expect_code(&p, cli_finish(&p, 10000), 128 + sigs[i]);
        assert_true(rt_now_ms() - t0 < 5000);
        assert_non_null(strstr(p.err, "forwarded"));
        assert_key(&G->main, "cli:sig", NULL);
    }
}

/* ---- a lost lock ------------------------------------------------------------------- */

static void lost_lock_stops_command(void **state)
{
    (void)state;
    static proc p;
    /* COMMAND ends on SIGTERM */
    cli_start(&p, NULL,
              ARGV("run", "-t", "2s", "cli:lost", "--", "sh", "-c",
                   "trap 'echo got-TERM; exit 9' TERM; echo started; "
                   "while :; do sleep 0.05; done"));
    wait_output(&p, "started", 10000);
    int64_t t0 = rt_now_ms();
    assert_true(rt_cmd_ok(&G->main, "SET cli:lost intruder"));
    expect_code(&p, cli_finish(&p, 15000), 70);
    print_message("lost and stopped in %lld ms: %s", (long long)(p.ended_ms - t0), p.err);
    assert_true(p.ended_ms - t0 < 8000);
    assert_non_null(strstr(p.out, "got-TERM"));
    /* the shell may report its `sleep` killed too ("Terminated"): the
     * SIGTERM went to COMMAND's whole process group */
    one_redlock_line(&p);
    assert_non_null(strstr(p.err, "lost"));
    assert_key(&G->main, "cli:lost", "intruder");

    /* COMMAND ignores SIGTERM: SIGKILL after GRACE */
    cli_start(&p, NULL,
              ARGV("run", "-t", "2s", "-k", "1s", "cli:lost1", "--", "sh", "-c",
                   "trap '' TERM; echo started; exec sleep 30"));
    wait_output(&p, "started", 10000);
    t0 = rt_now_ms();
    assert_true(rt_cmd_ok(&G->main, "SET cli:lost1 intruder2"));
    expect_code(&p, cli_finish(&p, 15000), 70);
    int64_t took = p.ended_ms - t0;
    print_message("killed after %lld ms\n", (long long)took);
    assert_true(took >= 950 && took < 10000);
    /* nothing of the group is left */
    assert_int_equal(kill(-p.pid, 0), -1);
    assert_key(&G->main, "cli:lost1", "intruder2");

    /* deleted under it counts as lost too */
    cli_start(&p, NULL,
              ARGV("run", "-t", "2s", "-k", "1s", "cli:lost2", "--", "sh", "-c",
                   "echo started; exec sleep 30"));
    wait_output(&p, "started", 10000);
    redisReply *r = rt_cmd(&G->main, "DEL cli:lost2");
    assert_non_null(r);
    freeReplyObject(r);
    expect_code(&p, cli_finish(&p, 15000), 70);
    assert_key(&G->main, "cli:lost2", NULL);
}

/* ---- passwords -------------------------------------------------------------------- */

static void rediscli_auth_and_passwords(void **state)
{
    (void)state;
    static proc p;
    char url[200], env_url[220], bad_url[200];
    assert_non_null(rt_url(&G->pw, url, sizeof url, NULL, NULL));
    snprintf(env_url, sizeof env_url, "REDLOCK_URL=%s", url);
    const char *const good[] = {env_url, "REDISCLI_AUTH=" PASSWORD, NULL};
    const char *const wrong[] = {env_url, "REDISCLI_AUTH=Wr0ngPa55", NULL};
    const char *const none[] = {env_url, NULL};

    /* $REDISCLI_AUTH, percent-encoded into the URL by redlock */
    expect_code(&p, cli_env(&p, good, ARGV("acquire", "cli:auth"), 15000), 0);
    char tok[256];
    token_of(&p, tok, sizeof tok);
    assert_key(&G->pw, "cli:auth", tok);
    expect_code(&p, cli_env(&p, good, ARGV("status", "cli:auth"), 15000), 0);
    expect_code(&p, cli_env(&p, good, ARGV("release", "cli:auth", tok), 15000), 0);
    expect_code(&p, cli_env(&p, good, ARGV("run", "cli:auth", "--", "true"), 15000), 0);

    /* no password, a wrong one: 77, and never shown */
    expect_code(&p, cli_env(&p, none, ARGV("status", "cli:auth"), 15000), 77);
    one_error_line(&p);
    expect_code(&p, cli_env(&p, wrong, ARGV("run", "cli:auth", "--", "true"), 15000), 77);
    one_error_line(&p);
    assert_null(strstr(p.err, "Wr0ngPa55"));
    assert_non_null(rt_url(&G->pw, bad_url, sizeof bad_url, ":Wr0ngPa55", NULL));
    expect_code(&p, cli_env(&p, none, ARGV("-u", bad_url, "acquire", "cli:auth"), 15000), 77);
    one_error_line(&p);
    assert_null(strstr(p.err, "Wr0ngPa55"));
    assert_non_null(strstr(p.err, "127.0.0.1"));
    /* nor does a bad URL that got $REDISCLI_AUTH */
    expect_code(&p, cli_env(&p, good, ARGV("-u", "redis://127.0.0.1:notaport", "status", "k"),
                            15000),
                64);
    one_error_line(&p);
    assert_null(strstr(p.err, "pa@ss"));
    assert_null(strstr(p.err, "pa%40ss"));
    /* -v shows no password either */
    expect_code(&p, cli_env(&p, good, ARGV("-v", "run", "cli:auth", "--", "true"), 15000), 0);
    assert_null(strstr(p.err, "pa@ss"));
    assert_null(strstr(p.err, "pa%40ss"));

    /* a password in the URL wins over $REDISCLI_AUTH */
    char ok_url[200];
    assert_non_null(rt_url(&G->pw, ok_url, sizeof ok_url, ":pa%40ss%3Aw%2Frd%259", NULL));
    expect_code(&p, cli_env(&p, wrong, ARGV("-u", ok_url, "status", "cli:auth"), 15000), 1);
    /* a URL with a user name and no password takes $REDISCLI_AUTH */
    char user_url[200];
    assert_non_null(rt_url(&G->pw, user_url, sizeof user_url, "default", "/0"));
    expect_code(&p, cli_env(&p, good, ARGV("-u", user_url, "status", "cli:auth"), 15000), 1);
    /* so does a unix socket */
    char unix_url[200];
    snprintf(unix_url, sizeof unix_url, "%s", G->pw.unix_url);
    expect_code(&p, cli_env(&p, good, ARGV("-u", unix_url, "status", "cli:auth"), 15000), 1);
    expect_code(&p, cli_env(&p, none, ARGV("-u", unix_url, "status", "cli:auth"), 15000), 77);
}

/* ---- unreachable ----------------------------------------------------------------- */

static void unreachable_exits_69(void **state)
{
    (void)state;
    static proc p;
    char url[64];
    int port = rt_free_port();
    assert_true(port > 0);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    const char *const *cases[] = {
        ARGV("-u", url, "status", "k"),
        ARGV("-u", url, "run", "k", "--", "true"),
        ARGV("-u", url, "acquire", "k"),
        ARGV("-u", url, "release", "k", "t"),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_code(&p, cli(&p, cases[i]), 69);
        one_error_line(&p);
        char where[32];
        snprintf(where, sizeof where, "127.0.0.1:%d", port);
        assert_non_null(strstr(p.err, where));
        assert_true(p.ended_ms - p.started_ms < 5000);
    }

    /* A listener whose accept queue is full drops our SYNs: the TCP
     * connect itself hangs, and gives up after the connect timeout (2 s). */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t salen = sizeof sa;
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 0), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &salen), 0);
    int fill[3];
    for (int i = 0; i < 3; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(fill[i] >= 0);
        (void)!connect(fill[i], (struct sockaddr *)&sa, sizeof sa);
    }
    sleep_ms(100);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(sa.sin_port));
    int code = cli(&p, ARGV("-u", url, "status", "cli:unreach"));
    for (int i = 0; i < 3; i++)
        close(fill[i]);
    close(lfd);
    expect_code(&p, code, 69);
    one_error_line(&p);
    int64_t took = p.ended_ms - p.started_ms;
    print_message("SYNs dropped: 69 after %lld ms: %s", (long long)took, p.err);
    assert_true(took >= 1500 && took < 4500);

    /* A server that accepts but never answers: the connect timeout, then
     * the scripts' load gets the I/O timeout (2 s more). */
    assert_int_equal(rt_server_pause(&G->q[1]), 0);
    code = cli(&p, ARGV("-u", G->q[1].url, "run", "cli:unreach", "--", "true"));
    rt_server_resume(&G->q[1]);
    expect_code(&p, code, 69);
    one_error_line(&p);
    took = p.ended_ms - p.started_ms;
    print_message("stalled server: 69 after %lld ms: %s", (long long)took, p.err);
    assert_true(took < 7000);
}

/* ---- Redlock --------------------------------------------------------------------- */

static void redlock_with_three_nodes(void **state)
{
    (void)state;
    static proc r, p;
    rt_server *n[3] = {&G->main, &G->q[0], &G->q[1]};
    char script[512];
    gate_script(script, sizeof script, "quorum", 4);
    cli_start(&r, NULL,
              ARGV("-u", n[0]->url, "-u", n[1]->url, "-u", n[2]->url, "run", "-t", "3s",
                   "cli:q", "--", "sh", "-c", script));
    wait_output(&r, "started", 10000);
    char *tok = rt_get(n[0], "cli:q");
    assert_non_null(tok);
    assert_key(n[1], "cli:q", tok);
    assert_key(n[2], "cli:q", tok);

    /* held across renewals, on all three */
    sleep_ms(3500);
    for (int i = 0; i < 3; i++)
        assert_key(n[i], "cli:q", tok);

    /* seen and refused through the quorum, and through $REDLOCK_URL */
    char env[400];
    snprintf(env, sizeof env, "REDLOCK_URL=%s,%s,%s", n[0]->url, n[1]->url, n[2]->url);
    expect_code(&p, cli_env(&p, ARGV(env), ARGV("status", "cli:q"), 15000), 0);
    assert_int_equal(strncmp(p.out, tok, strlen(tok)), 0);
    expect_code(&p, cli_env(&p, ARGV(env), ARGV("run", "cli:q", "--", "true"), 15000), 75);

    open_gate("quorum");
    expect_code(&r, cli_finish(&r, 15000), 4);
    for (int i = 0; i < 3; i++)
        assert_key(n[i], "cli:q", NULL);
    free(tok);

    /* one node down: a quorum of two still takes and releases it */
    char down[64];
    snprintf(down, sizeof down, "redis://127.0.0.1:%d", rt_free_port());
    expect_code(&p, cli(&p, ARGV("-u", n[0]->url, "-u", n[1]->url, "-u", down, "acquire",
                                 "cli:q2")),
                0);
    char t2[256];
    token_of(&p, t2, sizeof t2);
    assert_key(n[0], "cli:q2", t2);
    assert_key(n[1], "cli:q2", t2);
    expect_code(&p, cli(&p, ARGV("-u", n[0]->url, "-u", n[1]->url, "-u", down, "release",
                                 "cli:q2", t2)),
                0);
    assert_key(n[0], "cli:q2", NULL);

    /* two down: no quorum */
    char down2[64];
    snprintf(down2, sizeof down2, "redis://127.0.0.1:%d", rt_free_port());
    expect_code(&p, cli(&p, ARGV("-u", n[0]->url, "-u", down, "-u", down2, "status", "k")),
                69);
    one_error_line(&p);

    /* another holder on two of three: busy */
    assert_true(rt_cmd_ok(n[1], "SET cli:q3 other PX 30000"));
    assert_true(rt_cmd_ok(n[2], "SET cli:q3 other PX 30000"));
    expect_code(&p, cli(&p, ARGV("-u", n[0]->url, "-u", n[1]->url, "-u", n[2]->url, "run",
                                 "cli:q3", "--", "true")),
                75);
    assert_key(n[0], "cli:q3", NULL); /* the partial key was undone */
    expect_code(&p, cli(&p, ARGV("-u", n[0]->url, "-u", n[1]->url, "-u", n[2]->url, "status",
                                 "cli:q3")),
                0);
    assert_int_equal(strncmp(p.out, "other ", 6), 0);
}

/* ---- COMMAND's life and signals ----------------------------------------------- */

/* This program, which is also a COMMAND that counts signals (see main). */
static char self_path[4096];

/* The pid in a file that COMMAND wrote; 0 if none. */
static pid_t read_pid(const char *path)
{
    FILE *f = fopen(path, "re");
    long v = 0;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 0;
        fclose(f);
    }
    return (pid_t)v;
}

/* pid has ended: gone, or a zombie that its new parent has not reaped. */
static int ended(pid_t pid)
{
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return 1;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren && (paren[2] == 'Z' || paren[2] == 'X');
}

/* The helper COMMAND (main: self_path --count-signal SIG PREFIX): blocks SIG
 * and writes to PREFIX.count how many it took and who sent them ("N PID
 * PID..."; 0 for the kernel), says "started" and ends (0) once PREFIX.gate
 * exists.  Two that arrive before the first is taken are one (the kernel
 * keeps the first's sender): so the tests check the sender too. */
static int count_signal(int sig, const char *prefix)
{
    char count_path[512], gate_path[512];
    snprintf(count_path, sizeof count_path, "%s.count", prefix);
    snprintf(gate_path, sizeof gate_path, "%s.gate", prefix);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_BLOCK, &set, NULL);
    long senders[16];
    int n = 0;
    for (int first = 1;; first = 0) {
        FILE *f = fopen(count_path, "we");
        if (f) {
            fprintf(f, "%d", n);
            for (int i = 0; i < n && i < 16; i++)
                fprintf(f, " %ld", senders[i]);
            fprintf(f, "\n");
            fclose(f);
        }
        if (first) {
            printf("started\n");
            fflush(stdout);
        }
        for (;;) {
            if (access(gate_path, F_OK) == 0)
                return 0;
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000000L};
            siginfo_t si;
            if (sigtimedwait(&set, &si, &ts) == sig) {
                if (n < 16)
                    senders[n] = si.si_code == SI_USER ? (long)si.si_pid : 0;
                n++;
                break;
            }
        }
    }
}

/* How many signals the helper took so far (-1: no file yet), and the
 * sender of the first (-1: none). */
static int counted(const char *prefix, long *first_sender)
{
    char path[512];
    snprintf(path, sizeof path, "%s.count", prefix);
    FILE *f = fopen(path, "re");
    int n = -1;
    long s = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = -1;
        else if (n > 0 && fscanf(f, "%ld", &s) != 1)
            s = -1;
        fclose(f);
    }
    if (first_sender)
        *first_sender = s;
    return n;
}

/* Wait until the helper has taken at least one, then a while for a second
 * copy to arrive, and let it end.  Returns its count. */
static int settle_count(const char *prefix, const char *gate, long *first_sender)
{
    int64_t t0 = rt_now_ms();
    while (counted(prefix, NULL) < 1 && rt_now_ms() - t0 < 10000)
        sleep_ms(20);
    sleep_ms(500);
    open_gate(gate);
    return counted(prefix, first_sender);
}

/* Killed with SIGKILL, redlock cannot stop COMMAND itself: the kernel must
 * (PR_SET_PDEATHSIG), or COMMAND would run on after the lock expires. */
static void sigkill_of_run_kills_command(void **state)
{
    (void)state;
    static proc p;
    char pidfile[256], script[512];
    snprintf(pidfile, sizeof pidfile, "%s/pdeath.pid", G->dir);
    snprintf(script, sizeof script, "echo $$ > '%s'; echo started; exec sleep 30", pidfile);
    cli_start(&p, NULL, ARGV("run", "-t", "3s", "cli:pdeath", "--", "sh", "-c", script));
    wait_output(&p, "started", 10000);
    pid_t cmd = read_pid(pidfile);
    assert_true(cmd > 0);
    char *tok = rt_get(&G->main, "cli:pdeath");
    assert_non_null(tok);

    assert_int_equal(kill(p.pid, SIGKILL), 0);
    /* reaped, not finished: a COMMAND that lives on holds the pipes open */
    for (try_reap(&p); !p.done; try_reap(&p))
        sleep_ms(5);
    assert_int_equal(p.code, 1000 + SIGKILL);
    int64_t t0 = rt_now_ms();
    int dead;
    while (!(dead = ended(cmd)) && rt_now_ms() - t0 < 3000)
        sleep_ms(20);
    if (!dead) {
        print_error("COMMAND (pid %ld) still runs after redlock was killed\n", (long)cmd);
        kill(cmd, SIGKILL); /* ours: started through redlock */
    }
    assert_true(dead);
    print_message("COMMAND ended %lld ms after redlock's SIGKILL",
                  (long long)(rt_now_ms() - t0));
    cli_finish(&p, 10000); /* the rest of the output */
    /* Nobody released the lock: it holds until its ttl ends, after
     * COMMAND's end. */
    assert_key(&G->main, "cli:pdeath", tok);
    free(tok);
}

/* kill -TERM -- -PGID: the kernel gives redlock's group the signal; COMMAND
 * must get it once (forwarded), not a second time as a member. */
static void group_signal_reaches_command_once(void **state)
{
    (void)state;
    static proc p;
    char prefix[256], sig[8];
    snprintf(prefix, sizeof prefix, "%s/grp", G->dir);
    snprintf(sig, sizeof sig, "%d", SIGTERM);
    cli_start(&p, NULL,
              ARGV("-v", "run", "cli:grp", "--", self_path, "--count-signal", sig, prefix));
    wait_output(&p, "started", 10000);
    assert_int_equal(kill(-p.pid, SIGTERM), 0);
    long sender;
    int n = settle_count(prefix, "grp.gate", &sender);
    expect_code(&p, cli_finish(&p, 10000), 0);
    if (n != 1 || sender != (long)p.pid)
        print_error("COMMAND got SIGTERM %d times, first from pid %ld (redlock: %ld)\n"
                    "stderr: %s\n", n, sender, (long)p.pid, p.err);
    assert_int_equal(n, 1);
    /* from redlock: the group's copy (sent by us) never reached COMMAND; a
     * second copy merged into the first would keep the first's sender */
    assert_int_equal(sender, (long)p.pid);
    assert_key(&G->main, "cli:grp", NULL);
}

/* timeout(1) sends its signal to redlock and then to redlock's process
 * group: one signal for COMMAND all the same. */
static void timeout_signal_reaches_command_once(void **state)
{
    (void)state;
    static proc p;
    if (access("/usr/bin/timeout", X_OK) != 0 && access("/bin/timeout", X_OK) != 0) {
        print_message("no timeout(1): skipped");
        skip();
    }
    char prefix[256], sig[8];
    snprintf(prefix, sizeof prefix, "%s/tmo", G->dir);
    snprintf(sig, sizeof sig, "%d", SIGTERM);
    prog_start(&p, NULL,
               ARGV("timeout", "-s", "TERM", "1", REDLOCK_CLI_PATH, "-v", "run",
                    "cli:timeout", "--", self_path, "--count-signal", sig, prefix));
    wait_output(&p, "started", 10000);
    long sender;
    int n = settle_count(prefix, "tmo.gate", &sender);
    expect_code(&p, cli_finish(&p, 10000), 124); /* timeout's "timed out" */
    if (n != 1 || sender == (long)p.pid)
        print_error("COMMAND got SIGTERM %d times, first from pid %ld (timeout: %ld)\n"
                    "stderr: %s\n", n, sender, (long)p.pid, p.err);
    assert_int_equal(n, 1);
    assert_true(sender != (long)p.pid); /* from redlock, not from timeout */
    assert_key(&G->main, "cli:timeout", NULL);
}

/* In a terminal's foreground, ^C stops COMMAND once: the terminal's SIGINT
 * goes to COMMAND's group (the foreground once redlock gave it), and
 * redlock sends no second copy. */
static void terminal_ctrl_c_reaches_command_once(void **state)
{
    (void)state;
    static proc p;
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(m >= 0);
    char slave[128];
    assert_int_equal(grantpt(m), 0);
    assert_int_equal(unlockpt(m), 0);
    assert_int_equal(ptsname_r(m, slave, sizeof slave), 0);

    char prefix[256], sig[8];
    snprintf(prefix, sizeof prefix, "%s/tty", G->dir);
    snprintf(sig, sizeof sig, "%d", SIGINT);
    start_tty = slave; /* redlock leads a session on the pty, in its foreground */
    cli_start(&p, NULL,
              ARGV("-v", "run", "cli:tty", "--", self_path, "--count-signal", sig, prefix));
    start_tty = NULL;
    wait_output(&p, "started", 10000);
    pid_t fg = tcgetpgrp(m);
    print_message("foreground group %ld, redlock %ld", (long)fg, (long)p.pid);
    assert_true(fg > 0);
    assert_int_equal(write(m, "\x03", 1), 1); /* ^C */
    long sender;
    int n = settle_count(prefix, "tty.gate", &sender);
    expect_code(&p, cli_finish(&p, 10000), 0);
    close(m);
    if (n != 1 || sender != 0)
        print_error("COMMAND got SIGINT %d times, first from pid %ld\nstderr: %s\n", n,
                    sender, p.err);
    assert_int_equal(n, 1);
    assert_int_equal(sender, 0); /* from the terminal */
    assert_key(&G->main, "cli:tty", NULL);
}

/* The pid of redlock, from its -v lines ("redlock[PID]: "); 0 if none yet. */
static pid_t redlock_pid_of(const proc *p)
{
    const char *s = strstr(p->err, "redlock[");
    return s ? (pid_t)atol(s + 8) : 0;
}

/* The terminal's foreground is COMMAND's group: neither the shell's
 * (leader) nor redlock's.  Fails after 10 s. */
static void wait_command_foreground(int m, const proc *p)
{
    int64_t t0 = rt_now_ms();
    pid_t fg = -1, r = 0;
    for (;;) {
        r = redlock_pid_of(p);
        fg = tcgetpgrp(m);
        if ((r > 0 && fg > 0 && fg != p->pid && fg != r) || rt_now_ms() - t0 > 10000)
            break;
        pump((proc *)p, 20);
    }
    if (!(r > 0 && fg > 0 && fg != p->pid && fg != r))
        print_error("foreground group %ld, shell %ld, redlock %ld\nstdout: %s\nstderr: %s\n",
                    (long)fg, (long)p->pid, (long)r, p->out, p->err);
    assert_true(r > 0 && fg > 0 && fg != p->pid && fg != r);
}

/* Job control in an interactive shell (here dash with `set -m` on a pty):
 * ^Z stops COMMAND, and redlock stops too, so that the shell sees the job
 * stopped; `fg` continues both, COMMAND in the terminal's foreground again,
 * where ^C reaches it once, from the terminal. */
static void terminal_ctrl_z_and_fg(void **state)
{
    (void)state;
    static proc p;
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(m >= 0);
    char slave[128];
    assert_int_equal(grantpt(m), 0);
    assert_int_equal(unlockpt(m), 0);
    assert_int_equal(ptsname_r(m, slave, sizeof slave), 0);

    char prefix[256], script[8192];
    snprintf(prefix, sizeof prefix, "%s/tstp", G->dir);
    snprintf(script, sizeof script,
             "set -m; '%s' -v run cli:tstp -- '%s' --count-signal %d '%s'; "
             "echo \"stopped $?\"; fg >/dev/null; echo \"done $?\"",
             REDLOCK_CLI_PATH, self_path, SIGINT, prefix);
    start_tty = slave; /* the shell leads a session on the pty */
    prog_start(&p, NULL, ARGV("sh", "-c", script));
    start_tty = NULL;
    wait_output(&p, "started", 10000);
    wait_command_foreground(m, &p);
    assert_int_equal(write(m, "\x1a", 1), 1); /* ^Z */
    char stopped[32];
    snprintf(stopped, sizeof stopped, "stopped %d", 128 + SIGTSTP);
    wait_output(&p, stopped, 10000);
    assert_non_null(strstr(p.err, "stopping too"));
    assert_null(strstr(p.err, "could not stop"));
    char *tok = rt_get(&G->main, "cli:tstp"); /* still held, while stopped */
    assert_non_null(tok);
    free(tok);

    /* `fg`: COMMAND has the terminal again */
    wait_command_foreground(m, &p);
    assert_int_equal(write(m, "\x03", 1), 1); /* ^C */
    long sender;
    int n = settle_count(prefix, "tstp.gate", &sender);
    expect_code(&p, cli_finish(&p, 10000), 0);
    close(m);
    if (n != 1 || sender != 0 || !strstr(p.out, "done 0"))
        print_error("COMMAND got SIGINT %d times, first from pid %ld\nstdout: %s\n"
                    "stderr: %s\n", n, sender, p.out, p.err);
    assert_non_null(strstr(p.out, "done 0"));
    assert_int_equal(n, 1);
    assert_int_equal(sender, 0);
    assert_key(&G->main, "cli:tstp", NULL);
}

/* ---- what COMMAND holds: its environment, --fence ------------------------------ */

/* COMMAND learns the key and the token it runs under (as etcdctl lock and
 * consul lock tell theirs); the variables of an outer redlock (or
 * anybody's) in redlock's environment are not passed on. */
static void command_env_names_the_lock(void **state)
{
    (void)state;
    static proc p;
    char script[1024];
    snprintf(script, sizeof script,
             "echo \"$REDLOCK_KEY|$REDLOCK_TOKEN|${REDLOCK_FENCE-unset}\"; "
             "'%s' status \"$REDLOCK_KEY\"",
             REDLOCK_CLI_PATH);
    const char *const env[] = {G->env_url, "REDLOCK_KEY=stale", "REDLOCK_TOKEN=stale",
                               "REDLOCK_FENCE=99", NULL};
    expect_code(&p, cli_env(&p, env, ARGV("run", "cli:env", "--", "sh", "-c", script), 15000),
                0);
    char key[64] = "", tok[256] = "", fence[64] = "";
    if (sscanf(p.out, "%63[^|]|%255[^|]|%63[^\n]", key, tok, fence) != 3)
        print_error("COMMAND said: %s\n", p.out);
    assert_string_equal(key, "cli:env");
    assert_string_equal(fence, "unset"); /* no --fence, and not the outer 99 */
    assert_true(strlen(tok) >= 36);
    /* the token that held the key while COMMAND ran */
    const char *status = strchr(p.out, '\n');
    assert_non_null(status);
    status++;
    if (strncmp(status, tok, strlen(tok)) != 0 || status[strlen(tok)] != ' ')
        print_error("REDLOCK_TOKEN %s, but the holder was: %s\n", tok, status);
    assert_int_equal(strncmp(status, tok, strlen(tok)), 0);
    assert_int_equal(status[strlen(tok)], ' ');
    assert_key(&G->main, "cli:env", NULL);

    /* --fence: REDLOCK_FENCE, strictly increasing from one holder to the next */
    long long last = 0, f = 0;
    char k[64], t[256];
    for (int i = 0; i < 2; i++) {
        expect_code(&p, cli(&p, ARGV("run", "--fence", "cli:fenced", "--", "sh", "-c",
                                     "echo $REDLOCK_KEY $REDLOCK_TOKEN $REDLOCK_FENCE")),
                    0);
        print_message("run --fence: %s", p.out);
        f = 0;
        assert_int_equal(sscanf(p.out, "%63s %255s %lld", k, t, &f), 3);
        assert_string_equal(k, "cli:fenced");
        assert_true(strlen(t) >= 36);
        assert_true(f > last);
        last = f;
    }
    /* acquire --fence: "TOKEN FENCE", the next number, the counter's */
    expect_code(&p, cli(&p, ARGV("acquire", "--fence", "cli:fenced")), 0);
    print_message("acquire --fence: %s", p.out);
    f = 0;
    assert_int_equal(sscanf(p.out, "%255s %lld", t, &f), 2);
    assert_true(f > last);
    assert_key(&G->main, "cli:fenced", t);
    char *counter = rt_get(&G->main, "cli:fenced:fence");
    assert_non_null(counter);
    assert_int_equal(atoll(counter), f);
    free(counter);
    expect_code(&p, cli(&p, ARGV("release", "cli:fenced", t)), 0);
}

/* Fencing numbers counted by several nodes, each on its own, fence
 * nothing: --fence with more than one node is a usage error that says so,
 * found before anything is written.  One node is fine. */
static void fence_needs_a_single_node(void **state)
{
    (void)state;
    static proc p;
    char env3[400];
    snprintf(env3, sizeof env3, "REDLOCK_URL=%s,%s,%s", G->main.url, G->q[0].url,
             G->q[1].url);
    const char *const three[] = {env3, NULL};
    struct {
        const char *const *env;
        const char *const *argv;
    } cases[] = {
        {NULL, ARGV("-u", G->main.url, "-u", G->q[0].url, "run", "--fence", "cli:f2", "--",
                    "true")},
        {NULL, ARGV("-u", G->main.url, "-u", G->q[0].url, "-u", G->q[1].url, "acquire",
                    "--fence", "cli:f2")},
        {three, ARGV("run", "--fence", "cli:f2", "--", "true")},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_code(&p, cli_env(&p, cases[i].env, cases[i].argv, 15000), 64);
        print_message("%s", p.err);
        one_error_line(&p);
        assert_non_null(strstr(p.err, "--fence"));
        assert_non_null(strstr(p.err, "single Redis node"));
        assert_int_equal(p.nout, 0);
    }
    rt_server *n[3] = {&G->main, &G->q[0], &G->q[1]};
    for (int i = 0; i < 3; i++) {
        assert_key(n[i], "cli:f2", NULL);
        assert_key(n[i], "cli:f2:fence", NULL);
    }
    expect_code(&p, cli(&p, ARGV("-u", G->main.url, "run", "--fence", "cli:f2", "--", "true")),
                0);
    assert_key(&G->main, "cli:f2", NULL);
}

/* ---- the whole job: COMMAND's process group ------------------------------------- */

/* The pid COMMAND wrote to path, once it has (fails after 10 s); recorded
 * as a stray for the teardown. */
static pid_t wait_pid_file(const char *path)
{
    int64_t t0 = rt_now_ms();
    pid_t pid;
    while ((pid = read_pid(path)) <= 0 && rt_now_ms() - t0 < 10000)
        sleep_ms(20);
    if (pid <= 0)
        print_error("no pid in %s\n", path);
    assert_true(pid > 0);
    stray_add(pid);
    return pid;
}

/* The parent of pid, from /proc (-1 if gone). */
static pid_t ppid_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    char st;
    long pp;
    if (!paren || sscanf(paren + 1, " %c %ld", &st, &pp) != 2)
        return -1;
    return (pid_t)pp;
}

static void assert_ended(pid_t pid, const char *what, const proc *p)
{
    if (!ended(pid))
        print_error("%s (pid %ld) outlived `redlock run`\nstderr: %s\n", what, (long)pid,
                    p->err);
    assert_true(ended(pid));
}

/* COMMAND (a shell script) exits and leaves a background child behind: the
 * child is killed (SIGTERM, then SIGKILL after GRACE if it ignores that),
 * and only then is the lock released.  Meanwhile the child, an orphan, is
 * redlock's (a child subreaper), and redlock exits with COMMAND's status. */
static void leftovers_end_before_the_lock_is_released(void **state)
{
    (void)state;
    static proc p;
    char pidfile[256], script[1024];
    snprintf(pidfile, sizeof pidfile, "%s/bg.pid", G->dir);
    snprintf(script, sizeof script,
             "sleep 1000 >/dev/null 2>&1 & echo $! > '%s'; exit 3", pidfile);
    expect_code(&p, cli(&p, ARGV("-v", "run", "cli:bg", "--", "sh", "-c", script)), 3);
    pid_t child = read_pid(pidfile);
    assert_true(child > 0);
    stray_add(child);
    assert_ended(child, "the background `sleep 1000`", &p);
    assert_key(&G->main, "cli:bg", NULL);
    /* in that order: the group ended, then the lock was released */
    const char *gone = strstr(p.err, "has ended"), *rel = strstr(p.err, "released");
    if (!gone || !rel || gone > rel)
        print_error("stderr: %s\n", p.err);
    assert_true(gone && rel && gone < rel);

    /* a child that ignores SIGTERM: SIGKILL after GRACE, the lock held
     * until then */
    char ready[256], pidfile2[256];
    snprintf(ready, sizeof ready, "%s/bg2.ready", G->dir);
    snprintf(pidfile2, sizeof pidfile2, "%s/bg2.pid", G->dir);
    snprintf(script, sizeof script,
             "sh -c 'trap \"\" TERM; echo > \"$0\"; exec sleep 1000' '%s' >/dev/null 2>&1 & "
             "echo $! > '%s'; while [ ! -e '%s' ]; do sleep 0.02; done; echo started; exit 4",
             ready, pidfile2, ready);
    cli_start(&p, NULL, ARGV("-v", "run", "-k", "1s", "cli:bg2", "--", "sh", "-c", script));
    wait_output(&p, "started", 10000);
    int64_t t0 = rt_now_ms();
    child = wait_pid_file(pidfile2);
    char *tok = rt_get(&G->main, "cli:bg2");
    assert_non_null(tok);
    sleep_ms(300);
    try_reap(&p);
    assert_false(p.done);
    pid_t parent = ppid_of(child);
    if (parent != p.pid)
        print_error("the orphan's parent is %ld, not redlock (%ld)\n", (long)parent,
                    (long)p.pid);
    assert_int_equal(parent, p.pid);
    assert_key(&G->main, "cli:bg2", tok);
    expect_code(&p, cli_finish(&p, 15000), 4);
    int64_t took = p.ended_ms - t0;
    print_message("the leftover was killed after %lld ms", (long long)took);
    assert_true(took >= 900 && took < 8000);
    assert_ended(child, "the background child that ignores SIGTERM", &p);
    assert_key(&G->main, "cli:bg2", NULL);
    const char *kill9 = strstr(p.err, "SIGKILL");
    rel = strstr(p.err, "released");
    assert_true(kill9 && rel && kill9 < rel);
    free(tok);
}

/* A lost lock ends the whole job: a grandchild in the background too. */
static void lost_lock_ends_the_whole_job(void **state)
{
    (void)state;
    static proc p;
    char pidfile[256], script[1024];
    snprintf(pidfile, sizeof pidfile, "%s/lostjob.pid", G->dir);
    snprintf(script, sizeof script,
             "(sleep 1000 >/dev/null 2>&1 & echo $! > '%s'; wait) >/dev/null 2>&1 & "
             "echo started; while :; do sleep 0.05; done",
             pidfile);
    cli_start(&p, NULL, ARGV("run", "-t", "2s", "cli:lostjob", "--", "sh", "-c", script));
    wait_output(&p, "started", 10000);
    pid_t grandchild = wait_pid_file(pidfile);
    redisReply *r = rt_cmd(&G->main, "DEL cli:lostjob");
    assert_non_null(r);
    freeReplyObject(r);
    expect_code(&p, cli_finish(&p, 15000), 70);
    one_redlock_line(&p);
    assert_non_null(strstr(p.err, "lost"));
    assert_ended(grandchild, "the background grandchild", &p);
    assert_key(&G->main, "cli:lostjob", NULL);
}

/* SIGTERM to redlock reaches the processes of COMMAND's group, not just
 * COMMAND, and one that ignores it is killed after GRACE; SIGUSR1 is still
 * COMMAND's alone. */
static void sigterm_reaches_the_whole_job(void **state)
{
    (void)state;
    static proc p;
    char f[6][128], script[4096];
    const char *names[6] = {"tj1.pid", "tj2.pid", "tj3.pid", "tj2.ready", "tj3.ready",
                            "tj3.usr1"};
    for (int i = 0; i < 6; i++)
        snprintf(f[i], sizeof f[i], "%s/%s", G->dir, names[i]);
    snprintf(script, sizeof script,
             "sleep 1000 >/dev/null 2>&1 & echo $! > '%s'; "
             "sh -c 'trap \"\" TERM; echo > \"$0\"; exec sleep 1000' '%s' >/dev/null 2>&1 & "
             "echo $! > '%s'; "
             "sh -c 'trap \"echo > \\\"$0\\\"\" USR1; echo > \"$1\"; "
             "while :; do sleep 0.05; done' '%s' '%s' >/dev/null 2>&1 & echo $! > '%s'; "
             "trap 'echo got-USR1' USR1; "
             "while [ ! -e '%s' ] || [ ! -e '%s' ]; do sleep 0.02; done; echo started; "
             "while :; do sleep 0.05; done",
             f[0], f[3], f[1], f[5], f[4], f[2], f[3], f[4]);
    cli_start(&p, NULL, ARGV("-v", "run", "-k", "1s", "cli:termjob", "--", "sh", "-c", script));
    wait_output(&p, "started", 10000);
    pid_t c[3];
    for (int i = 0; i < 3; i++)
        c[i] = wait_pid_file(f[i]);

    assert_int_equal(kill(p.pid, SIGUSR1), 0);
    wait_output(&p, "got-USR1", 10000);
    sleep_ms(300);
    if (access(f[5], F_OK) == 0)
        print_error("SIGUSR1 reached a child in COMMAND's group\n");
    assert_int_equal(access(f[5], F_OK), -1);

    int64_t t0 = rt_now_ms();
    assert_int_equal(kill(p.pid, SIGTERM), 0);
    expect_code(&p, cli_finish(&p, 15000), 128 + SIGTERM);
    int64_t took = p.ended_ms - t0;
    print_message("the job ended %lld ms after SIGTERM", (long long)took);
    for (int i = 0; i < 3; i++)
        assert_ended(c[i], "a child in COMMAND's group", &p);
    assert_true(took >= 900 && took < 8000);
    assert_non_null(strstr(p.err, "SIGKILL"));
    assert_key(&G->main, "cli:termjob", NULL);
}

/* ---- semaphores: -n N ------------------------------------------------------------ */

/* run -n 2: two COMMANDs hold a permit each at the same time, slots 0 and 1
 * (REDLOCK_KEY is the slot's key, REDLOCK_SLOT its number); a third finds
 * every slot held: busy (75) at once, or with -w it waits until one ends
 * and then gets that slot. */
static void run_n_lets_n_commands_run_at_once(void **state)
{
    (void)state;
    static proc a, b, c, p;
    char sa[512], sb[512];
    snprintf(sa, sizeof sa,
             "echo \"started $REDLOCK_SLOT $REDLOCK_KEY\"; "
             "while [ ! -e '%s/sem-a' ]; do sleep 0.05; done",
             G->dir);
    snprintf(sb, sizeof sb,
             "echo \"started $REDLOCK_SLOT $REDLOCK_KEY\"; "
             "while [ ! -e '%s/sem-b' ]; do sleep 0.05; done",
             G->dir);
    cli_start(&a, NULL, ARGV("run", "-n", "2", "cli:sem", "--", "sh", "-c", sa));
    wait_output(&a, "started", 10000);
    cli_start(&b, NULL, ARGV("run", "--max-holders=2", "cli:sem", "--", "sh", "-c", sb));
    wait_output(&b, "started", 10000);
    try_reap(&a);
    try_reap(&b);
    assert_false(a.done);
    assert_false(b.done); /* both COMMANDs run at once */

    int slot[2] = {-1, -1};
    char key[2][128];
    const proc *ab[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        if (sscanf(ab[i]->out, "started %d %127s", &slot[i], key[i]) != 2)
            print_error("COMMAND said: %s\n", ab[i]->out);
        assert_true(slot[i] == 0 || slot[i] == 1);
        char want[128];
        snprintf(want, sizeof want, "cli:sem:redlock:%d", slot[i]);
        assert_string_equal(key[i], want);
        char *v = rt_get(&G->main, key[i]);
        assert_non_null(v);
        free(v);
    }
    assert_int_not_equal(slot[0], slot[1]);
    assert_key(&G->main, "cli:sem", NULL); /* the name itself is no lock */

    /* a third: busy, silent */
    int64_t t0 = rt_now_ms();
    expect_code(&p, cli(&p, ARGV("run", "-n", "2", "cli:sem", "--", "true")), 75);
    assert_int_equal(p.nerr, 0);
    assert_true(rt_now_ms() - t0 < 5000);
    expect_code(&p, cli(&p, ARGV("run", "-n", "2", "-E", "9", "cli:sem", "--", "true")), 9);

    /* with -w: waits until a slot is free, and takes it */
    cli_start(&c, NULL,
              ARGV("run", "-n", "2", "-w", "20s", "cli:sem", "--", "sh", "-c",
                   "echo \"started $REDLOCK_SLOT\""));
    t0 = rt_now_ms();
    while (rt_now_ms() - t0 < 700)
        pump(&c, 50);
    try_reap(&c);
    assert_false(c.done);
    assert_null(strstr(c.out, "started"));
    open_gate("sem-a");
    expect_code(&a, cli_finish(&a, 15000), 0);
    expect_code(&c, cli_finish(&c, 15000), 0);
    char want[64];
    snprintf(want, sizeof want, "started %d\n", slot[0]);
    assert_string_equal(c.out, want);
    open_gate("sem-b");
    expect_code(&b, cli_finish(&b, 15000), 0);
    assert_key(&G->main, key[0], NULL);
    assert_key(&G->main, key[1], NULL);

    /* -n 1 is a plain lock on KEY: slot 0 */
    expect_code(&p, cli(&p, ARGV("run", "-n", "1", "cli:sem1", "--", "sh", "-c",
                                 "echo \"$REDLOCK_KEY $REDLOCK_SLOT\"")),
                0);
    assert_string_equal(p.out, "cli:sem1 0\n");
    /* without -n no REDLOCK_SLOT, not even an outer one */
    const char *const env[] = {G->env_url, "REDLOCK_SLOT=7", NULL};
    expect_code(&p, cli_env(&p, env,
                            ARGV("run", "cli:sem1", "--", "sh", "-c",
                                 "echo \"${REDLOCK_SLOT-unset}\""),
                            15000),
                0);
    assert_string_equal(p.out, "unset\n");
}

/* acquire -n N prints "TOKEN SLOTKEY": the permit is a lock on SLOTKEY,
 * which extend and release name (not the semaphore's KEY). */
static void acquire_n_prints_a_slot_key_that_release_takes(void **state)
{
    (void)state;
    static proc p;
    char t[2][256], k[2][256];
    for (int i = 0; i < 2; i++) {
        expect_code(&p, cli(&p, ARGV("acquire", "-n", "2", "cli:asem")), 0);
        print_message("acquire -n 2: %s", p.out);
        assert_int_equal(count(p.out, "\n"), 1);
        assert_int_equal(sscanf(p.out, "%255s %255[^\n]", t[i], k[i]), 2);
        assert_int_equal(strncmp(k[i], "cli:asem:redlock:", 17), 0);
        assert_key(&G->main, k[i], t[i]);
    }
    assert_true(strcmp(k[0], k[1]) != 0);
    expect_code(&p, cli(&p, ARGV("acquire", "-n", "2", "cli:asem")), 75);
    assert_int_equal(p.nout, 0);

    expect_code(&p, cli(&p, ARGV("extend", "-t", "90s", k[0], t[0])), 0);
    assert_true(rt_pttl(&G->main, k[0]) > 60000);
    /* KEY is the semaphore's name, not the permit's lock */
    expect_code(&p, cli(&p, ARGV("release", "cli:asem", t[0])), 1);
    one_error_line(&p);
    expect_code(&p, cli(&p, ARGV("release", k[0], t[0])), 0);
    assert_int_equal(p.nerr, 0);
    assert_key(&G->main, k[0], NULL);
    /* the freed slot is the one taken next */
    expect_code(&p, cli(&p, ARGV("acquire", "-n", "2", "cli:asem")), 0);
    char t3[256], k3[256];
    assert_int_equal(sscanf(p.out, "%255s %255[^\n]", t3, k3), 2);
    assert_string_equal(k3, k[0]);
    expect_code(&p, cli(&p, ARGV("release", k3, t3)), 0);
    expect_code(&p, cli(&p, ARGV("release", k[1], t[1])), 0);

    /* -n 1: the slot is KEY itself; with --fence, "TOKEN FENCE KEY" */
    expect_code(&p, cli(&p, ARGV("acquire", "-n", "1", "cli:asem1")), 0);
    assert_int_equal(sscanf(p.out, "%255s %255[^\n]", t3, k3), 2);
    assert_string_equal(k3, "cli:asem1");
    assert_key(&G->main, "cli:asem1", t3);
    expect_code(&p, cli(&p, ARGV("release", k3, t3)), 0);
    expect_code(&p, cli(&p, ARGV("acquire", "--fence", "-n", "1", "cli:asem1")), 0);
    long long f = 0;
    assert_int_equal(sscanf(p.out, "%255s %lld %255[^\n]", t3, &f, k3), 3);
    assert_true(f > 0);
    assert_string_equal(k3, "cli:asem1");
    expect_code(&p, cli(&p, ARGV("release", k3, t3)), 0);
}

/* N outside 1..1024 (REDLOCK_SEMAPHORE_MAX), and --fence with N > 1, are
 * usage errors, found before any contact with Redis; 1 and 1024 are fine. */
static void max_holders_out_of_range_is_a_usage_error(void **state)
{
    (void)state;
    static proc p;
    char down[64];
    snprintf(down, sizeof down, "redis://127.0.0.1:%d", rt_free_port());
    const char *const *cases[] = {
        ARGV("-u", down, "run", "-n", "0", "cli:nr", "--", "true"),
        ARGV("-u", down, "run", "-n", "1025", "cli:nr", "--", "true"),
        ARGV("-u", down, "acquire", "-n", "-1", "cli:nr"),
        ARGV("-u", down, "acquire", "-n", "two", "cli:nr"),
        ARGV("-u", down, "acquire", "-n", "", "cli:nr"),
        ARGV("-u", down, "acquire", "--max-holders=2x", "cli:nr"),
        ARGV("-u", down, "acquire", "-n", "99999999999999999999", "cli:nr"),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_code(&p, cli(&p, cases[i]), 64);
        print_message("%s", p.err);
        one_error_line(&p);
        assert_non_null(strstr(p.err, "1..1024"));
        assert_int_equal(p.nout, 0);
    }
    const char *const *fenced[] = {
        ARGV("-u", down, "run", "--fence", "-n", "2", "cli:nr", "--", "true"),
        ARGV("-u", down, "acquire", "-n", "3", "--fence", "cli:nr"),
    };
    for (size_t i = 0; i < sizeof fenced / sizeof fenced[0]; i++) {
        expect_code(&p, cli(&p, fenced[i]), 64);
        print_message("%s", p.err);
        one_error_line(&p);
        assert_non_null(strstr(p.err, "--fence"));
        assert_int_equal(p.nout, 0);
    }
    /* -n is run's and acquire's only */
    expect_code(&p, cli(&p, ARGV("status", "-n", "2", "cli:nr")), 64);
    one_error_line(&p);

    /* the bounds themselves are fine */
    char t[256], k[256];
    expect_code(&p, cli(&p, ARGV("acquire", "-n", "1024", "cli:nmax")), 0);
    assert_int_equal(sscanf(p.out, "%255s %255[^\n]", t, k), 2);
    assert_int_equal(strncmp(k, "cli:nmax:redlock:", 17), 0);
    expect_code(&p, cli(&p, ARGV("release", k, t)), 0);
    expect_code(&p, cli(&p, ARGV("run", "-n", "1024", "cli:nmax", "--", "true")), 0);
}

/* ---- list --------------------------------------------------------------------- */

/* This host's name as the library records it in a token. */
static void host_name(char *buf, size_t len)
{
    char h[65] = "";
    if (gethostname(h, sizeof h - 1) != 0)
        snprintf(h, sizeof h, "unknown");
    for (char *q = h; *q; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
              (*q >= '0' && *q <= '9') || *q == '-' || *q == '.' || *q == '_'))
            *q = '_';
    snprintf(buf, len, "%s", h);
}

typedef struct list_line {
    char ttl[32], host[80], pid[24], since[40], key[256];
} list_line;

/* The line of `list` for key; fails the test if there is none. */
static void list_line_of(const proc *p, const char *key, list_line *l)
{
    for (const char *line = p->out; line && *line;) {
        memset(l, 0, sizeof *l);
        if (sscanf(line, "%31s %79s %23s %39s %255[^\n]", l->ttl, l->host, l->pid, l->since,
                   l->key) == 5 &&
            strcmp(l->key, key) == 0)
            return;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    print_error("no line for %s in:\n%s\n", key, p->out);
    fail();
}

/* list: one line per lock, "TTL HOST PID SINCE KEY", who took it where
 * redlock did; a plain SET's key only with --all; nothing (and exit 0)
 * for a pattern that matches nothing; a header only on request when
 * stdout is no terminal. */
static void list_shows_who_holds_what(void **state)
{
    (void)state;
    static proc p, r;
    char host[80];
    host_name(host, sizeof host);
    time_t before = time(NULL);

    expect_code(&p, cli(&p, ARGV("acquire", "-t", "30s", "cli:ls:a")), 0);
    pid_t acquirer = p.pid;
    char script[512];
    gate_script(script, sizeof script, "list", 0);
    cli_start(&r, NULL, ARGV("run", "cli:ls:b", "--", "sh", "-c", script));
    wait_output(&r, "started", 10000);
    assert_true(rt_cmd_ok(&G->main, "SET cli:ls:plain v PX 30000"));
    assert_true(rt_cmd_ok(&G->main, "SET cli:ls:noexp v")); /* no ttl: no lock */

    expect_code(&p, cli(&p, ARGV("list", "cli:ls:*")), 0);
    print_message("list:\n%s", p.out);
    assert_int_equal(p.nerr, 0);
    assert_int_equal(count(p.out, "\n"), 2); /* no header: stdout is a pipe */
    assert_null(strstr(p.out, "cli:ls:plain"));
    list_line l;
    list_line_of(&p, "cli:ls:a", &l);
    long ttl = strtol(l.ttl, NULL, 10);
    assert_true(ttl > 20000 && ttl <= 30000);
    assert_string_equal(l.ttl + strlen(l.ttl) - 2, "ms");
    assert_string_equal(l.host, host);
    assert_int_equal(atol(l.pid), (long)acquirer);
    /* since: ISO 8601 UTC, about now */
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(l.since, "%Y-%m-%dT%H:%M:%SZ", &tm);
    assert_non_null(end);
    assert_int_equal(*end, '\0');
    time_t since = timegm(&tm);
    assert_true(since >= before - 2 && since <= time(NULL) + 2);
    list_line_of(&p, "cli:ls:b", &l);
    assert_string_equal(l.host, host);
    assert_int_equal(atol(l.pid), (long)r.pid); /* run's own pid */
    /* sorted by key */
    assert_true(strstr(p.out, "cli:ls:a") < strstr(p.out, "cli:ls:b"));

    /* --all: the plain SET too, with "-" for what it does not say */
    expect_code(&p, cli(&p, ARGV("list", "--all", "cli:ls:*")), 0);
    assert_int_equal(count(p.out, "\n"), 3);
    list_line_of(&p, "cli:ls:plain", &l);
    assert_string_equal(l.host, "-");
    assert_string_equal(l.pid, "-");
    assert_string_equal(l.since, "-");
    ttl = strtol(l.ttl, NULL, 10);
    assert_true(ttl > 20000 && ttl <= 30000);
    assert_null(strstr(p.out, "cli:ls:noexp"));
    expect_code(&p, cli(&p, ARGV("list", "-a", "cli:ls:p*")), 0);
    assert_int_equal(count(p.out, "\n"), 1);

    /* a header on request */
    expect_code(&p, cli(&p, ARGV("list", "--header", "cli:ls:*")), 0);
    assert_int_equal(count(p.out, "\n"), 3);
    char h1[32], h2[32], h3[32], h4[32], h5[32];
    assert_int_equal(sscanf(p.out, "%31s %31s %31s %31s %31s", h1, h2, h3, h4, h5), 5);
    assert_string_equal(h1, "TTL");
    assert_string_equal(h5, "KEY");

    /* nothing matches: nothing printed, no error */
    expect_code(&p, cli(&p, ARGV("list", "cli:nothing:*")), 0);
    assert_int_equal(p.nout, 0);
    assert_int_equal(p.nerr, 0);
    expect_code(&p, cli(&p, ARGV("list", "-a", "cli:nothing:*")), 0);
    assert_int_equal(p.nout, 0);

    /* released: gone from the list */
    open_gate("list");
    expect_code(&r, cli_finish(&r, 15000), 0);
    expect_code(&p, cli(&p, ARGV("list", "cli:ls:*")), 0);
    assert_int_equal(count(p.out, "\n"), 1);
    assert_null(strstr(p.out, "cli:ls:b"));

    /* errors: usage 64, unreachable 69 */
    expect_code(&p, cli(&p, ARGV("list", "a*", "b*")), 64);
    one_error_line(&p);
    expect_code(&p, cli(&p, ARGV("list", "-t", "5s")), 64);
    one_error_line(&p);
    char down[64];
    snprintf(down, sizeof down, "redis://127.0.0.1:%d", rt_free_port());
    expect_code(&p, cli(&p, ARGV("-u", down, "list")), 69);
    one_error_line(&p);
}

/* On a terminal, list prints its header line and status says who took the
 * lock on a second line (after the unchanged "TOKEN NNNms"). */
static void terminal_list_header_and_status_holder(void **state)
{
    (void)state;
    static proc p, a;
    expect_code(&a, cli(&a, ARGV("acquire", "cli:tl:a")), 0);
    char tok[256];
    token_of(&a, tok, sizeof tok);

    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(m >= 0);
    char slave[128];
    assert_int_equal(grantpt(m), 0);
    assert_int_equal(unlockpt(m), 0);
    assert_int_equal(ptsname_r(m, slave, sizeof slave), 0);
    start_tty = slave; /* stdin: the terminal; stdout too with >&0 */
    prog_start(&p, NULL,
               ARGV("sh", "-c",
                    "\"$0\" list 'cli:tl:*' >&0 && \"$0\" list --no-header 'cli:tl:*' >&0 && "
                    "\"$0\" status cli:tl:a >&0; echo \"done $?\"",
                    REDLOCK_CLI_PATH));
    start_tty = NULL;
    char tty[8192] = "";
    size_t n = 0;
    int64_t t0 = rt_now_ms();
    while (!strstr(p.out, "done") && rt_now_ms() - t0 < 10000) {
        pump(&p, 20);
        struct pollfd pfd = {.fd = m, .events = POLLIN};
        while (poll(&pfd, 1, 0) > 0 && n < sizeof tty - 1) {
            ssize_t k = read(m, tty + n, sizeof tty - 1 - n);
            if (k <= 0)
                break;
            n += (size_t)k;
            tty[n] = '\0';
        }
    }
    expect_code(&p, cli_finish(&p, 10000), 0);
    struct pollfd pfd = {.fd = m, .events = POLLIN};
    while (poll(&pfd, 1, 100) > 0 && n < sizeof tty - 1) {
        ssize_t k = read(m, tty + n, sizeof tty - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        tty[n] = '\0';
    }
    close(m);
    print_message("on the terminal:\n%s", tty);
    assert_string_equal(p.out, "done 0\n");
    assert_int_equal(count(tty, "TTL"), 1); /* --no-header: none */
    assert_int_equal(count(tty, "cli:tl:a"), 2);
    /* status: "TOKEN NNNms" first, then who */
    const char *st = strstr(tty, tok);
    assert_non_null(st);
    assert_int_equal(st[strlen(tok)], ' ');
    char who[128];
    snprintf(who, sizeof who, "taken by pid %ld on ", (long)a.pid);
    const char *w = strstr(tty, who);
    if (!w)
        print_error("no \"%s\" on the terminal\n", who);
    assert_true(w > st);
}

/* A ttl whose drift allowance (1 % + 2 ms) leaves no validity is a usage
 * error, found before any contact with Redis, not "Redis unreachable". */
static void ttl_without_validity_is_a_usage_error(void **state)
{
    (void)state;
    static proc p;
    char unreachable[64];
    snprintf(unreachable, sizeof unreachable, "redis://127.0.0.1:%d", rt_free_port());
    const char *const ttls[] = {"1ms", "2ms", "3ms"};
    for (size_t i = 0; i < sizeof ttls / sizeof ttls[0]; i++) {
        const char *const *cases[] = {
            ARGV("run", "-t", ttls[i], "cli:tiny", "--", "true"),
            ARGV("acquire", "-t", ttls[i], "cli:tiny"),
            ARGV("extend", "-t", ttls[i], "cli:tiny", "some-token"),
            /* before contacting Redis: not 69 for a node that is down */
            ARGV("-u", unreachable, "acquire", "--ttl", ttls[i], "cli:tiny"),
        };
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            expect_code(&p, cli(&p, cases[k]), 64);
            one_error_line(&p);
            assert_non_null(strstr(p.err, ttls[i]));
            assert_non_null(strstr(p.err, "smallest usable TTL is 4ms"));
            assert_int_equal(p.nout, 0);
        }
    }
    /* 4 ms leaves 1 ms: accepted (taken, or "no validity left" if the
     * round trip took that millisecond, but never a usage error) */
    int code = cli(&p, ARGV("acquire", "-t", "4ms", "cli:tiny4"));
    print_message("acquire -t 4ms: %d %s", code, p.err);
    assert_true(code == 0 || code == 69);
    code = cli(&p, ARGV("run", "-t", "4ms", "cli:tiny5", "--", "true"));
    print_message("run -t 4ms: %d %s", code, p.err);
    assert_true(code != 64);

    /* an argument the library refuses (REDLOCK_INVALID) is a usage error */
    expect_code(&p, cli(&p, ARGV("release", "cli:tiny", "redlock:handoff")), 64);
    one_error_line(&p);
    expect_code(&p, cli(&p, ARGV("extend", "cli:tiny", "redlock:handoff")), 64);
    one_error_line(&p);
}

/* ---- TLS ---------------------------------------------------------------------------- */

/* Bad TLS options and files are usage errors (64) that name the option or
 * variable and the file, before any connection; flags win over the
 * environment.  No TLS server needed. */
static void tls_options_are_checked(void **state)
{
    (void)state;
    static proc p;
    char good[128], dir_env[160], bad_env[160], good_env[200];
    snprintf(good, sizeof good, "%s/some.pem", G->dir);
    FILE *f = fopen(good, "w");
    assert_non_null(f);
    fputs("not checked by redlock, only read\n", f);
    fclose(f);
    snprintf(dir_env, sizeof dir_env, "REDLOCK_CACERT=%s", G->dir);
    snprintf(bad_env, sizeof bad_env, "REDLOCK_CACERT=%s/missing.pem", G->dir);
    snprintf(good_env, sizeof good_env, "REDLOCK_CERT=%s", good);
    struct {
        const char *const *env, *const *argv;
        const char *must[2];
    } cases[] = {
        {NULL, ARGV("--cacert", "/nonexistent/ca.pem", "status", "k"),
         {"--cacert", "/nonexistent/ca.pem"}},
        {NULL, ARGV("status", "k", "--cacert=/nonexistent/ca.pem"),
         {"--cacert", "/nonexistent/ca.pem"}},
        {NULL, ARGV("--cacert", G->dir, "status", "k"), {G->dir, "not a regular file"}},
        {ARGV(G->env_url, bad_env), ARGV("status", "k"), {"$REDLOCK_CACERT", "missing.pem"}},
        {ARGV(G->env_url, dir_env), ARGV("status", "k"), {"$REDLOCK_CACERT", G->dir}},
        {NULL, ARGV("--cacertdir", "/nonexistent/dir", "status", "k"),
         {"--cacertdir", "/nonexistent/dir"}},
        {NULL, ARGV("--cert", "/nonexistent/c.pem", "--key", good, "status", "k"),
         {"--cert", "/nonexistent/c.pem"}},
        {NULL, ARGV("--cert", good, "--key", "/nonexistent/k.pem", "status", "k"),
         {"--key", "/nonexistent/k.pem"}},
        {NULL, ARGV("--cert", good, "status", "k"), {"--cert", "--key"}},
        {ARGV(G->env_url, good_env), ARGV("status", "k"), {"$REDLOCK_CERT", "--key"}},
        {NULL, ARGV("--sni", "", "status", "k"), {"--sni", "empty"}},
        {NULL, ARGV("status", "k", "--cacert"), {"--cacert", "value"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int code = cli_env(&p, cases[i].env, cases[i].argv, 10000);
        print_message("case %zu -> %d: %s", i, code, p.err);
        expect_code(&p, code, 64);
        one_error_line(&p);
        for (int k = 0; k < 2; k++)
            assert_non_null(strstr(p.err, cases[i].must[k]));
        assert_int_equal(p.nout, 0);
    }

    /* A FIFO for a file, or in the CA directory under a hash name: 64 at
     * once.  Opened blocking, the FIFO waited for a writer forever (here:
     * past the 5 s that cli_env allows, a failure). */
    char fifo[160], cadir[160], hashed[200], fifo_env[200], key_env[200];
    snprintf(fifo, sizeof fifo, "%s/pipe", G->dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    snprintf(cadir, sizeof cadir, "%s/cadir", G->dir);
    assert_int_equal(mkdir(cadir, 0700), 0);
    snprintf(hashed, sizeof hashed, "%s/77483dbb.0", cadir);
    assert_int_equal(mkfifo(hashed, 0600), 0);
    snprintf(fifo_env, sizeof fifo_env, "REDLOCK_CACERT=%s", fifo);
    snprintf(key_env, sizeof key_env, "REDLOCK_CERT_KEY=%s", fifo);
    struct {
        const char *const *env, *const *argv;
        const char *must[2];
    } fifos[] = {
        {NULL, ARGV("--cacert", fifo, "status", "k"), {"--cacert", "not a regular file"}},
        {ARGV(G->env_url, fifo_env), ARGV("status", "k"), {"$REDLOCK_CACERT", fifo}},
        {NULL, ARGV("--cert", fifo, "--key", good, "status", "k"), {"--cert", fifo}},
        {NULL, ARGV("--cert", good, "--key", fifo, "status", "k"), {"--key", fifo}},
        {ARGV(G->env_url, key_env), ARGV("--cert", good, "status", "k"),
         {"$REDLOCK_CERT_KEY", "not a regular file"}},
        {NULL, ARGV("--cacertdir", cadir, "status", "k"), {"--cacertdir", "77483dbb.0"}},
    };
    for (size_t i = 0; i < sizeof fifos / sizeof fifos[0]; i++) {
        int64_t t0 = rt_now_ms();
        int code = cli_env(&p, fifos[i].env, fifos[i].argv, 5000);
        print_message("fifo case %zu -> %d in %lld ms: %s", i, code,
                      (long long)(rt_now_ms() - t0), p.err);
        expect_code(&p, code, 64);
        one_error_line(&p);
        for (int k = 0; k < 2; k++)
            assert_non_null(strstr(p.err, fifos[i].must[k]));
        assert_non_null(strstr(p.err, "not a regular file"));
        assert_int_equal(p.nout, 0);
    }
    unlink(hashed);
    rmdir(cadir);
    unlink(fifo);

    /* the flag wins over a bad $REDLOCK_CACERT; over plaintext it is unused */
    if (!G->main.tls) {
        expect_code(&p, cli_env(&p, ARGV(G->env_url, bad_env),
                                ARGV("--cacert", good, "status", "cli:tlsopt"), 10000),
                    1);
        /* TLS options never turn TLS on by themselves */
        expect_code(&p, cli_env(&p, ARGV(G->env_url, "REDLOCK_SNI=x.example"),
                                ARGV("--insecure", "status", "cli:tlsopt"), 10000),
                    1);
    }
    unlink(good);
}

/* The certificates made by make_certs.sh, when the run has them. */
static const char *certs_dir(void)
{
    const char *d = getenv("REDLOCK_TEST_CERTS");
    if (!d || !*d)
        d = getenv("REDLOCK_TEST_TLS");
    return d && *d ? d : NULL;
}

static void cert_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", certs_dir(), name);
}

static int tls_run(proc *p, const char *const *env, const char *url, const char *const *opts)
{
    const char *args[24];
    int n = 0;
    args[n++] = "-u";
    args[n++] = url;
    for (int i = 0; opts && opts[i] && n < 18; i++)
        args[n++] = opts[i];
    args[n++] = "run";
    args[n++] = "cli:tls";
    args[n++] = "--";
    args[n++] = "echo";
    args[n++] = "ran";
    args[n] = NULL;
    return cli_env(p, env ? env : ARGV("REDLOCK_X=1"), args, 15000);
}

static void expect_ran(proc *p, int code)
{
    expect_code(p, code, 0);
    assert_string_equal(p->out, "ran\n");
}

/* A TLS failure: 77 and one line that says it is about a certificate or
 * TLS. */
static void expect_tls_refused(proc *p, int code)
{
    print_message("refused: %d %s", code, p->err);
    expect_code(p, code, 77);
    one_error_line(p);
    assert_true(strcasestr(p->err, "certificate") || strcasestr(p->err, "TLS"));
}

/* `redlock run` over TLS: the CA from --cacert, $REDLOCK_CACERT or
 * --cacertdir (never the system's store: the test strips $SSL_CERT_FILE),
 * client certificates, and the refusals: unknown CA, wrong name, a server
 * that wants a client certificate, plaintext on a rediss:// URL. */
static void run_over_tls(void **state)
{
    (void)state;
    if (!certs_dir())
        skip(); /* printed by cmocka as SKIPPED, counted */
    static proc p;
    static rt_server srv, mtls, wrong, unknown, plain, pw;
    char ca[300], cadir[300], cc[300], ck[300], oc[300], okey[300], wc[300], wk[300],
        uc[300], uk[300];
    cert_path(ca, sizeof ca, "ca.crt");
    cert_path(cadir, sizeof cadir, "cadir");
    cert_path(cc, sizeof cc, "client.crt");
    cert_path(ck, sizeof ck, "client.key");
    cert_path(oc, sizeof oc, "other-client.crt");
    cert_path(okey, sizeof okey, "other-client.key");
    cert_path(wc, sizeof wc, "wrongname.crt");
    cert_path(wk, sizeof wk, "wrongname.key");
    cert_path(uc, sizeof uc, "unknown.crt");
    cert_path(uk, sizeof uk, "unknown.key");
    const char *d = certs_dir();
    assert_int_equal(rt_server_start_tls(&srv, d, NULL), 0);
    assert_int_equal(rt_server_start_tls(&mtls, d, ARGV("--tls-auth-clients", "yes")), 0);
    assert_int_equal(rt_server_start_tls(&wrong, d, ARGV("--tls-cert-file", wc,
                                                         "--tls-key-file", wk)), 0);
    assert_int_equal(rt_server_start_tls(&unknown, d, ARGV("--tls-cert-file", uc,
                                                           "--tls-key-file", uk)), 0);
    assert_int_equal(rt_server_start_plain(&plain, NULL), 0);
    assert_int_equal(rt_server_start_tls(&pw, d, ARGV("--requirepass", PASSWORD)), 0);
    strip_system_ca = 1;

    char env_ca[320], env_cert[320], env_key[320], env_bad[320];
    snprintf(env_ca, sizeof env_ca, "REDLOCK_CACERT=%s", ca);
    snprintf(env_cert, sizeof env_cert, "REDLOCK_CERT=%s", cc);
    snprintf(env_key, sizeof env_key, "REDLOCK_CERT_KEY=%s", ck);
    snprintf(env_bad, sizeof env_bad, "REDLOCK_CACERT=%s", uc);

    /* the CA, three ways; without it the system's store does not know it */
    expect_ran(&p, tls_run(&p, NULL, srv.url, ARGV("--cacert", ca)));
    assert_key(&srv, "cli:tls", NULL);
    expect_ran(&p, tls_run(&p, ARGV(env_ca), srv.url, NULL));
    expect_ran(&p, tls_run(&p, NULL, srv.url, ARGV("--cacertdir", cadir)));
    expect_tls_refused(&p, tls_run(&p, NULL, srv.url, NULL));
    /* the flag wins over the environment (which names the wrong CA) */
    expect_ran(&p, tls_run(&p, ARGV(env_bad), srv.url, ARGV("--cacert", ca)));
    expect_tls_refused(&p, tls_run(&p, ARGV(env_bad), srv.url, NULL));
    /* --tls: a redis:// URL over TLS */
    char plain_scheme[64];
    snprintf(plain_scheme, sizeof plain_scheme, "redis://127.0.0.1:%d", srv.port);
    expect_ran(&p, tls_run(&p, ARGV(env_ca), plain_scheme, ARGV("--tls")));
    /* without it, plaintext to a TLS port: refused or cut off */
    int code = tls_run(&p, ARGV(env_ca), plain_scheme, NULL);
    print_message("plaintext to a TLS port: %d %s", code, p.err);
    assert_true(code == 69 || code == 77);
    one_error_line(&p);

    /* mutual TLS */
    expect_ran(&p, tls_run(&p, ARGV(env_ca), mtls.url, ARGV("--cert", cc, "--key", ck)));
    expect_ran(&p, tls_run(&p, ARGV(env_ca, env_cert, env_key), mtls.url, NULL));
    expect_tls_refused(&p, tls_run(&p, ARGV(env_ca), mtls.url, NULL));
    expect_tls_refused(&p, tls_run(&p, ARGV(env_ca), mtls.url,
                                   ARGV("--cert", oc, "--key", okey)));

    /* the server's certificate: unknown CA, another name */
    expect_tls_refused(&p, tls_run(&p, ARGV(env_ca), unknown.url, NULL));
    expect_tls_refused(&p, tls_run(&p, ARGV(env_ca), wrong.url, NULL));
    expect_ran(&p, tls_run(&p, ARGV(env_ca), wrong.url, ARGV("--sni", "other.example")));
    /* --insecure takes anything: the wrong name, the unknown CA */
    expect_ran(&p, tls_run(&p, ARGV(env_ca), wrong.url, ARGV("--insecure")));
    expect_ran(&p, tls_run(&p, NULL, unknown.url, ARGV("--insecure")));

    /* TLS on one side only */
    char on_plain[64];
    snprintf(on_plain, sizeof on_plain, "rediss://127.0.0.1:%d", plain.port);
    /* a plaintext Redis reads the ClientHello as the start of a command and
     * waits for its end: refused, or the handshake's timeout (69) */
    code = tls_run(&p, ARGV(env_ca), on_plain, NULL);
    print_message("TLS to a plaintext port: %d %s", code, p.err);
    assert_true(code == 77 || code == 69);
    one_error_line(&p);
    assert_non_null(strstr(p.err, "TLS"));

    /* $REDISCLI_AUTH goes into a rediss:// URL */
    expect_ran(&p, tls_run(&p, ARGV(env_ca, "REDISCLI_AUTH=" PASSWORD), pw.url, NULL));
    expect_code(&p, tls_run(&p, ARGV(env_ca), pw.url, NULL), 77);
    assert_null(strcasestr(p.err, "certificate"));

    strip_system_ca = 0;
    rt_server_stop(&srv);
    rt_server_stop(&mtls);
    rt_server_stop(&wrong);
    rt_server_stop(&unknown);
    rt_server_stop(&plain);
    rt_server_stop(&pw);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--count-signal") == 0)
        return count_signal(atoi(argv[2]), argv[3]);
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (n <= 0)
        return 1;
    self_path[n] = '\0';

#define T(f) cmocka_unit_test_teardown(f, reap_all)
    const struct CMUnitTest tests[] = {
        T(help_and_version),
        T(usage_errors),
        T(busy_exits_75_and_status_passes_through),
        T(command_statuses),
        T(command_gets_no_lock_sockets),
        T(closed_stderr_does_not_kill_redlock),
        T(run_waits_for_a_busy_lock),
        T(keepalive_holds_a_2s_ttl_for_5s),
        T(status_while_held_and_after),
        T(acquire_extend_release),
        T(signals_are_forwarded),
        T(lost_lock_stops_command),
        T(rediscli_auth_and_passwords),
        T(unreachable_exits_69),
        T(redlock_with_three_nodes),
        T(sigkill_of_run_kills_command),
        T(group_signal_reaches_command_once),
        T(timeout_signal_reaches_command_once),
        T(terminal_ctrl_c_reaches_command_once),
        T(terminal_ctrl_z_and_fg),
        T(command_env_names_the_lock),
        T(fence_needs_a_single_node),
        T(leftovers_end_before_the_lock_is_released),
        T(lost_lock_ends_the_whole_job),
        T(sigterm_reaches_the_whole_job),
        T(ttl_without_validity_is_a_usage_error),
        T(run_n_lets_n_commands_run_at_once),
        T(acquire_n_prints_a_slot_key_that_release_takes),
        T(max_holders_out_of_range_is_a_usage_error),
        T(list_shows_who_holds_what),
        T(terminal_list_header_and_status_holder),
        T(tls_options_are_checked),
        T(run_over_tls),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
