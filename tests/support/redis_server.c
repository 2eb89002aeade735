/* Test helper: throwaway redis-server processes.  See redis_server.h. */
#include "redis_server.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#define RT_START_TIMEOUT_MS 5000
#define RT_POLL_MS 20
#define RT_START_ATTEMPTS 20

/* ---- small utilities ---------------------------------------------------- */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_rf(const char *dir)
{
    if (dir[0] != '\0')
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void reap(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

void rt_pipe_block(rt_pipe_guard *g)
{
    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
    sigemptyset(&pend);
    sigpending(&pend);
    g->pending_before = sigismember(&pend, SIGPIPE) == 1;
}

void rt_pipe_unblock(rt_pipe_guard *g)
{
    if (!g->pending_before && !sigismember(&g->old, SIGPIPE)) {
        sigset_t set, pend;
        sigemptyset(&pend);
        sigpending(&pend);
        if (sigismember(&pend, SIGPIPE) == 1) {
            struct timespec zero = {0, 0};
            sigemptyset(&set);
            sigaddset(&set, SIGPIPE);
            while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR) {
            }
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- the registry: servers to kill at exit ------------------------------- */

#define RT_REG_MAX 256

struct rt_reg {
    int used;
    pid_t owner; /* the process that started it: a forked child never kills */
    pid_t pid;
    char dir[sizeof(((rt_server *)0)->dir)];
};

static struct rt_reg registry[RT_REG_MAX];
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static void registry_at_exit(void)
{
    /* Another thread may hold the mutex while the process exits: go on. */
    int locked = pthread_mutex_trylock(&registry_mu) == 0;
    pid_t self = getpid();
    for (int i = 0; i < RT_REG_MAX; i++) {
        struct rt_reg *r = &registry[i];
        if (!r->used || r->owner != self)
            continue;
        if (r->pid > 0) {
            kill(r->pid, SIGKILL);
            reap(r->pid);
        }
        rm_rf(r->dir);
        r->used = 0;
    }
    if (locked)
        pthread_mutex_unlock(&registry_mu);
}

static void registry_init(void)
{
    atexit(registry_at_exit);
}

/* Returns slot + 1, or 0 when the table is full. */
static int registry_add(const char *dir)
{
    pthread_once(&registry_once, registry_init);
    pthread_mutex_lock(&registry_mu);
    int slot = 0;
    for (int i = 0; i < RT_REG_MAX; i++) {
        if (!registry[i].used) {
            registry[i].used = 1;
            registry[i].owner = getpid();
            registry[i].pid = 0;
            snprintf(registry[i].dir, sizeof registry[i].dir, "%s", dir);
            slot = i + 1;
            break;
        }
    }
    pthread_mutex_unlock(&registry_mu);
    return slot;
}

static void registry_set_pid(int slot, pid_t pid)
{
    if (slot <= 0 || slot > RT_REG_MAX)
        return;
    pthread_mutex_lock(&registry_mu);
    registry[slot - 1].pid = pid;
    pthread_mutex_unlock(&registry_mu);
}

static void registry_remove(int slot)
{
    if (slot <= 0 || slot > RT_REG_MAX)
        return;
    pthread_mutex_lock(&registry_mu);
    registry[slot - 1].used = 0;
    registry[slot - 1].pid = 0;
    pthread_mutex_unlock(&registry_mu);
}

/* ---- starting and stopping ------------------------------------------------ */

static const char *server_path(void)
{
    static char found[4096];
    const char *env = getenv("REDLOCK_TEST_REDIS_SERVER");
    if (env != NULL && env[0] != '\0')
        return env;
#ifdef RT_REDIS_SERVER_PATH
    if (access(RT_REDIS_SERVER_PATH, X_OK) == 0)
        return RT_REDIS_SERVER_PATH;
#endif
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
    while (*path != '\0') {
        size_t n = strcspn(path, ":");
        if (n > 0 && n < sizeof found - 20) {
            memcpy(found, path, n);
            snprintf(found + n, sizeof found - n, "/redis-server");
            if (access(found, X_OK) == 0)
                return found;
        }
        path += n;
        if (*path == ':')
            path++;
    }
    return NULL;
}

int rt_free_port(void)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        socklen_t len = sizeof a;
        int port = -1;
        if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
            getsockname(fd, (struct sockaddr *)&a, &len) == 0)
            port = ntohs(a.sin_port);
        close(fd);
        if (port < 0)
            return -1;
        if (port != 6379)
            return port;
    }
    return -1;
}

/* 1 when the log written since offset `from` contains `what`. */
static int log_contains(const char *log, long from, const char *what)
{
    FILE *f = fopen(log, "r");
    if (f == NULL)
        return 0;
    int found = 0;
    char line[1024];
    if (fseek(f, from, SEEK_SET) == 0) {
        while (!found && fgets(line, sizeof line, f) != NULL)
            found = strstr(line, what) != NULL;
    }
    fclose(f);
    return found;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

static void dump_log(const rt_server *s)
{
    FILE *f = fopen(s->log, "r");
    if (f == NULL)
        return;
    long size = file_size(s->log);
    if (size > 4096)
        fseek(f, size - 4096, SEEK_SET);
    fprintf(stderr, "---- %s (tail) ----\n", s->log);
    char buf[512];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stderr);
    fprintf(stderr, "---- end of log ----\n");
    fclose(f);
}

/* hiredis 0.14 speaks no TLS: a TLS server is reached on its unix socket. */
static redisContext *connect_tv(const rt_server *s, struct timeval tv)
{
    if (s->tls)
        return redisConnectUnixWithTimeout(s->sock, tv);
    return redisConnectWithTimeout("127.0.0.1", s->port, tv);
}

redisContext *rt_connect(const rt_server *s)
{
    int ms = s->cmd_timeout_ms > 0 ? s->cmd_timeout_ms : 2000;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    redisContext *c = connect_tv(s, tv);
    if (c != NULL && c->err == 0)
        redisSetTimeout(c, tv);
    return c;
}

char *rt_url(const rt_server *s, char *buf, size_t len, const char *userinfo,
             const char *path)
{
    int has_user = userinfo != NULL && userinfo[0] != '\0';
    int n = snprintf(buf, len, "%s://%s%s127.0.0.1:%d%s", s->tls ? "rediss" : "redis",
                     has_user ? userinfo : "", has_user ? "@" : "", s->port,
                     path != NULL ? path : "");
    if (n < 0 || (size_t)n >= len) {
        if (len > 0)
            buf[0] = '\0';
        return NULL;
    }
    return buf;
}

/* Answers anything at all to PING (NOAUTH counts: it is up). */
static int answers_ping(const rt_server *s)
{
    struct timeval tv = {0, 200 * 1000};
    rt_pipe_guard g;
    rt_pipe_block(&g);
    int ok = 0;
    redisContext *c = connect_tv(s, tv);
    if (c != NULL && c->err == 0) {
        redisSetTimeout(c, tv);
        redisReply *r = redisCommand(c, "PING");
        ok = r != NULL;
        if (r != NULL)
            freeReplyObject(r);
    }
    if (c != NULL)
        redisFree(c);
    rt_pipe_unblock(&g);
    return ok;
}

static void kill_process(rt_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        reap(s->pid);
        s->pid = 0;
        registry_set_pid(s->slot, 0);
    }
}

