/* redlock-bench: throwaway redis-server processes. */
#define _GNU_SOURCE
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BN_MAX_SERVERS 32
#define START_TIMEOUT_NS (10LL * 1000000000)
#define START_ATTEMPTS 20

/* Servers to kill when the benchmark ends, however it ends.  Slots are
 * taken and filled by the main thread; the pid is published last, so a
 * signal handler that sees a pid sees its paths. */
static struct {
    atomic_int used;
    atomic_int pid;
    char dir[64];
    char log[96];
} reg[BN_MAX_SERVERS];

static void reap(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

/* Async-signal-safe: kill, unlink and rmdir only. */
static void kill_all_unsafe(void)
{
    for (int i = 0; i < BN_MAX_SERVERS; i++) {
        if (!atomic_load(&reg[i].used))
            continue;
        int pid = atomic_exchange(&reg[i].pid, 0);
        if (pid > 0)
            kill(pid, SIGKILL);
        unlink(reg[i].log);
        rmdir(reg[i].dir);
    }
}

static void on_signal(int sig)
{
    kill_all_unsafe();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void at_exit(void)
{
    for (int i = 0; i < BN_MAX_SERVERS; i++) {
        if (!atomic_load(&reg[i].used))
            continue;
        int pid = atomic_exchange(&reg[i].pid, 0);
        if (pid > 0) {
            kill(pid, SIGKILL);
            reap(pid);
        }
        unlink(reg[i].log);
        rmdir(reg[i].dir);
        atomic_store(&reg[i].used, 0);
    }
}

void bn_servers_install_cleanup(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    atexit(at_exit);
}

static int free_port(void)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
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

static int log_says(const char *log, const char *what)
{
    FILE *f = fopen(log, "r");
    if (f == NULL)
        return 0;
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, what) != NULL;
    fclose(f);
    return found;
}

static void dump_log(const char *log)
{
    FILE *f = fopen(log, "r");
    if (f == NULL)
        return;
    char buf[512];
    size_t n;
    fprintf(stderr, "---- %s ----\n", log);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stderr);
    fprintf(stderr, "---- end ----\n");
    fclose(f);
}