/* Start redis-server on s->port in s->dir and wait until it answers.
 * 0: ready; 1: the port was taken (try another); -1: failure. */
static int launch(rt_server *s, const char *path)
{
    char port[16], cert[300], key[300], ca[300];
    snprintf(port, sizeof port, "%d", s->port);
    const char *argv[48 + RT_MAX_EXTRA_ARGS];
    int n = 0;
    argv[n++] = path;
    argv[n++] = "--port";
    if (s->tls) {
        snprintf(cert, sizeof cert, "%s/server.crt", s->certdir);
        snprintf(key, sizeof key, "%s/server.key", s->certdir);
        snprintf(ca, sizeof ca, "%s/ca.crt", s->certdir);
        argv[n++] = "0";
        argv[n++] = "--tls-port";
        argv[n++] = port;
        argv[n++] = "--tls-cert-file";
        argv[n++] = cert;
        argv[n++] = "--tls-key-file";
        argv[n++] = key;
        argv[n++] = "--tls-ca-cert-file";
        argv[n++] = ca;
        argv[n++] = "--tls-auth-clients";
        argv[n++] = "no";
        argv[n++] = "--tls-replication";
        argv[n++] = "yes";
    } else {
        argv[n++] = port;
    }
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--dir";
    argv[n++] = s->dir;
    argv[n++] = "--enable-debug-command";
    argv[n++] = "local";
    argv[n++] = "--unixsocket";
    argv[n++] = s->sock;
    argv[n++] = "--unixsocketperm";
    argv[n++] = "700";
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    argv[n++] = "--logfile";
    argv[n++] = s->log;
    for (int i = 0; i < s->nargs; i++)
        argv[n++] = s->args[i];
    argv[n] = NULL;

    /* A stale socket file from a killed predecessor would pass for ready. */
    unlink(s->sock);
    long log_from = file_size(s->log);

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "rt_server: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
            dup2(fd, 2);
            if (fd > 2)
                close(fd);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    registry_set_pid(s->slot, pid);

    long long deadline = now_ms() + RT_START_TIMEOUT_MS;
    for (;;) {
        int status;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            s->pid = 0;
            registry_set_pid(s->slot, 0);
            if (log_contains(s->log, log_from, "Address already in use"))
                return 1;
            fprintf(stderr, "rt_server: %s exited at start (status %d) on port %d\n",
                    path, WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status),
                    s->port);
            return -1;
        }
        /* The unix socket is made after the TCP port is bound: once it is
         * there, the port is ours and not another test's server. */
        if (access(s->sock, F_OK) == 0 && answers_ping(s))
            return 0;
        if (now_ms() >= deadline)
            break;
        sleep_ms(RT_POLL_MS);
    }
    fprintf(stderr, "rt_server: redis-server on port %d did not answer PING within %d ms\n",
            s->port, RT_START_TIMEOUT_MS);
    kill_process(s);
    return -1;
}

static void free_args(rt_server *s)
{
    for (int i = 0; i < s->nargs; i++)
        free(s->args[i]);
    s->nargs = 0;
}

static int start(rt_server *s, const char *certdir, const char *const *extra_args)
{
    memset(s, 0, sizeof *s);
    s->cmd_timeout_ms = 2000;
    if (certdir != NULL) {
        if (certdir[0] == '\0' || strlen(certdir) >= sizeof s->certdir - 32) {
            fprintf(stderr, "rt_server: bad certificate directory \"%s\"\n", certdir);
            return -1;
        }
        s->tls = 1;
        snprintf(s->certdir, sizeof s->certdir, "%s", certdir);
    }

    const char *path = server_path();
    if (path == NULL) {
        fprintf(stderr, "rt_server: redis-server not found "
                        "(install it or set REDLOCK_TEST_REDIS_SERVER)\n");
        return -1;
    }
    for (int i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
        if (s->nargs == RT_MAX_EXTRA_ARGS) {
            fprintf(stderr, "rt_server: more than %d extra arguments\n", RT_MAX_EXTRA_ARGS);
            free_args(s);
            return -1;
        }
        s->args[s->nargs] = strdup(extra_args[i]);
        if (s->args[s->nargs] == NULL) {
            free_args(s);
            return -1;
        }
        s->nargs++;
        if (strcmp(extra_args[i], "--requirepass") == 0 && extra_args[i + 1] != NULL)
            snprintf(s->password, sizeof s->password, "%s", extra_args[i + 1]);
    }

    snprintf(s->dir, sizeof s->dir, "/tmp/redlock-test-XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        fprintf(stderr, "rt_server: mkdtemp: %s\n", strerror(errno));
        s->dir[0] = '\0';
        free_args(s);
        return -1;
    }
    s->slot = registry_add(s->dir);
    snprintf(s->sock, sizeof s->sock, "%s/redis.sock", s->dir);
    snprintf(s->log, sizeof s->log, "%s/log", s->dir);
    snprintf(s->unix_url, sizeof s->unix_url, "unix://%s", s->sock);

    int r = -1;
    for (int attempt = 0; attempt < RT_START_ATTEMPTS; attempt++) {
        s->port = rt_free_port();
        if (s->port < 0) {
            fprintf(stderr, "rt_server: no free port: %s\n", strerror(errno));
            break;
        }
        rt_url(s, s->url, sizeof s->url, NULL, NULL);
        r = launch(s, path);
        if (r != 1)
            break;
    }
    if (r != 0) {
        if (r == 1)
            fprintf(stderr, "rt_server: every port tried was taken\n");
        dump_log(s);
        rt_server_stop(s);
        return -1;
    }
    return 0;
}

int rt_server_start(rt_server *s, const char *const *extra_args)
{
    const char *certdir = getenv("REDLOCK_TEST_TLS");
    return start(s, certdir != NULL && certdir[0] != '\0' ? certdir : NULL, extra_args);
}