static int answers_ping(int port)
{
    struct timeval tv = {0, 200 * 1000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    int ok = 0;
    if (c != NULL && c->err == 0) {
        redisSetTimeout(c, tv);
        redisReply *r = redisCommand(c, "PING");
        ok = r != NULL && r->type == REDIS_REPLY_STATUS;
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok;
}

/* 0 ready, 1 port taken (try another), -1 failure. */
static int launch(bn_server *s, const char *path, int cpu)
{
    char port[16], tls_port[16], cert[300], key[300], ca[300];
    snprintf(port, sizeof port, "%d", s->port);
    const char *argv[32] = {path,       "--port",       port,     "--bind",
                            "127.0.0.1", "--save",       "",       "--appendonly",
                            "no",        "--dir",        s->dir,   "--logfile",
                            s->log,      "--daemonize",  "no",     NULL};
    if (s->tls_port > 0) {
        int n = 15;
        snprintf(tls_port, sizeof tls_port, "%d", s->tls_port);
        snprintf(cert, sizeof cert, "%s/server.crt", s->certdir);
        snprintf(key, sizeof key, "%s/server.key", s->certdir);
        snprintf(ca, sizeof ca, "%s/ca.crt", s->certdir);
        argv[n++] = "--tls-port";
        argv[n++] = tls_port;
        argv[n++] = "--tls-cert-file";
        argv[n++] = cert;
        argv[n++] = "--tls-key-file";
        argv[n++] = key;
        argv[n++] = "--tls-ca-cert-file";
        argv[n++] = ca;
        argv[n++] = "--tls-auth-clients";
        argv[n++] = "no";
        argv[n] = NULL;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "redlock-bench: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* async-signal-safe calls only until exec */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            sched_setaffinity(0, sizeof set, &set);
        }
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
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        if (strchr(path, '/') != NULL)
            execv(path, (char *const *)argv);
        else
            execvp(path, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    atomic_store(&reg[s->slot - 1].pid, pid);

    int64_t deadline = bn_now_ns() + START_TIMEOUT_NS;
    for (;;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s->pid = 0;
            atomic_store(&reg[s->slot - 1].pid, 0);
            if (log_says(s->log, "Address already in use"))
                return 1;
            fprintf(stderr, "redlock-bench: %s exited at start (%s %d)\n", path,
                    WIFEXITED(status) ? "status" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            dump_log(s->log);
            return -1;
        }
        if (answers_ping(s->port))
            return 0;
        if (bn_now_ns() > deadline)
            break;
        bn_sleep_ns(10 * 1000000);
    }
    fprintf(stderr, "redlock-bench: redis-server on port %d did not answer PING\n",
            s->port);
    dump_log(s->log);
    return -1;
}

static int start(bn_server *s, const char *path, int cpu, const char *certdir);

int bn_server_start(bn_server *s, const char *path, int cpu)
{
    return start(s, path, cpu, NULL);
}

int bn_server_start_tls(bn_server *s, const char *path, int cpu, const char *certdir)
{
    if (certdir == NULL || strlen(certdir) >= sizeof s->certdir - 16) {
        fprintf(stderr, "redlock-bench: bad certificate directory\n");
        return -1;
    }
    return start(s, path, cpu, certdir);
}

static int start(bn_server *s, const char *path, int cpu, const char *certdir)
{
    memset(s, 0, sizeof *s);
    if (certdir != NULL)
        snprintf(s->certdir, sizeof s->certdir, "%s", certdir);
    if (path == NULL)
        path = "redis-server";
    for (int i = 0; i < BN_MAX_SERVERS; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&reg[i].used, &expected, 1)) {
            s->slot = i + 1;
            break;
        }
    }
    if (s->slot == 0) {
        fprintf(stderr, "redlock-bench: more than %d servers\n", BN_MAX_SERVERS);
        return -1;
    }
    snprintf(s->dir, sizeof s->dir, "/tmp/redlock-bench-XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        fprintf(stderr, "redlock-bench: mkdtemp: %s\n", strerror(errno));
        atomic_store(&reg[s->slot - 1].used, 0);
        s->slot = 0;
        return -1;
    }
    snprintf(s->log, sizeof s->log, "%s/log", s->dir);
    memcpy(reg[s->slot - 1].dir, s->dir, sizeof s->dir);
    memcpy(reg[s->slot - 1].log, s->log, sizeof s->log);

    int r = -1;
    for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
        s->port = free_port();
        if (certdir != NULL) {
            do
                s->tls_port = free_port();
            while (s->tls_port == s->port && s->port >= 0);
        }
        if (s->port < 0 || (certdir != NULL && s->tls_port < 0)) {
            fprintf(stderr, "redlock-bench: no free port\n");
            break;
        }
        unlink(s->log);
        r = launch(s, path, cpu);
        if (r != 1)
            break;
    }
    if (r != 0) {
        bn_server_stop(s);
        return -1;
    }
    snprintf(s->url, sizeof s->url, "redis://127.0.0.1:%d", s->port);
    if (certdir != NULL)
        snprintf(s->tls_url, sizeof s->tls_url, "rediss://127.0.0.1:%d", s->tls_port);
    return 0;
}

void bn_server_stop(bn_server *s)
{
    if (s == NULL || s->slot <= 0)
        return;
    int pid = atomic_exchange(&reg[s->slot - 1].pid, 0);
    if (pid > 0) {
        kill(pid, SIGKILL);
        reap(pid);
    }
    s->pid = 0;
    unlink(s->log);
    rmdir(s->dir);
    atomic_store(&reg[s->slot - 1].used, 0);
    s->slot = 0;
}