int rt_server_start_tls(rt_server *s, const char *certdir, const char *const *extra_args)
{
    if (certdir == NULL) {
        memset(s, 0, sizeof *s);
        fprintf(stderr, "rt_server_start_tls: no certificate directory\n");
        return -1;
    }
    return start(s, certdir, extra_args);
}

int rt_server_start_plain(rt_server *s, const char *const *extra_args)
{
    return start(s, NULL, extra_args);
}

void rt_server_stop(rt_server *s)
{
    if (s == NULL)
        return;
    kill_process(s);
    rm_rf(s->dir);
    s->dir[0] = '\0';
    registry_remove(s->slot);
    s->slot = 0;
    free_args(s);
}

int rt_server_pause(rt_server *s)
{
    return s->pid > 0 ? kill(s->pid, SIGSTOP) : -1;
}

int rt_server_resume(rt_server *s)
{
    return s->pid > 0 ? kill(s->pid, SIGCONT) : -1;
}

void rt_server_kill(rt_server *s) { kill_process(s); }

int rt_server_restart(rt_server *s)
{
    if (s->dir[0] == '\0' || s->port <= 0)
        return -1;
    const char *path = server_path();
    if (path == NULL)
        return -1;
    kill_process(s);
    /* The port may be briefly held by someone else: keep trying it. */
    long long deadline = now_ms() + RT_START_TIMEOUT_MS;
    int r;
    while ((r = launch(s, path)) == 1 && now_ms() < deadline)
        sleep_ms(50);
    if (r != 0) {
        fprintf(stderr, "rt_server: restart on port %d failed\n", s->port);
        dump_log(s);
        return -1;
    }
    return 0;
}

/* ---- commands --------------------------------------------------------------- */

redisReply *rt_vcmd(rt_server *s, const char *user, const char *password,
                    const char *fmt, va_list ap)
{
    if (s == NULL || s->port <= 0)
        return NULL;
    int ms = s->cmd_timeout_ms > 0 ? s->cmd_timeout_ms : 2000;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    rt_pipe_guard g;
    rt_pipe_block(&g);
    redisReply *r = NULL;
    redisContext *c = connect_tv(s, tv);
    if (c == NULL || c->err != 0)
        goto done;
    redisSetTimeout(c, tv);
    if (password != NULL && password[0] != '\0') {
        if (user != NULL && user[0] != '\0')
            r = redisCommand(c, "AUTH %s %s", user, password);
        else
            r = redisCommand(c, "AUTH %s", password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR)
            goto done; /* AUTH's error reply, or NULL */
        freeReplyObject(r);
    }
    r = redisvCommand(c, fmt, ap);
done:
    if (c != NULL)
        redisFree(c);
    rt_pipe_unblock(&g);
    return r;
}

redisReply *rt_cmd(rt_server *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = rt_vcmd(s, s->user, s->password, fmt, ap);
    va_end(ap);
    return r;
}

redisReply *rt_cmd_auth(rt_server *s, const char *password, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = rt_vcmd(s, NULL, password, fmt, ap);
    va_end(ap);
    return r;
}

redisReply *rt_cmd_user(rt_server *s, const char *user, const char *password,
                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = rt_vcmd(s, user, password, fmt, ap);
    va_end(ap);
    return r;
}

int rt_cmd_ok(rt_server *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = rt_vcmd(s, s->user, s->password, fmt, ap);
    va_end(ap);
    int ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
    if (r != NULL)
        freeReplyObject(r);
    return ok;
}

char *rt_get(rt_server *s, const char *key)
{
    redisReply *r = rt_cmd(s, "GET %s", key);
    char *v = NULL;
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        v = malloc(r->len + 1);
        if (v != NULL) {
            memcpy(v, r->str, r->len);
            v[r->len] = '\0';
        }
    }
    if (r != NULL)
        freeReplyObject(r);
    return v;
}

long long rt_pttl(rt_server *s, const char *key)
{
    redisReply *r = rt_cmd(s, "PTTL %s", key);
    long long v = RT_PTTL_ERROR;
    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    if (r != NULL)
        freeReplyObject(r);
    return v;
}

int64_t rt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rt_slow(void)
{
    const char *slow = getenv("REDLOCK_TEST_SLOW");
    return slow && *slow;
}

int64_t rt_slack_ms(int64_t ms)
{
    return rt_slow() ? ms * 10 : ms;
}

void rt_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
